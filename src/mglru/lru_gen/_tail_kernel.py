"""The members of one generation list in one compiled pass (see `lists.tail_first`).

NOTE: the eviction loop asks for a list's order each time its cached one runs
out (a few hundred folios at a time under memcg reclaim); numpy's masks and
nonzero over the node's pages cost several passes, this one pass less.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.mm.page import PG_swapbacked as _PG_swapbacked, PG_tail as _PG_tail

invalidate_stale(__file__, "../mm/page.py")

__all__ = ["list_members"]

_LIST_SHIFT = 29
_ORDER_MASK = (1 << 29) - 1


@njit(cache=True, nogil=True)
def list_members(lru, memcg, flags, lo, hi, gen, memcg_id, type_):
    """The head folios in [lo, hi) on list (gen, type_) of memcg `memcg_id`, in pfn
    order, each packed as order key << 32 | pfn (`lists.tail_first` sorts them: numpy's
    sorts measured faster here than a compiled one), and how many times the keys
    go down from one folio to the next (how far from sorted they come)."""
    packed = np.empty(hi - lo, np.int64)
    n = 0
    descents = 0
    last = np.int64(0)
    want = np.uint32(gen + 1)
    mask = np.uint16(_PG_tail | _PG_swapbacked)
    expect = np.uint16(0 if type_ else _PG_swapbacked)  # a head folio of this type
    cg = np.uint16(memcg_id)
    for pfn in range(lo, hi):
        # without branches: the members come in no pattern a branch predictor learns
        x = lru[pfn]
        member = np.int64((x >> _LIST_SHIFT == want) & (memcg[pfn] == cg)
                          & (flags[pfn] & mask == expect))
        key = np.int64(x & _ORDER_MASK)
        packed[n] = key << 32 | pfn
        descents += member & (key < last)
        last = key if member else last
        n += member
    return packed[:n], descents
