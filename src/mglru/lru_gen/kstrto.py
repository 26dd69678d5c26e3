"""The kernel's number parsers: kstrtouint() and the integer conversions of vsscanf().

lib/kstrtox.c and lib/vsprintf.c semantics, needed byte for byte by the sysfs
and debugfs writers (spec §5.1, §5.2, §5.4).
"""

from __future__ import annotations

import errno

__all__ = ["kstrtouint", "Scanner", "ScanFail"]

_SPACES = " \t\n\v\f\r"


def _digit(c: str, base: int) -> int:
    if "0" <= c <= "9":
        d = ord(c) - 48
    elif "a" <= c.lower() <= "f":
        d = ord(c.lower()) - 87
    else:
        return -1
    return d if d < base else -1


def kstrtouint(s: str, base: int = 0, bits: int = 32) -> int:
    """kstrtouint(s, base): optional '+', radix prefix for base 0/16, one trailing newline.

    Raises:
        OSError: EINVAL for a malformed string, ERANGE for overflow.
    """
    i = 0
    if s[:1] == "+":
        i = 1
    if base == 0:
        if s[i:i + 1] == "0" and s[i + 1:i + 2].lower() == "x" and _digit(s[i + 2:i + 3] or "g", 16) >= 0:
            base, i = 16, i + 2
        elif s[i:i + 1] == "0":
            base = 8
        else:
            base = 10
    elif base == 16 and s[i:i + 1] == "0" and s[i + 1:i + 2].lower() == "x":
        i += 2
    value = 0
    start = i
    overflow = False
    while i < len(s) and _digit(s[i], base) >= 0:
        value = value * base + _digit(s[i], base)
        if value >= 1 << 64:
            overflow = True
        i += 1
    if i == start:
        raise OSError(errno.EINVAL, "Invalid argument")
    if overflow:
        raise OSError(errno.ERANGE, "Numerical result out of range")
    if s[i:i + 1] == "\n":
        i += 1
    if i != len(s):
        raise OSError(errno.EINVAL, "Invalid argument")
    if value >= 1 << bits:
        raise OSError(errno.ERANGE, "Numerical result out of range")
    return value


class ScanFail(Exception):
    """A vsscanf() conversion did not match: scanning stops there."""


class Scanner:
    """A cursor with the kernel vsscanf() conversions the debugfs writer uses."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.pos = 0

    def skip_spaces(self) -> None:
        """White space in the format matches any amount of white space, including none."""
        while self.pos < len(self.s) and self.s[self.pos] in _SPACES:
            self.pos += 1

    def _need(self) -> None:
        if self.pos >= len(self.s):
            raise ScanFail

    def char(self) -> str:
        """%c: one character, no white-space skipping."""
        self._need()
        c = self.s[self.pos]
        self.pos += 1
        return c

    def unsigned(self, bits: int) -> int:
        """%u (bits=32) / %lu (bits=64): decimal digits, wrapping like simple_strtoull."""
        self._need()
        self.skip_spaces()
        if self.pos >= len(self.s) or not self.s[self.pos].isdigit() or not self.s[self.pos].isascii():
            raise ScanFail
        value = 0
        while self.pos < len(self.s) and "0" <= self.s[self.pos] <= "9":
            value = (value * 10 + ord(self.s[self.pos]) - 48) & ((1 << 64) - 1)
            self.pos += 1
        return value & ((1 << bits) - 1)

    def string(self, width: int) -> str:
        """%<width>s: skip white space, copy up to `width` non-space characters."""
        self._need()
        self.skip_spaces()
        start = self.pos
        while self.pos < len(self.s) and self.s[self.pos] not in _SPACES and self.pos - start < width:
            self.pos += 1
        return self.s[start:self.pos]
