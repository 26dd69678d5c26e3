"""Compiled tail-first order of one generation list (see `lists.tail_first`).

NOTE: the eviction loop asks for a list's order each time its cached one runs
out (a few hundred folios at a time under memcg reclaim); numpy's mask, nonzero
and argsort over the node's pages cost tens of microseconds there, this one pass
and a sort of the list's own folios a few.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.mm.page import PG_swapbacked as _PG_swapbacked, PG_tail as _PG_tail

invalidate_stale(__file__, "../mm/page.py")

__all__ = ["list_tail_first"]

_LIST_SHIFT = 29
_ORDER_MASK = (1 << 29) - 1


@njit(cache=True, nogil=True)
def list_tail_first(lru, memcg, flags, lo, hi, gen, memcg_id, type_):
    """Head pfns in [lo, hi) on list (gen, type_) of memcg `memcg_id`, oldest first."""
    n = 0
    for pfn in range(lo, hi):
        if (lru[pfn] >> _LIST_SHIFT == gen + 1 and memcg[pfn] == memcg_id
                and not flags[pfn] & _PG_tail and (flags[pfn] & _PG_swapbacked == 0) == type_):
            n += 1
    pfns = np.empty(n, np.int64)
    keys = np.empty(n, np.int64)
    n = 0
    for pfn in range(lo, hi):
        if (lru[pfn] >> _LIST_SHIFT == gen + 1 and memcg[pfn] == memcg_id
                and not flags[pfn] & _PG_tail and (flags[pfn] & _PG_swapbacked == 0) == type_):
            pfns[n] = pfn
            keys[n] = lru[pfn] & _ORDER_MASK
            n += 1
    return pfns[np.argsort(keys, kind="mergesort")]
