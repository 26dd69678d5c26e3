"""Byte sizes as every command takes them: `64M`, `1G`, `4096`, `0x10k`.

One parser for all options that take a size, the one KVM's selftests use
(tools/testing/selftests/kvm/lib/test_util.c, parse_size()), so `-b 1G` means
the same in `mglru access-tracking-perf-test` as in the C test.
"""

from __future__ import annotations

__all__ = ["parse_size", "parse_sizes"]


def parse_size(text: str) -> int:
    """parse_size() of test_util.c: a number (C base prefixes) and one of b/k/m/g/t.

    Raises:
        ValueError: with the C library's message.
    """
    if not text or not text[0].isdigit():
        raise ValueError(f"Need at least one digit in '{text}'")
    end = 0
    if text[:2].lower() == "0x":
        end = 2
        while end < len(text) and text[end] in "0123456789abcdefABCDEF":
            end += 1
        base = int(text[2:end] or "0", 16)
    else:
        while end < len(text) and text[end].isdigit():
            end += 1
        digits = text[:end]
        base = int(digits, 8) if len(digits) > 1 and digits[0] == "0" else int(digits)
    suffix = text[end:end + 1].lower()
    shifts = {"t": 40, "g": 30, "m": 20, "k": 10, "b": 0, "": 0}
    if suffix not in shifts:
        raise ValueError(f"Unknown size letter {text[end]}")
    if base >= 1 << 64 or (base << shifts[suffix]) >= 1 << 64:
        raise ValueError("Overflow scaling size!")
    return base << shifts[suffix]


def parse_sizes(text: str) -> list[int]:
    """A comma-separated list of `parse_size` values ("64M,1G"); empty items are skipped.

    Raises:
        ValueError: an item is not a size, or the list is empty.
    """
    sizes = [parse_size(s.strip()) for s in text.split(",") if s.strip()]
    if not sizes:
        raise ValueError(f"expected a comma-separated list of sizes such as 64M,1G, got {text!r}")
    return sizes
