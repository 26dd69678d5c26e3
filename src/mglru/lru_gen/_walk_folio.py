"""The aging walk's per-folio steps, compiled: get_pfn_folio() and walk_update_folio().

Mechanism (mm/vmscan.c, v6.14): for each young PTE or PMD the walk finds the
folio (`get_pfn_folio`: on an MGLRU list, of this node, this memcg, a type
the walk may age), then `walk_update_folio` moves its dirty bit over
(`folio_mark_dirty()` unless it is a clean swap-backed anon folio out of the
swap cache) and calls `folio_update_gen()`: with two-step promotion (v6.14)
a first sighting only sets PG_referenced; otherwise the refs flags are
cleared, PG_workingset set (v6.14) and the folio moved to `new_gen`.
`update_batch_size()` counts the pages moved in `walk->nr_pages`, which the
caller applies once per batch (`reset_batch_size()`).

The batch here is a run-length tuple `(key, pages, moved)`: consecutive
folios usually share (old gen, type), so a run is added to `nr_pages` when it
ends (`flush_batch`), not per folio. These helpers are compiled without
reference counting (`_nrt=False`): a helper taking arrays otherwise
increfs/decrefs each one per call, 15x slower in the per-PTE loop than the
same code written inline (benchmarks/walk_state_layout.py); without it a call
costs what inlining by hand does.

Future optimizations:
1. none pending: the per-PTE loops measure the same as hand-inlined code.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.mm.page import (
    LRU_REFS_MASK as _REFS_MASK,
    PG_anon as _PG_anon,
    PG_dirty as _PG_dirty,
    PG_head as _PG_head,
    PG_referenced as _PG_referenced,
    PG_swapbacked as _PG_swapbacked,
    PG_swapcache as _PG_swapcache,
    PG_tail as _PG_tail,
    PG_workingset as _PG_workingset,
)

__all__ = ["get_pfn_folio", "walk_update_folio", "new_batch", "flush_batch"]

_HEAD_MASK = ~np.int64(511)


@njit(cache=True, nogil=True, _nrt=False)
def get_pfn_folio(pfn, fo, w):
    """The head pfn of `pfn`'s folio if the walk may age it, else -1.

    `fo` is a `Folios`, `w` a `WalkArgs`. The node test also sits here when
    get_pte_pfn() does not make it (v6.10).
    """
    if pfn < w.node_start or pfn >= w.node_end:
        return -1
    head = pfn
    if fo.flags[pfn] & _PG_tail:
        head = pfn & _HEAD_MASK
    if fo.gen[head] == 0 or np.int64(fo.memcg[head]) != w.memcg_id:
        return -1
    if not w.can_swap and fo.flags[head] & _PG_swapbacked:
        return -1
    return head


@njit(cache=True, nogil=True, _nrt=False)
def new_batch():
    """An empty `(key, pages, moved)` run (see the module)."""
    return np.int64(-1), np.int64(0), np.int64(0)


@njit(cache=True, nogil=True, _nrt=False)
def flush_batch(batch, w):
    """update_batch_size() for the pending run; returns the folios moved."""
    key, pages, moved = batch
    if pages:
        w.nr_pages[key >> 1, key & 1] -= pages
        w.nr_pages[w.new_gen, key & 1] += pages
    return moved


@njit(cache=True, nogil=True, _nrt=False)
def walk_update_folio(head, dirty, fo, w, batch):
    """walk_update_folio() + folio_update_gen() on a young folio; returns the batch."""
    f = np.int64(fo.flags[head])
    if dirty and not (f & _PG_dirty):
        if not ((f & _PG_anon) and (f & _PG_swapbacked) and not (f & _PG_swapcache)):
            f |= _PG_dirty
    if w.two_step and not (f & (_PG_referenced | _PG_workingset)):
        # first sighting only marks the folio (v6.14)
        fo.flags[head] = np.uint16((f & ~np.int64(_REFS_MASK)) | _PG_referenced)
        return batch
    old_gen = np.int64(fo.gen[head]) - 1
    f &= ~np.int64(w.refs_flags)
    if w.two_step:
        f |= _PG_workingset
    fo.flags[head] = np.uint16(f)
    fo.gen[head] = np.uint8(w.new_gen + 1)
    if old_gen < 0 or old_gen == w.new_gen:
        return batch
    key, pages, moved = batch
    new_key = old_gen * 2 + (0 if f & _PG_swapbacked else 1)
    if new_key != key:
        flush_batch(batch, w)
        key = new_key
        pages = 0
    return key, pages + (512 if f & _PG_head else 1), moved + 1
