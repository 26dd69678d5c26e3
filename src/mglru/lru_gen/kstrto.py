"""The kernel's string helpers and number parsers, over the bytes of a write.

Kernel files take bytes. `SimKernel.write` hands every store the written
bytes decoded as Latin-1 (one character per byte, code points 0-255), so the
rules below act on bytes exactly as the kernel's do:

- `isspace` is lib/ctype.c's: 0x09-0x0d, 0x20 and 0xa0 (nothing else);
- `skip_spaces` / `strstrip` are lib/string_helpers.c's;
- `kstrtoull` / `kstrtouint` / `kstrtoint` are lib/kstrtox.c's (optional '+',
  radix prefix for base 0, one trailing newline, ERANGE on overflow);
- `simple_strntoull` is lib/vsprintf.c's (wraps modulo 2**64, no sign) and
  `memparse` lib/cmdline.c's (K/M/G/T/P/E shifts, also modulo 2**64);
- `Scanner` has the vsscanf() conversions the debugfs writer uses.

Every parser is linear in the input: a digit run is found at C speed and only
its significant tail is converted, so a megabyte of digits costs milliseconds
(`_parse_integer_limit` in lib/kstrtox.c scans all digits once, too).
"""

from __future__ import annotations

import errno
import re

__all__ = ["kstrtouint", "kstrtoull", "kstrtoint", "simple_strntoull", "memparse",
           "strstrip", "skip_spaces", "isspace", "KERNEL_SPACES", "Scanner", "ScanFail"]

#: isspace() of lib/ctype.c: \t \n \v \f \r, space and 0xa0 (_S in the _ctype table)
KERNEL_SPACES = "\t\n\v\f\r \xa0"
_SPACES = KERNEL_SPACES
_U64 = (1 << 64) - 1
_RUNS = {8: re.compile(r"[0-7]*"), 10: re.compile(r"[0-9]*"), 16: re.compile(r"[0-9a-fA-F]*")}
#: most significant digits a value below 2**64 can have in each base
_MAX_DIGITS = {8: 22, 10: 20, 16: 16}


def isspace(c: str) -> bool:
    """isspace() of lib/ctype.c for one byte (as a Latin-1 character)."""
    return c != "" and c in _SPACES


def skip_spaces(s: str, i: int = 0) -> int:
    """skip_spaces(): index of the first non-space byte at or after `i`."""
    n = len(s)
    while i < n and s[i] in _SPACES:
        i += 1
    return i


def strstrip(s: str) -> str:
    """strstrip()/strim() of lib/string_helpers.c: kernel white space off both ends."""
    return s.strip(_SPACES)


def _fixup_radix(s: str, i: int, base: int) -> tuple[int, int]:
    """_parse_integer_fixup_radix(): (base, index of the first digit)."""
    if base == 0:
        if s[i:i + 1] == "0":
            hex_digit = _RUNS[16].match(s, i + 2).end() > i + 2
            base = 16 if s[i + 1:i + 2].lower() == "x" and hex_digit else 8
        else:
            base = 10
    if base == 16 and s[i:i + 1] == "0" and s[i + 1:i + 2].lower() == "x":
        i += 2
    return base, i


def _parse_integer(s: str, i: int, base: int) -> tuple[int, int, bool]:
    """_parse_integer_limit(): (value modulo 2**64, end index, overflowed).

    Linear: the digit run is matched by a regex and only its significant
    digits converted (the low 64 bits need only a tail in bases 8 and 16).
    """
    end = _RUNS[base].match(s, i).end()
    sig = s[i:end].lstrip("0")
    if len(sig) <= _MAX_DIGITS[base]:
        value = int(sig or "0", base)
        return value & _U64, end, value > _U64
    if base == 16:
        return int(sig[-16:], 16), end, True
    if base == 8:
        return int(sig[-22:], 8) & _U64, end, True
    value = 0
    for j in range(0, len(sig), 18):  # 10**18 < 2**64: chunks keep each step small
        chunk = sig[j:j + 18]
        value = (value * 10 ** len(chunk) + int(chunk)) & _U64
    return value, end, True


def kstrtoull(s: str, base: int = 0) -> int:
    """kstrtoull(): optional '+', radix prefix, digits, one trailing newline.

    Raises:
        OSError: ERANGE on overflow (checked first, as lib/kstrtox.c does),
            EINVAL for no digits or trailing bytes.
    """
    return _kstrtoull(s, 1 if s[:1] == "+" else 0, base)


def _kstrtoull(s: str, i: int, base: int) -> int:
    """_kstrtoull(): kstrtoull() without the sign, from index `i`."""
    base, i = _fixup_radix(s, i, base)
    value, end, overflow = _parse_integer(s, i, base)
    if overflow:
        raise OSError(errno.ERANGE, "Numerical result out of range")
    if end == i:
        raise OSError(errno.EINVAL, "Invalid argument")
    if s[end:end + 1] == "\n":
        end += 1
    if end != len(s):
        raise OSError(errno.EINVAL, "Invalid argument")
    return value


def kstrtouint(s: str, base: int = 0, bits: int = 32) -> int:
    """kstrtouint() (bits=32; any width with `bits`): kstrtoull() then a range check.

    Raises:
        OSError: EINVAL for a malformed string, ERANGE for overflow.
    """
    value = kstrtoull(s, base)
    if value >= 1 << bits:
        raise OSError(errno.ERANGE, "Numerical result out of range")
    return value


def kstrtoint(s: str, base: int = 0) -> int:
    """kstrtoint(): kstrtoll() (a leading '-' or '+') narrowed to int.

    Raises:
        OSError: EINVAL for a malformed string, ERANGE outside int.
    """
    if s[:1] == "-":
        value = -_kstrtoull(s, 1, base)
    else:
        value = kstrtoull(s, base)
    if not -(1 << 31) <= value < 1 << 31:
        raise OSError(errno.ERANGE, "Numerical result out of range")
    return value


def simple_strntoull(s: str, i: int = 0, base: int = 0) -> tuple[int, int]:
    """simple_strtoull(): (value modulo 2**64, end index); no sign, no white space."""
    base, j = _fixup_radix(s, i, base)
    value, end, _ = _parse_integer(s, j, base)
    return value, end


_SHIFTS = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def memparse(s: str, i: int = 0) -> tuple[int, int]:
    """memparse() of lib/cmdline.c: (bytes modulo 2**64, end index).

    simple_strtoull() then an optional K/M/G/T/P/E suffix shifting the value
    left in 64 bits, so `16E` is 0 and 2**64 wraps to 0, as in the kernel.
    No digits leave the end at `i` (the caller's "nothing parsed").
    """
    value, end = simple_strntoull(s, i, 0)
    shift = _SHIFTS.get(s[end:end + 1].lower())
    if shift is not None:
        value = (value << shift) & _U64
        end += 1
    return value, end


class ScanFail(Exception):
    """A vsscanf() conversion did not match: scanning stops there."""


class Scanner:
    """A cursor with the kernel vsscanf() conversions the debugfs writer uses."""

    def __init__(self, s: str) -> None:
        self.s = s
        self.pos = 0

    def skip_spaces(self) -> None:
        """White space in the format matches any amount of white space, including none."""
        self.pos = skip_spaces(self.s, self.pos)

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
        if self.pos >= len(self.s) or not "0" <= self.s[self.pos] <= "9":
            raise ScanFail
        value, self.pos, _ = _parse_integer(self.s, self.pos, 10)
        return value & ((1 << bits) - 1)

    def string(self, width: int) -> str:
        """%<width>s: skip white space, copy up to `width` non-space characters."""
        self._need()
        self.skip_spaces()
        start = self.pos
        n = len(self.s)
        while self.pos < n and self.s[self.pos] not in _SPACES and self.pos - start < width:
            self.pos += 1
        return self.s[start:self.pos]
