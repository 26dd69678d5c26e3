"""Adding folios to and removing them from MGLRU lists (include/linux/mm_inline.h).

include/linux/mm_inline.h (`lru_gen_folio_seq`, `lru_gen_add_folio`, `lru_gen_del_folio`) and
mm/vmscan.c (`folio_inc_gen`). All functions take arrays of *head* pfns that belong to
one lruvec, so a fault of 262144 pages is a handful of numpy operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen.helpers import MAX_NR_GENS, MIN_NR_GENS
from mglru.lru_gen.lists import LRU_LIST_SHIFT, list_add, list_add_one, list_del, list_gens
from mglru.mm.page import (
    HPAGE_PMD_NR,
    LRU_REFS_MASK,
    PG_active,
    PG_dirty,
    PG_head,
    PG_lru,
    PG_reclaim,
    PG_referenced,
    PG_swapbacked,
    PG_swapcache,
    PG_unevictable,
    PG_workingset,
    PG_writeback,
)

if TYPE_CHECKING:
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.memory import PhysMem

__all__ = ["lru_gen_folio_seq", "lru_gen_add_folio", "lru_gen_del_folio", "folio_types",
           "folio_nr_pages", "account_listed", "lru_gen_add_one", "lru_gen_del_one"]


def folio_types(flags: npt.NDArray[np.uint16]) -> npt.NDArray[np.int64]:
    """LRU type per folio: 1 (file) iff not swap-backed."""
    return (flags & PG_swapbacked == 0).astype(np.int64)


def folio_nr_pages(flags: npt.NDArray[np.uint16]) -> npt.NDArray[np.int64]:
    """Pages per folio: 512 for a THP head, else 1."""
    return np.where(flags & PG_head, HPAGE_PMD_NR, 1).astype(np.int64)


def lru_gen_folio_seq(lruvec: Lruvec, flags: npt.NDArray[np.uint16],
                      reclaiming: bool) -> npt.NDArray[np.int64]:
    """Target seq of folios entering MGLRU.

    From v6.14 (include/linux/mm_inline.h: lru_gen_folio_seq()), clamped to min_seq:

    1. PG_active: max_seq if PG_workingset else max_seq - 1;
    2. added by reclaim: max_seq - 3 (so the oldest);
    3. anon not in swap cache, or PG_reclaim and (dirty or writeback): max_seq - 1;
    4. else max_seq - 3, or max_seq - 2 with PG_workingset.

    Before (6.1-6.13: lru_gen_add_folio()), see `_folio_seq_by_distance`.
    """
    if not lruvec.rules.folio_seq_by_workingset:
        return _folio_seq_by_distance(lruvec, flags, reclaiming)
    max_seq = lruvec.max_seq
    ws = (flags & PG_workingset) != 0
    if reclaiming:
        seq = np.full(len(flags), max_seq - MAX_NR_GENS + 1, np.int64)
    else:
        seq = np.where(ws, max_seq - 2, max_seq - 3).astype(np.int64)
        anon_not_sc = (flags & PG_swapbacked != 0) & (flags & PG_swapcache == 0)
        reclaim_wb = (flags & PG_reclaim != 0) & (flags & (PG_dirty | PG_writeback) != 0)
        seq[anon_not_sc | reclaim_wb] = max_seq - 1
    active = (flags & PG_active) != 0
    seq[active] = np.where(ws[active], max_seq, max_seq - 1)
    types = folio_types(flags)
    min_seq = np.asarray(lruvec.min_seq, np.int64)[types]
    return np.maximum(seq, min_seq)


def _folio_seq_by_distance(lruvec: Lruvec, flags: npt.NDArray[np.uint16],
                           reclaiming: bool) -> npt.NDArray[np.int64]:
    """Target seq before v6.14 (include/linux/mm_inline.h: lru_gen_add_folio(), 6.1-6.13).

    1. PG_active: max_seq, workingset or not ("freshly faulted in");
    2. anon not in swap cache, or PG_reclaim and (dirty or writeback): max_seq - 1,
       even when added by reclaim;
    3. added by reclaim, or at most MIN_NR_GENS + 1 generations of the type:
       min_seq of the type (the oldest);
    4. else min_seq + 1 (the second oldest).
    """
    max_seq = lruvec.max_seq
    types = folio_types(flags)
    min_seq = np.asarray(lruvec.min_seq, np.int64)[types]
    oldest = np.full(len(flags), reclaiming) | (min_seq + MIN_NR_GENS >= max_seq)
    seq = np.where(oldest, min_seq, min_seq + 1)
    anon_not_sc = (flags & PG_swapbacked != 0) & (flags & PG_swapcache == 0)
    reclaim_wb = (flags & PG_reclaim != 0) & (flags & (PG_dirty | PG_writeback) != 0)
    seq[anon_not_sc | reclaim_wb] = max_seq - 1
    seq[(flags & PG_active) != 0] = max_seq
    return seq


def account_listed(lruvec: Lruvec, gens: npt.NDArray[np.int64], types: npt.NDArray[np.int64],
                   nr: npt.NDArray[np.int64], sign: int, *, pages: bool = True,
                   lists: bool = True) -> None:
    """Add (sign=+1) or remove folios from the per-gen page and list counters."""
    key = gens * 2 + types
    if pages:
        lruvec.nr_pages[:, :, 0] += sign * np.bincount(key, weights=nr, minlength=8).astype(
            np.int64).reshape(MAX_NR_GENS, 2)
    if lists:
        lruvec.nr_listed[:, :, 0] += sign * np.bincount(key, minlength=8).reshape(MAX_NR_GENS, 2)


def lru_gen_add_folio(mem: PhysMem, lruvec: Lruvec, pfns: npt.NDArray[np.int64],
                      reclaiming: bool = False) -> npt.NDArray[np.int64]:
    """Put folios (head pfns of one lruvec) on MGLRU lists; returns their seqs.

    Unevictable folios are not added. Sets the gen field, clears PG_active (and,
    where `rules.active_add_resets_tier`, an active folio's refs and PG_referenced:
    it starts tier 0 in max_seq; PG_workingset stays for PSI), sets PG_lru, and counts
    pages by gen. include/linux/mm_inline.h: lru_gen_add_folio() (6.1, 6.12).
    """
    flags = mem.flags[pfns]
    keep = (flags & PG_unevictable) == 0
    if not keep.all():
        pfns, flags = pfns[keep], flags[keep]
    seqs = lru_gen_folio_seq(lruvec, flags, reclaiming)
    gens = seqs % MAX_NR_GENS
    mem.gen[pfns] = gens + 1
    list_add(mem, pfns, gens, at_tail=reclaiming)
    new = (flags & ~np.uint16(PG_active)) | PG_lru
    if lruvec.rules.active_add_resets_tier:
        tier_bits = np.uint16(LRU_REFS_MASK | PG_referenced)
        new = np.where(flags & PG_active, new & ~tier_bits, new).astype(np.uint16)
    mem.flags[pfns] = new
    account_listed(lruvec, gens, folio_types(flags), folio_nr_pages(flags), +1)
    return seqs


def _folio_seq_one(lruvec: Lruvec, flags: int, reclaiming: bool) -> int:
    """`lru_gen_folio_seq` for one folio, on Python ints (the fault path's common case)."""
    max_seq = lruvec.max_seq
    min_seq = lruvec.min_seq[0 if flags & PG_swapbacked else 1]
    ws = flags & PG_workingset
    anon_not_sc = flags & PG_swapbacked and not flags & PG_swapcache
    reclaim_wb = flags & PG_reclaim and flags & (PG_dirty | PG_writeback)
    if not lruvec.rules.folio_seq_by_workingset:  # see _folio_seq_by_distance
        if flags & PG_active:
            return max_seq
        if anon_not_sc or reclaim_wb:
            return max_seq - 1
        return min_seq if reclaiming or min_seq + MIN_NR_GENS >= max_seq else min_seq + 1
    if flags & PG_active:
        seq = max_seq if ws else max_seq - 1
    elif reclaiming:
        seq = max_seq - MAX_NR_GENS + 1
    elif anon_not_sc or reclaim_wb:
        seq = max_seq - 1
    else:
        seq = max_seq - 2 if ws else max_seq - 3
    return max(seq, min_seq)


def lru_gen_add_one(mem: PhysMem, lruvec: Lruvec, pfn: int) -> None:
    """`lru_gen_add_folio` (not reclaiming) for one head pfn: the same state, no arrays.

    NOTE: a fault adds one folio; numpy calls on 1-element arrays cost more than
    the work, so this twin does it on Python ints (tests check the two agree).
    """
    flags = int(mem.flags[pfn])
    if flags & PG_unevictable:
        return
    gen = _folio_seq_one(lruvec, flags, False) % MAX_NR_GENS
    mem.gen[pfn] = gen + 1
    list_add_one(mem, pfn, gen)
    if lruvec.rules.active_add_resets_tier and flags & PG_active:
        flags &= ~(LRU_REFS_MASK | PG_referenced)
    mem.flags[pfn] = (flags & ~PG_active) | PG_lru
    type_ = 0 if flags & PG_swapbacked else 1
    lruvec.nr_pages[gen, type_, 0] += HPAGE_PMD_NR if flags & PG_head else 1
    lruvec.nr_listed[gen, type_, 0] += 1


def lru_gen_del_folio(mem: PhysMem, lruvec: Lruvec, pfns: npt.NDArray[np.int64],
                      reclaiming: bool) -> None:
    """Take folios off MGLRU lists. include/linux/mm_inline.h: lru_gen_del_folio().

    Clears the gen field; if not reclaiming and the gen was active (the two
    youngest), sets PG_active so the folio keeps its status elsewhere.
    """
    flags = mem.flags[pfns]
    gens = mem.gen[pfns].astype(np.int64) - 1
    lgens = list_gens(mem, pfns)
    types = folio_types(flags)
    nr = folio_nr_pages(flags)
    account_listed(lruvec, gens, types, nr, -1, lists=False)
    account_listed(lruvec, lgens, types, nr, -1, pages=False)
    new = flags & ~np.uint16(PG_lru)
    if not reclaiming:
        active = ((gens == lruvec.max_seq % MAX_NR_GENS)
                  | (gens == (lruvec.max_seq - 1) % MAX_NR_GENS))
        new = np.where(active, new | PG_active, new).astype(np.uint16)
    mem.flags[pfns] = new
    mem.gen[pfns] = 0
    list_del(mem, pfns)



def lru_gen_del_one(mem: PhysMem, lruvec: Lruvec, pfn: int, reclaiming: bool) -> None:
    """`lru_gen_del_folio` for one head pfn on Python ints (see `lru_gen_add_one`)."""
    flags = int(mem.flags[pfn])
    gen = int(mem.gen[pfn]) - 1
    lgen = (int(mem.lru[pfn]) >> LRU_LIST_SHIFT) - 1
    if gen < 0 or lgen < 0:  # off a list: the array twin fails as it always did
        lru_gen_del_folio(mem, lruvec, np.array([pfn], np.int64), reclaiming)
        return
    type_ = 0 if flags & PG_swapbacked else 1
    lruvec.nr_pages[gen, type_, 0] -= HPAGE_PMD_NR if flags & PG_head else 1
    lruvec.nr_listed[lgen, type_, 0] -= 1
    flags &= ~PG_lru
    if not reclaiming and gen in (lruvec.max_seq % MAX_NR_GENS,
                                  (lruvec.max_seq - 1) % MAX_NR_GENS):
        flags |= PG_active
    mem.flags[pfn] = flags
    mem.gen[pfn] = 0
    mem.lru[pfn] = 0
