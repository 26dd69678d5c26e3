"""The aging: producing generations.

Kernel: mm/vmscan.c: try_to_inc_max_seq(), inc_max_seq(), inc_min_seq(), reset_ctrl_pos(),
try_to_inc_min_seq().

Mechanism: `try_to_inc_max_seq` walks the memcg's mm list (`iterate_mm_list`
+ `walk_mm`) so that accessed pages are moved into the generation of the
current `max_seq`, then `inc_max_seq` opens a new, empty youngest generation.
If a type already has MAX_NR_GENS generations, `inc_min_seq` first retires its
oldest one, moving the folios still on that list one generation up (or leaving
them in place for a type that cannot be evicted, which then aliases the new
youngest index: the documented cold/hot inversion).

Future optimizations:
1. index folios per lruvec to make inc_min_seq O(lruvec) rather than O(node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen._list_kernel import inc_min_seq_scan, list_key_range
from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    LRU_GEN_ANON,
    LRU_GEN_FILE,
    LRU_REFS_FLAGS,
    LRU_REFS_FLAGS_V6_10,
    MAX_NR_GENS,
    MAX_NR_TIERS,
    MIN_NR_GENS,
    SWAPPINESS_ANON_ONLY,
    lru_gen_from_seq,
    lru_hist_from_seq,
)
from mglru.lru_gen.lists import renumber, reserve_tail
from mglru.lru_gen.mm_list import iterate_mm_list, iterate_mm_list_nowalk
from mglru.lru_gen.walk import MmWalk, walk_mm
from mglru.mm.memcg import MAX_SWAPPINESS

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec

__all__ = ["try_to_inc_max_seq", "inc_max_seq", "inc_min_seq", "try_to_inc_min_seq",
           "reset_ctrl_pos", "type_is_evictable"]


def type_is_evictable(type_: int, swappiness: int) -> bool:
    """Anon needs swappiness > 0; file needs swappiness <= 200 (mm/vmscan.c: inc_min_seq())."""
    return swappiness != 0 if type_ == LRU_GEN_ANON else swappiness != SWAPPINESS_ANON_ONLY


def reset_ctrl_pos(k: SimKernel, lruvec: Lruvec, type_: int, carryover: bool) -> None:
    """Fold the PID history of a retiring generation into the averages (reset_ctrl_pos())."""
    nr_hist = lruvec.nr_hist_gens
    clear = nr_hist == 1 if carryover else nr_hist > 1
    if not carryover and not clear:
        return
    seq = lruvec.min_seq[type_] if carryover else lruvec.max_seq + 1
    hist = lru_hist_from_seq(seq, nr_hist)
    shift = 0 if k.cfg.protect_in_inc_min_seq else 1  # v6.10: protected[tier - 1]
    for tier in range(MAX_NR_TIERS):
        prot = lruvec.protected[hist, type_, tier - shift] if tier >= shift else 0
        if carryover:
            lruvec.avg_refaulted[type_, tier] = (
                lruvec.avg_refaulted[type_, tier] + lruvec.refaulted[hist, type_, tier]) // 2
            lruvec.avg_total[type_, tier] = (
                lruvec.avg_total[type_, tier] + prot + lruvec.evicted[hist, type_, tier]) // 2
        if clear:
            lruvec.refaulted[hist, type_, tier] = 0
            lruvec.evicted[hist, type_, tier] = 0
            if tier >= shift:
                lruvec.protected[hist, type_, tier - shift] = 0


def inc_min_seq(k: SimKernel, lruvec: Lruvec, type_: int, swappiness: int) -> bool:
    """Retire the oldest generation of a type. mm/vmscan.c: inc_min_seq().

    The kernel moves at most MAX_LRU_BATCH folios per lock hold and restarts;
    the model moves them all at once (the timing layer charges the batches).
    """
    if type_is_evictable(type_, swappiness):
        old_gen = lru_gen_from_seq(lruvec.min_seq[type_])
        hist = lru_hist_from_seq(lruvec.min_seq[type_], lruvec.nr_hist_gens)
        mem = k.mem
        node = mem.nodes[lruvec.nid]
        pages = np.zeros(MAX_NR_GENS, np.int64)
        listed = np.zeros(MAX_NR_GENS, np.int64)
        protected = np.zeros(MAX_NR_TIERS, np.int64)
        refs_flags = LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10
        if lruvec.nr_listed[old_gen, type_].sum():
            args = (mem.flags, mem.lru, mem.memcg, node.start_pfn, node.fresh, lruvec.memcg.id,
                    type_, old_gen)
            kmin, kmax, n = list_key_range(*args)
            if mem.order_tail - (kmax - kmin) < 1:
                renumber(mem)
                kmin, kmax, n = list_key_range(*args)
            base = reserve_tail(mem, kmax - kmin + 1)
            inc_min_seq_scan(mem.flags, mem.gen, mem.lru, mem.memcg, node.start_pfn, node.fresh,
                             lruvec.memcg.id, type_, old_gen, refs_flags, kmin, base, pages,
                             protected, listed)
        lruvec.nr_pages[:, type_, 0] += pages
        lruvec.nr_listed[:, type_, 0] += listed
        if k.cfg.protect_in_inc_min_seq:
            lruvec.protected[hist, type_] += protected
    reset_ctrl_pos(k, lruvec, type_, True)
    lruvec.min_seq[type_] += 1
    return True


def inc_max_seq(k: SimKernel, lruvec: Lruvec, seq: int, swappiness: int) -> bool:
    """Open a new youngest generation. mm/vmscan.c: inc_max_seq()."""
    if seq < lruvec.max_seq:
        return False
    k.warn_on_once(not lruvec.seq_is_valid(), "inc_max_seq: !seq_is_valid(lruvec)")
    if seq != lruvec.max_seq:
        return False
    order = ((LRU_GEN_ANON, LRU_GEN_FILE) if k.cfg.independent_min_seq
             else (LRU_GEN_FILE, LRU_GEN_ANON))
    for type_ in order:
        if lruvec.get_nr_gens(type_) == MAX_NR_GENS:
            inc_min_seq(k, lruvec, type_, swappiness)
    for type_ in range(ANON_AND_FILE):
        reset_ctrl_pos(k, lruvec, type_, False)
    lruvec.timestamps[lru_gen_from_seq(lruvec.max_seq + 1)] = k.jiffies
    lruvec.max_seq += 1
    return True


def try_to_inc_max_seq(k: SimKernel, lruvec: Lruvec, seq: int, swappiness: int,
                       force_scan: bool) -> bool:
    """Walk the mm list, then increment max_seq if this walker finished it.

    mm/vmscan.c: try_to_inc_max_seq().

    Returns False when another walker already closed `seq`.
    """
    k.warn_on_once(seq > lruvec.max_seq, "try_to_inc_max_seq: seq > max_seq")
    st = lruvec.mm_state
    if st is None:
        return inc_max_seq(k, lruvec, seq, swappiness)
    if seq <= st.seq:
        return False
    if not k.caps.should_walk_mmu():
        success = iterate_mm_list_nowalk(lruvec, seq)
    else:
        walk = MmWalk(lruvec, seq, swappiness, force_scan)
        k.last_walk = walk
        mm = None
        while True:
            success, mm = iterate_mm_list(walk, mm)
            if mm is None:
                break
            walk_mm(k, mm, walk)
    if success:
        success = inc_max_seq(k, lruvec, seq, swappiness)
        k.warn_on_once(not success, "try_to_inc_max_seq: inc_max_seq failed")
    return success


def try_to_inc_min_seq(k: SimKernel, lruvec: Lruvec, swappiness: int) -> bool:
    """Advance min_seq over empty generations. mm/vmscan.c: try_to_inc_min_seq()."""
    min_seq = list(lruvec.min_seq)
    types = [t for t in range(ANON_AND_FILE) if type_is_evictable(t, swappiness)]
    for t in types:
        while min_seq[t] + MIN_NR_GENS <= lruvec.max_seq:
            if lruvec.nr_listed[lru_gen_from_seq(min_seq[t]), t].sum():
                break
            min_seq[t] += 1
    if k.cfg.independent_min_seq:
        if 0 < swappiness <= MAX_SWAPPINESS:
            s = lruvec.max_seq - MIN_NR_GENS
            if min_seq[LRU_GEN_ANON] > s and min_seq[LRU_GEN_FILE] < s:
                min_seq[LRU_GEN_ANON] = s
            elif min_seq[LRU_GEN_FILE] > s and min_seq[LRU_GEN_ANON] < s:
                min_seq[LRU_GEN_FILE] = s
    elif swappiness:  # v6.10: anon may not pass file
        min_seq[LRU_GEN_ANON] = min(min_seq[LRU_GEN_ANON], min_seq[LRU_GEN_FILE])
        min_seq[LRU_GEN_FILE] = max(min_seq[LRU_GEN_ANON], lruvec.min_seq[LRU_GEN_FILE])
    success = False
    for t in types:
        if min_seq[t] <= lruvec.min_seq[t]:
            continue
        reset_ctrl_pos(k, lruvec, t, True)
        lruvec.min_seq[t] = min_seq[t]
        success = True
    return success
