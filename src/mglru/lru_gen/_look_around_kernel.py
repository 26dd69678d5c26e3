"""The compiled window loop of lru_gen_look_around() (mm/vmscan.c) for the common case.

Mechanism: with no secondary MMU to ask, harvesting the window is a pass over
its young PTEs: each one whose folio is on this lruvec's memcg (and, where the
version skips them, on an MGLRU list) has its accessed bit cleared and its
folio updated as walk_update_folio() / folio_update_gen() do (dirty bit
carried to the folio, refs cleared, gen moved to max_seq's, page counts
moved). `lru_gen_look_around` calls it only where those semantics apply (a
walk batch, or the pre-v6.14 rule); the rest stays in Python.

Future optimizations:
1. fold the rmap hint lookup of shrink_folio_list into the same kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.mm.page import (
    PTE_DIRTY as _PTE_DIRTY,
    PTE_YOUNG as _PTE_YOUNG,
    PG_anon as _PG_anon,
    PG_dirty as _PG_dirty,
    PG_head as _PG_head,
    PG_referenced as _PG_referenced,
    PG_swapbacked as _PG_swapbacked,
    PG_swapcache as _PG_swapcache,
    PG_tail as _PG_tail,
    PG_workingset as _PG_workingset,
)

__all__ = ["harvest_window", "look_around_window"]

_PMD_SIZE = 2 << 20
_PAGE_SIZE = 4096


@njit(cache=True, nogil=True, _nrt=False)
def look_around_window(addr, vma_start, vma_end, nr_pages):
    """The [start, end) lru_gen_look_around() scans around `addr`: its PMD's span inside
    the VMA, cut to `nr_pages` pages centred on `addr` where it is longer (moved to fit
    at either edge). mm/vmscan.c: lru_gen_look_around()."""
    start = max(addr & ~(_PMD_SIZE - 1), vma_start)
    end = min(addr | (_PMD_SIZE - 1), vma_end - 1) + 1
    half = nr_pages * _PAGE_SIZE // 2
    if end - start > nr_pages * _PAGE_SIZE:
        if addr - start < half:
            end = start + 2 * half
        elif end - addr < half:
            start = end - 2 * half
        else:
            start, end = addr - half, addr + half
    return start, end


@njit(cache=True, nogil=True, _nrt=False)
def window_folio(pfn, flags, gen, memcg, memcg_id, skip_unlisted):
    """The head of the folio a window PTE maps if look-around may update it, else -1:
    it must be charged to the lruvec's memcg and, with `skip_unlisted`, on a list."""
    head = pfn & ~np.int64(511) if flags[pfn] & _PG_tail else pfn
    if memcg[head] != memcg_id:
        return -1
    if skip_unlisted and gen[head] == 0:
        return -1  # not on an MGLRU list (e.g. the folio under reclaim)
    return head


@njit(cache=True, nogil=True, _nrt=False)
def harvest_window(win_f, win_p, cand, flags, gen, memcg, nr_pages, memcg_id,
                   skip_unlisted, new_gen, with_walk, two_step, refs_flags):
    """Harvest the window PTEs `cand` (present, young, in the node); returns how many were young.

    `win_f`/`win_p` are the window's PTE bits (cleared in place) and pfns,
    `nr_pages` the lruvec's [gen][type] page counts.
    """
    young = 0
    for i in cand:
        head = window_folio(win_p[i], flags, gen, memcg, memcg_id, skip_unlisted)
        if head < 0:
            continue
        dirty = win_f[i] & _PTE_DIRTY
        win_f[i] &= np.uint8(~_PTE_YOUNG & 0xFF)
        young += 1
        # walk_update_folio() / folio_update_gen(); see look_around._update_folio
        f = np.int64(flags[head])
        if dirty and not f & _PG_dirty and not (
                f & _PG_anon and f & _PG_swapbacked and not f & _PG_swapcache):
            f |= _PG_dirty
            flags[head] = f
        old_gen = np.int64(gen[head]) - 1
        if old_gen < 0:
            flags[head] = f | _PG_referenced
            continue
        if two_step and not f & (_PG_referenced | _PG_workingset):
            flags[head] = f | _PG_referenced
            continue
        if not with_walk and old_gen == new_gen:
            continue
        f &= ~refs_flags
        if two_step:
            f |= _PG_workingset
        flags[head] = f
        gen[head] = new_gen + 1
        if old_gen != new_gen:
            nr = 512 if f & _PG_head else 1
            t = 0 if f & _PG_swapbacked else 1
            nr_pages[old_gen, t] -= nr
            nr_pages[new_gen, t] += nr
    return young
