"""The swap knobs user space writes: /proc/sys/vm/page-cluster, /sys/kernel/mm/swap/vma_ra_enabled.

Kernel: kernel/sysctl.c (vm_table: page-cluster through proc_dointvec_minmax() with
0 as its minimum and, from the kernels that have it, page_cluster_max = 31 as its
maximum: include/linux/mm.h 6.12; 6.1 has no maximum), mm/swap_state.c
(vma_ra_enabled_show() / vma_ra_enabled_store(): kstrtobool()).

A proc_dointvec write takes one int: leading white space, an optional '-', then
digits in C notation (0x.. hex, 0.. octal), ended by the end of the write, a
space, a tab or a newline. Anything else, a value outside int or outside the
bounds is EINVAL and changes nothing. What follows the first value is not
parsed, and the write returns the bytes up to it (and the spaces after it).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from mglru.lru_gen.kstrto import _fixup_radix, _parse_integer, skip_spaces

if TYPE_CHECKING:
    from mglru.kernel import SimKernel

__all__ = ["page_cluster_show", "page_cluster_store", "vma_ra_enabled_show",
           "vma_ra_enabled_store", "proc_dointvec_minmax"]

_TMPBUFLEN = 22
_INT_MAX = (1 << 31) - 1
_WSPACE_SEP = " \t\n"


def _einval() -> OSError:
    return OSError(errno.EINVAL, "Invalid argument")


def proc_dointvec_minmax(buf: str, lo: int | None, hi: int | None) -> tuple[int, int]:
    """Parse a write to a one-int sysctl: (value, bytes consumed). Raises OSError(EINVAL)."""
    i = skip_spaces(buf)
    if i == len(buf):
        raise _einval()
    tmp = buf[i:i + _TMPBUFLEN - 1]
    neg = tmp[:1] == "-" and len(tmp) > 1
    j = 1 if neg else 0
    if not tmp[j:j + 1].isdigit() or not tmp[j].isascii():
        raise _einval()
    base, j = _fixup_radix(tmp, j, 0)
    value, end, overflow = _parse_integer(tmp, j, base)
    if overflow or end == _TMPBUFLEN - 1:
        raise _einval()
    if end < len(tmp) and tmp[end] not in _WSPACE_SEP:
        raise _einval()
    if value > (_INT_MAX + 1 if neg else _INT_MAX):
        raise _einval()
    value = -value if neg else value
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise _einval()
    return value, skip_spaces(buf, i + end)


def page_cluster_show(k: SimKernel) -> str:
    """The current page-cluster."""
    return f"{k.swap.page_cluster}\n"


def page_cluster_store(k: SimKernel, buf: str) -> int:
    """Set page-cluster (0..31, or any int >= 0 where the kernel has no maximum)."""
    value, used = proc_dointvec_minmax(buf, 0, k.rules.page_cluster_max)
    k.swap.page_cluster = value
    return used


def vma_ra_enabled_show(k: SimKernel) -> str:
    """"true" or "false"."""
    return "true\n" if k.swap.vma_ra_enabled else "false\n"


def vma_ra_enabled_store(k: SimKernel, buf: str) -> None:
    """kstrtobool() (lib/kstrtox.c): y/Y/1, n/N/0, on, off; else EINVAL."""
    c0, c1 = buf[:1].lower(), buf[1:2].lower()
    if c0 in ("y", "1") or (c0 == "o" and c1 == "n"):
        k.swap.vma_ra_enabled = True
    elif c0 in ("n", "0") or (c0 == "o" and c1 == "f"):
        k.swap.vma_ra_enabled = False
    else:
        raise _einval()
