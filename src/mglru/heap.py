"""Hand freed heap memory back to the operating system.

A simulated address space lives in numpy arrays; tearing one down frees them,
but glibc keeps freed chunks in its arenas (and raises its mmap threshold
after large frees, so later arrays come from the heap too). A loop that maps,
touches and exits tasks then sees its RSS creep by fragmentation alone.
`malloc_trim(0)` releases every free page of every arena. On a C library
without it (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util

__all__ = ["trim"]

_libc: ctypes.CDLL | None | bool = False  # False: not looked up yet


def _malloc_trim():
    global _libc
    if _libc is False:
        name = ctypes.util.find_library("c")
        try:
            _libc = ctypes.CDLL(name) if name else None
        except OSError:
            _libc = None
    return getattr(_libc, "malloc_trim", None) if _libc else None


def trim() -> bool:
    """Release free heap pages to the OS; True if the C library could."""
    fn = _malloc_trim()
    if fn is None:
        return False
    return bool(fn(0))
