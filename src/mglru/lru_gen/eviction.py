"""The eviction: consuming generations. Spec §4.1-§4.6.

Mechanism: `try_to_shrink_lruvec` asks `get_nr_to_scan` how much to scan (and
ages when eviction is no longer possible), then `evict_folios` isolates a
batch from the tail of the oldest generation of the type the PID controller
picks (`isolate_folios` -> `scan_folios` -> `sort_folio` / `isolate_folio`),
hands it to `shrink_folio_list` (mm.vmscan) and puts the survivors back.
Budgets are the kernel's: at most MIN_LRU_BATCH isolated and MAX_LRU_BATCH
examined per call.

Eviction follows the upstream rules of spec §4 for every preset; the v6.10
differences the model keeps are those of §8.4 (tiers, protected[tier - 1],
refault test, coupled min_seq).

Future optimizations:
1. cache a list's tail order across evict_folios calls of one reclaim.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen.aging import try_to_inc_max_seq, try_to_inc_min_seq, type_is_evictable
from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_del_folio, lru_gen_folio_seq
from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    DEF_PRIORITY,
    LRU_GEN_FILE,
    LRU_REFS_FLAGS,
    LRU_REFS_FLAGS_V6_10,
    LRU_REFS_MASK,
    MAX_LRU_BATCH,
    MAX_NR_GENS,
    MIN_LRU_BATCH,
    MIN_NR_GENS,
    PG_active,
    PG_dirty,
    PG_head,
    PG_lru,
    PG_reclaim,
    PG_referenced,
    PG_swapbacked,
    PG_swapcache,
    PG_anon,
    PG_unevictable,
    PG_writeback,
    lru_gen_from_seq,
    lru_hist_from_seq,
)
from mglru.lru_gen.lists import list_add, list_gens, tail_first
from mglru.lru_gen.pid import folio_tier, folio_tier_refs, get_tier_idx, get_type_to_scan

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec

__all__ = ["ScanControl", "evictable_min_seq", "should_run_aging", "get_nr_to_scan",
           "evict_folios", "try_to_shrink_lruvec", "run_eviction", "folio_inc_gen"]


@dataclass(slots=True)
class ScanControl:
    """`struct scan_control`: one reclaim's budget and permissions."""

    nr_to_reclaim: int = (1 << 64) - 1
    nr_reclaimed: int = 0
    nr_scanned: int = 0
    priority: int = DEF_PRIORITY
    may_swap: bool = True
    may_writepage: bool = True
    may_unmap: bool = True
    gfp_io: bool = True
    proactive: bool = False
    #: memcg reclaim (limits, memory.reclaim): never aborts early (fairness)
    root_reclaim: bool = False
    #: swappiness override (proactive `swappiness=`), None = the memcg's
    swappiness: int | None = None
    #: counters a user asks for after a run
    stats: dict = field(default_factory=dict)


def evictable_min_seq(lruvec: Lruvec, swappiness: int) -> int:
    """The smallest min_seq over evictable types."""
    return min(lruvec.min_seq[t] for t in range(ANON_AND_FILE) if type_is_evictable(t, swappiness))


def should_run_aging(lruvec: Lruvec, swappiness: int) -> tuple[bool, int]:
    """(aging wanted, nr_to_scan). Spec §4.1, checklist 18."""
    m = evictable_min_seq(lruvec, swappiness)
    if m + MIN_NR_GENS > lruvec.max_seq:
        return True, 0
    size = 0
    for t in range(ANON_AND_FILE):
        if type_is_evictable(t, swappiness):
            for seq in range(lruvec.min_seq[t], lruvec.max_seq + 1):
                size += lruvec.nr_pages_of_seq(seq, t)
    return m + MIN_NR_GENS == lruvec.max_seq, size


def get_nr_to_scan(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int) -> int:
    """How much to scan; ages (without force_scan) when needed and priority < 12."""
    memcg = lruvec.memcg
    if memcg.memory_min and memcg.nr_charged <= memcg.memory_min:
        return -1
    success, nr = should_run_aging(lruvec, swappiness)
    if nr and not memcg.online:
        return nr
    if not success or sc.priority == DEF_PRIORITY:
        return nr >> sc.priority
    return -1 if try_to_inc_max_seq(k, lruvec, lruvec.max_seq, swappiness, False) else 0


def folio_inc_gen(k: SimKernel, lruvec: Lruvec, pfn: int, reclaiming: bool) -> int:
    """Move a folio of the oldest generation one generation up (unless promoted). Spec §2.6."""
    mem = k.mem
    flags = int(mem.flags[pfn])
    type_ = 0 if flags & PG_swapbacked else 1
    old = lru_gen_from_seq(lruvec.min_seq[type_])
    gen = int(mem.gen[pfn]) - 1
    if gen >= 0 and gen != old:
        return gen
    new = (old + 1) % MAX_NR_GENS
    refs_flags = LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10
    flags &= ~refs_flags
    if reclaiming:
        flags |= PG_reclaim
    mem.flags[pfn] = flags
    mem.gen[pfn] = new + 1
    nr = 512 if flags & PG_head else 1
    lruvec.nr_pages[old, type_, 0] -= nr
    lruvec.nr_pages[new, type_, 0] += nr
    return new


def _move(k: SimKernel, lruvec: Lruvec, pfn: int, gen: int, type_: int, tail: bool) -> None:
    """list_move / list_move_tail of one folio to list `gen`."""
    old = int(list_gens(k.mem, np.array([pfn]))[0])
    lruvec.nr_listed[old, type_, 0] -= 1
    lruvec.nr_listed[gen, type_, 0] += 1
    list_add(k.mem, np.array([pfn]), gen, at_tail=tail)


def sort_folio(k: SimKernel, lruvec: Lruvec, pfn: int, sc: ScanControl, tier_idx: int) -> bool:
    """Handle folios that stay on MGLRU lists; False = candidate for isolation. Spec §4.5."""
    mem = k.mem
    flags = int(mem.flags[pfn])
    gen = int(mem.gen[pfn]) - 1
    type_ = 0 if flags & PG_swapbacked else 1
    nr = 512 if flags & PG_head else 1
    refs, ws = folio_tier_refs(k.cfg, flags)
    tier = folio_tier(k.cfg, flags)
    lazy_ws = k.cfg.two_step_promotion and refs + int(ws) == 5
    # unevictable
    if flags & PG_unevictable:
        lru_gen_del_folio(mem, lruvec, np.array([pfn]), reclaiming=True)
        mem.flags[pfn] |= PG_lru  # on the unevictable list
        return True
    # promoted
    if gen != lru_gen_from_seq(lruvec.min_seq[type_]):
        _move(k, lruvec, pfn, gen, type_, tail=False)
        return True
    # protected
    if tier > tier_idx or lazy_ws:
        new = folio_inc_gen(k, lruvec, pfn, False)
        _move(k, lruvec, pfn, new, type_, tail=False)
        if not lazy_ws:
            hist = lru_hist_from_seq(lruvec.min_seq[type_], lruvec.nr_hist_gens)
            shift = 0 if k.cfg.protect_in_inc_min_seq else 1
            if tier >= shift:
                lruvec.protected[hist, type_, tier - shift] += nr
        sc.stats["protected"] = sc.stats.get("protected", 0) + nr
        return True
    # ineligible
    if not flags & PG_lru:
        new = folio_inc_gen(k, lruvec, pfn, False)
        _move(k, lruvec, pfn, new, type_, tail=True)
        return True
    dirty = bool(flags & PG_dirty)
    writeback = bool(flags & PG_writeback)
    # waiting for writeback
    if writeback or (type_ == LRU_GEN_FILE and dirty):
        if dirty and not writeback:
            k.start_writeback(pfn)  # the flusher: woken for unqueued dirty pages
        new = folio_inc_gen(k, lruvec, pfn, True)
        _move(k, lruvec, pfn, new, type_, tail=False)
        return True
    return False


def isolate_folio(k: SimKernel, lruvec: Lruvec, pfn: int, sc: ScanControl) -> bool:
    """Take a folio off MGLRU for shrink_folio_list. Spec §4.5."""
    mem = k.mem
    flags = int(mem.flags[pfn])
    if not sc.gfp_io and (flags & PG_dirty or (flags & PG_anon and not flags & PG_swapcache)):
        return False
    if not flags & PG_lru:
        return False
    if not flags & PG_referenced:
        flags &= ~LRU_REFS_MASK
    flags &= ~PG_reclaim
    mem.flags[pfn] = flags
    lru_gen_del_folio(mem, lruvec, np.array([pfn]), reclaiming=True)
    return True


def scan_folios(k: SimKernel, lruvec: Lruvec, sc: ScanControl, type_: int, tier_idx: int,
                nr_to_scan: int) -> tuple[int, list[int]]:
    """Pop folios from the tail of the oldest list: (pages scanned, isolated heads)."""
    if lruvec.get_nr_gens(type_) == MIN_NR_GENS:
        return 0, []
    gen = lru_gen_from_seq(lruvec.min_seq[type_])
    remaining = min(nr_to_scan, MAX_LRU_BATCH) if k.cfg.independent_min_seq else MAX_LRU_BATCH
    remaining = max(remaining, 1)
    scanned = isolated = skipped = 0
    out: list[int] = []
    skipped_pfns: list[int] = []
    for pfn in tail_first(k.mem, lruvec, gen, type_):
        pfn = int(pfn)
        nr = 512 if k.mem.flags[pfn] & PG_head else 1
        scanned += nr
        if sort_folio(k, lruvec, pfn, sc, tier_idx):
            pass
        elif isolate_folio(k, lruvec, pfn, sc):
            out.append(pfn)
            isolated += nr
        else:
            skipped_pfns.append(pfn)
            skipped += nr
        remaining -= 1
        if not remaining or max(isolated, skipped) >= MIN_LRU_BATCH:
            break
    if skipped_pfns:  # spliced back to the head of the list
        list_add(k.mem, np.array(skipped_pfns, np.int64), gen)
    sc.nr_scanned += scanned
    return (scanned if isolated or not remaining else 0), out


def isolate_folios(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int,
                   nr_to_scan: int) -> tuple[int, int, list[int]]:
    """Choose the type (PID) and tier, then scan. Returns (scanned, type, isolated)."""
    shift = 0 if k.cfg.protect_in_inc_min_seq else 1
    type_ = get_type_to_scan(lruvec, swappiness, shift)
    for _ in range(sum(type_is_evictable(t, swappiness) for t in range(ANON_AND_FILE))):
        if type_is_evictable(type_, swappiness):
            tier = get_tier_idx(lruvec, type_, shift)
            scanned, out = scan_folios(k, lruvec, sc, type_, tier, nr_to_scan)
            if scanned:
                return scanned, type_, out
        type_ = 1 - type_
    return 0, type_, []


def evict_folios(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int,
                 nr_to_scan: int) -> int:
    """Isolate, reclaim and put back one batch. Spec §4.2. Returns pages scanned."""
    from mglru.mm.vmscan import shrink_folio_list

    k.end_writeback()
    scanned, type_, isolated = isolate_folios(k, lruvec, sc, swappiness, nr_to_scan)
    scanned += int(try_to_inc_min_seq(k, lruvec, swappiness))
    if evictable_min_seq(lruvec, swappiness) + MIN_NR_GENS > lruvec.max_seq:
        scanned = 0
    if not isolated:
        return scanned
    mem = k.mem
    batch = isolated
    skip_retry = False
    while batch:
        kept = shrink_folio_list(k, lruvec, batch, sc)
        retry: list[int] = []
        putback: list[int] = []
        for pfn in reversed(kept):
            flags = int(mem.flags[pfn])
            if flags & PG_unevictable:
                mem.flags[pfn] = flags | PG_lru
                continue
            if (not skip_retry and not flags & PG_active and not k.folio_mapped(pfn)
                    and not flags & (PG_dirty | PG_writeback)):
                retry.append(pfn)
                continue
            # don't add rejected folios to the oldest generation
            seq = int(lru_gen_folio_seq(lruvec, np.array([flags], np.uint16), False)[0])
            if seq == lruvec.min_seq[type_]:
                refs_flags = LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10
                mem.flags[pfn] = (flags & ~refs_flags) | PG_active
            putback.append(pfn)
        if putback:
            arr = np.array(putback, np.int64)
            mem.flags[arr] |= PG_lru
            lru_gen_add_folio(mem, lruvec, arr)
        batch, skip_retry = retry[::-1], True
    return scanned


def try_to_shrink_lruvec(k: SimKernel, lruvec: Lruvec, sc: ScanControl) -> bool:
    """Evict from one lruvec until its scan target is met. Spec §4.1.

    Returns whether the lruvec should be rotated (it aged instead of evicting).
    """
    from mglru.lru_gen.debugfs import get_swappiness

    swappiness = 0 if not sc.may_swap else (
        sc.swappiness if sc.swappiness is not None else get_swappiness(k, lruvec))
    scanned = 0
    while True:
        nr_to_scan = get_nr_to_scan(k, lruvec, sc, swappiness)
        if nr_to_scan <= 0:
            break
        delta = evict_folios(k, lruvec, sc, swappiness, nr_to_scan)
        if not delta:
            break
        scanned += delta
        if scanned >= nr_to_scan:
            break
        if sc.root_reclaim and sc.nr_reclaimed >= sc.nr_to_reclaim:
            break
    return nr_to_scan < 0


def run_eviction(k: SimKernel, lruvec: Lruvec, seq: int, swappiness: int, nr_to_reclaim: int) -> None:
    """The debugfs `-` command. Spec §5.4, checklist 33.

    Raises:
        OSError: EINVAL if seq + 2 > max_seq.
    """
    import errno

    if seq + MIN_NR_GENS > lruvec.max_seq:
        raise OSError(errno.EINVAL, "Invalid argument")
    sc = ScanControl(nr_to_reclaim=nr_to_reclaim, proactive=True)
    while True:
        if seq < evictable_min_seq(lruvec, swappiness):
            return
        if sc.nr_reclaimed >= nr_to_reclaim:
            return
        if not evict_folios(k, lruvec, sc, swappiness, nr_to_reclaim - sc.nr_reclaimed):
            return

