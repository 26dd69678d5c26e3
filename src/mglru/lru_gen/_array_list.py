"""Numba typed lists of arrays, made and grown by compiled (and disk-cached) code.

NOTE: `numba.typed.List()` used from Python compiles its methods in every new
process (about half a second here, longer on a busy machine); the same
operations inside `cache=True` functions are loaded from numba's cache instead.
The aging walk hands the secondary MMUs' SPTE arrays over in such a list.
"""

from __future__ import annotations

from numba import njit
from numba.typed import List

__all__ = ["new_array_list", "append_array"]


@njit(cache=True, nogil=True)
def new_array_list(first):
    """A typed list holding `first`."""
    out = List()
    out.append(first)
    return out


@njit(cache=True, nogil=True)
def append_array(lst, a):
    """Append `a` to the typed list `lst`."""
    lst.append(a)
