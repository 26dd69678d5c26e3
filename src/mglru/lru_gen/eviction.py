"""The eviction: consuming generations. mm/vmscan.c.

Mechanism: `try_to_shrink_lruvec` asks `get_nr_to_scan` how much to scan (and
ages when eviction is no longer possible), then `evict_folios` isolates a
batch from the tail of the oldest generation of the type the PID controller
picks (`isolate_folios` -> `scan_folios` -> `sort_folio` / `isolate_folio`),
hands it to `shrink_folio_list` (lru_gen.vmscan) and puts the survivors back.
Budgets are the kernel's: at most MIN_LRU_BATCH isolated and MAX_LRU_BATCH
examined per call.

Eviction follows the upstream rules of mm/vmscan.c for every preset; the v6.10
differences the model keeps are tiers, protected[tier - 1],
refault test, coupled min_seq.

`try_to_shrink_lruvec` hands its loop to the compiled `evict_fast.shrink_lruvec`
(unless `evict_fast.ENABLED` is False), which comes back here for what it cannot
do: `get_nr_to_scan` with aging, `evict_folios` after writeback, and
`reclaim_isolated` for batches that need the per-folio path (anything but 4 KiB
anonymous folios mapped once by tasks without secondary MMUs).

Future optimizations:
1. THP, file and shmem folios and secondary MMUs in the compiled loop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen import evict_fast
from mglru.lru_gen._scan_kernel import scan_list
from mglru.lru_gen.aging import try_to_inc_max_seq, try_to_inc_min_seq, type_is_evictable
from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_folio_seq
from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    DEF_PRIORITY,
    LRU_GEN_ANON,
    LRU_REFS_FLAGS,
    LRU_REFS_FLAGS_V6_10,
    MAX_LRU_BATCH,
    MAX_NR_GENS,
    MIN_LRU_BATCH,
    MIN_NR_GENS,
    lru_gen_from_seq,
    lru_hist_from_seq,
)
from mglru.lru_gen.lists import scan_order
from mglru.lru_gen.pid import get_tier_idx, get_type_to_scan
from mglru.lru_gen.vmscan import shrink_folio_list
from mglru.mm.page import (
    PG_active,
    PG_dirty,
    PG_lru,
    PG_reclaim,
    PG_referenced,
    PG_unevictable,
    PG_workingset,
    PG_writeback,
)
from mglru.mm.vmstat import count_reclaim

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.memcg import MemCgroup

__all__ = ["ScanControl", "get_swappiness", "memcg_swappiness", "evictable_min_seq",
           "should_run_aging", "get_nr_to_scan", "evict_folios", "reclaim_isolated",
           "try_to_shrink_lruvec", "run_eviction"]


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
    #: current_is_kswapd(): the reclaim counts as kswapd's
    kswapd: bool = False
    #: swappiness override (proactive `swappiness=`), None = the memcg's
    swappiness: int | None = None
    #: sc->target_mem_cgroup: the memcg being reclaimed from (None: the root)
    target: MemCgroup | None = None
    #: counters a user asks for after a run
    stats: dict = field(default_factory=dict)
    #: 6.1 evict_folios(): an anon batch was isolated (its `need_swapping`)
    evicted_anon: bool = False


def get_swappiness(k: SimKernel, lruvec: Lruvec) -> int:
    """Default swappiness of a debugfs command (may_swap = 1). mm/vmscan.c: run_cmd().

    0 when fewer than MIN_LRU_BATCH swap slots are free (mem_cgroup_get_nr_swap_pages
    counts free swap, so a full device stops anon reclaim; there is no demotion).
    """
    if k.swap.nr_free < MIN_LRU_BATCH:
        return 0
    return memcg_swappiness(k, lruvec.memcg)


def memcg_swappiness(k: SimKernel, memcg: MemCgroup) -> int:
    """mem_cgroup_swappiness() (include/linux/swap.h): the memcg's own, vm.swappiness
    for the root."""
    return memcg.swappiness if memcg.parent else k.cfg.swappiness


def evictable_min_seq(lruvec: Lruvec, swappiness: int) -> int:
    """The smallest min_seq over evictable types."""
    return min(lruvec.min_seq[t] for t in range(ANON_AND_FILE) if type_is_evictable(t, swappiness))


def should_run_aging(lruvec: Lruvec, swappiness: int, on_three_gens: bool = True
                     ) -> tuple[bool, int]:
    """(aging wanted, nr_to_scan). mm/vmscan.c: should_run_aging(), get_nr_to_scan().

    Out of cold generations (fewer than MIN_NR_GENS + 1): aging. More than
    MIN_NR_GENS + 1: no aging. Exactly MIN_NR_GENS + 1: the v6.14 rework ages
    (`on_three_gens`); 6.1-6.12 age only if the generations are out of balance,
    max_seq holding over 1/MIN_NR_GENS of the pages or max_seq - MIN_NR_GENS
    under 1/(MIN_NR_GENS + 2) (should_run_aging(), mm/vmscan.c 6.1 and 6.12).
    """
    m = evictable_min_seq(lruvec, swappiness)
    max_seq = lruvec.max_seq
    if m + MIN_NR_GENS > max_seq:
        return True, 0
    size = young = old = 0
    per_gen = lruvec.pages_per_gen()
    for t in range(ANON_AND_FILE):
        if type_is_evictable(t, swappiness):
            for seq in range(lruvec.min_seq[t], max_seq + 1):
                n = max(per_gen[seq % MAX_NR_GENS][t], 0)  # Lruvec.nr_pages_of_seq
                size += n
                if seq == max_seq:
                    young += n
                elif seq + MIN_NR_GENS == max_seq:
                    old += n
    if m + MIN_NR_GENS < max_seq:
        return False, size
    if on_three_gens:
        return True, size
    return young * MIN_NR_GENS > size or old * (MIN_NR_GENS + 2) < size, size


def get_nr_to_scan(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int) -> int:
    """How much to scan; ages (without force_scan) when needed and priority < 12."""
    memcg = lruvec.memcg
    # mem_cgroup_below_min(): the root and the reclaim target itself are never
    # protected; the model takes memory.min as the effective protection (exact
    # for children of the target)
    unprotected = memcg.parent is None or memcg is sc.target
    if not unprotected and memcg.memory_min and memcg.nr_charged <= memcg.memory_min:
        return -1
    if k.cfg.reclaim_rules_6_1:
        return _get_nr_to_scan_6_1(k, lruvec, sc, swappiness)
    success, nr = should_run_aging(lruvec, swappiness, k.cfg.aging_on_three_gens)
    if nr and not memcg.online:
        return nr
    if not success or sc.priority == DEF_PRIORITY:
        return nr >> sc.priority
    return -1 if try_to_inc_max_seq(k, lruvec, lruvec.max_seq, swappiness, False) else 0


def _get_nr_to_scan_6_1(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int
                        ) -> int:
    """get_nr_to_scan() of 6.1 (mm/vmscan.c): after aging it goes on evicting.

    should_run_aging() of 6.1 sizes the scan (total >> priority, everything
    for an offline memcg) even when the lruvec is out of cold generations. With
    aging wanted: at DEF_PRIORITY scan only if MIN_NR_GENS + 1 generations are
    left; kswapd leaves aging to lru_gen_age_node(); else age, then scan.
    """
    need_aging, _ = should_run_aging(lruvec, swappiness, False)
    total = sum(lruvec.nr_pages_of_seq(seq, t) for t in range(ANON_AND_FILE)
                if type_is_evictable(t, swappiness)
                for seq in range(lruvec.min_seq[t], lruvec.max_seq + 1))
    nr = total >> sc.priority if lruvec.memcg.online else total
    if not need_aging:
        return nr
    if sc.priority != DEF_PRIORITY:
        if sc.kswapd:
            return 0
        if try_to_inc_max_seq(k, lruvec, lruvec.max_seq, swappiness, False):
            return nr
    return nr if evictable_min_seq(lruvec, swappiness) + MIN_NR_GENS <= lruvec.max_seq else 0


def scan_folios(k: SimKernel, lruvec: Lruvec, sc: ScanControl, type_: int, tier_idx: int,
                nr_to_scan: int) -> tuple[int, list[int]]:
    """Pop folios from the tail of the oldest list: (pages scanned, isolated heads).

    The compiled `scan_list` does sort_folio / isolate_folio per folio; the
    list's tail-first order is cached on the lruvec between calls and rebuilt
    when exhausted or when anything was added at a list tail. mm/vmscan.c
    scan_folios() (6.1-6.14) pops until the list is empty or a budget ends the scan,
    so a scan whose cached order runs out first goes on through the rebuilt order
    (folios put back at the list's head since it was cached).
    """
    if lruvec.get_nr_gens(type_) == MIN_NR_GENS:
        return 0, []
    mem = k.mem
    gen = lru_gen_from_seq(lruvec.min_seq[type_])
    if not lruvec.nr_listed[gen, type_].any():
        return 0, []  # an empty list: nothing to pop (and no O(node) tail_first)
    # the budget is MAX_LRU_BATCH folios in every modelled version; only
    # linux-next (after v6.16) caps it at nr_to_scan (mm/vmscan.c: sort_folio())
    remaining = MAX_LRU_BATCH
    out = np.empty(MAX_LRU_BATCH, np.int64)
    wb = np.empty(MAX_LRU_BATCH, np.int64)
    res = np.zeros(9, np.int64)
    hist = lru_hist_from_seq(lruvec.min_seq[type_], lruvec.nr_hist_gens)
    while True:
        cand, snap, pos, _ = cache = scan_order(mem, lruvec, gen, type_)
        ctr = np.array([mem.order_head, mem.order_tail], np.int64)
        scan_list((cand, snap), pos, remaining, (mem.flags, mem.gen, mem.lru),
                  (lruvec.nr_pages[:, :, 0], lruvec.nr_listed[:, :, 0],
                   lruvec.protected[hist, type_], ctr),
                  (gen, type_, tier_idx, k.cfg.two_step_promotion,
                   LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10,
                   0 if k.cfg.protect_in_inc_min_seq else 1, sc.gfp_io),
                  (out, wb, res))
        mem.order_head, mem.order_tail = int(ctr[0]), int(ctr[1])
        remaining = int(res[5])
        # the order ran out before the budgets (`more`): used up, so rebuilt for the rest
        # of the scan, the folios added at the list's head since it was built
        cache[2:] = [len(cand) if res[6] else int(res[3]), mem.order_tail]
        if not res[6]:
            break
    scanned, isolated, n_out, pos, n_wb, remaining = (int(v) for v in res[:6])
    for pfn in wb[:n_wb].tolist():
        k.start_writeback(pfn)  # the flusher, woken for dirty file folios
    sc.nr_scanned += scanned
    count_reclaim(k, lruvec, sc, type_, "pgscan", isolated)
    return (scanned if isolated or not remaining else 0), out[:n_out].tolist()


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
    """Isolate, reclaim and put back one batch (evict_folios()). Returns pages scanned."""

    k.end_writeback()
    scanned, type_, isolated = isolate_folios(k, lruvec, sc, swappiness, nr_to_scan)
    scanned += int(try_to_inc_min_seq(k, lruvec, swappiness))
    if evictable_min_seq(lruvec, swappiness) + MIN_NR_GENS > lruvec.max_seq:
        scanned = 0
    if not isolated:
        return scanned
    if type_ == LRU_GEN_ANON:
        sc.evicted_anon = True
    reclaim_isolated(k, lruvec, sc, type_, isolated)
    return scanned


def reclaim_isolated(k: SimKernel, lruvec: Lruvec, sc: ScanControl, type_: int,
                     isolated: list[int]) -> None:
    """evict_folios() after isolation: shrink_folio_list, retry once, put the rest back."""
    mem = k.mem
    batch = isolated
    skip_retry = False
    reclaimed = sc.nr_reclaimed
    while batch:
        kept = shrink_folio_list(k, lruvec, batch, sc)
        retry: list[int] = []
        putback: list[int] = []
        rev = kept[::-1]
        # each step below changes only its own folio's flags: read them all at once, and
        # the generation each would join (the lruvec's seqs do not move in this loop)
        rev_flags = mem.flags[rev]
        seqs = lru_gen_folio_seq(lruvec, rev_flags, False).tolist() \
            if k.cfg.two_step_promotion else None
        for j, (pfn, flags) in enumerate(zip(rev, rev_flags.tolist(), strict=True)):
            if flags & PG_unevictable:
                mem.flags[pfn] = flags | PG_lru
                continue
            if not k.cfg.two_step_promotion:
                # before the v6.14 rework: folios with PG_reclaim left dirty or under
                # writeback go back as they are; any other rejected folio that is
                # active, referenced, mapped, dirty or under writeback becomes active
                # with its refs cleared; the rest are retried once
                if flags & PG_reclaim and flags & (PG_dirty | PG_writeback):
                    if flags & PG_workingset:
                        mem.flags[pfn] = flags | PG_referenced
                elif (skip_retry or flags & (PG_active | PG_referenced | PG_dirty | PG_writeback)
                      or k.folio_mapped(pfn)):
                    mem.flags[pfn] = (flags & ~LRU_REFS_FLAGS_V6_10) | PG_active
                else:
                    retry.append(pfn)
                    continue
                putback.append(pfn)
                continue
            if (not skip_retry and not flags & PG_active and not k.folio_mapped(pfn)
                    and not flags & (PG_dirty | PG_writeback)):
                retry.append(pfn)
                continue
            # don't add rejected folios to the oldest generation
            if seqs[j] == lruvec.min_seq[type_]:
                refs_flags = LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10
                mem.flags[pfn] = (flags & ~refs_flags) | PG_active
            putback.append(pfn)
        if putback:
            # move_folios_to_lru() adds them in shrink order (the walk above ran in
            # reverse), so the last one ends at the head
            arr = np.array(putback[::-1], np.int64)
            mem.flags[arr] |= PG_lru
            lru_gen_add_folio(mem, lruvec, arr)
        batch, skip_retry = retry[::-1], True
    count_reclaim(k, lruvec, sc, type_, "pgsteal", sc.nr_reclaimed - reclaimed)


def try_to_shrink_lruvec(k: SimKernel, lruvec: Lruvec, sc: ScanControl) -> bool:
    """Evict from one lruvec until its scan target is met. mm/vmscan.c: try_to_shrink_lruvec().

    Returns whether the lruvec should be rotated (it aged instead of evicting).
    """

    swappiness = 0 if not sc.may_swap else (
        sc.swappiness if sc.swappiness is not None else get_swappiness(k, lruvec))
    if evict_fast.ENABLED:
        return evict_fast.shrink_lruvec(k, lruvec, sc, swappiness)
    scanned = 0
    seq = lruvec.max_seq
    sc.evicted_anon = False
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
        if k.cfg.reclaim_rules_6_1 and not sc.kswapd:
            # should_abort_scan() of 6.1 for direct and memcg reclaim: age each memcg
            # at most once more; stop over-swapping once the goal is met
            if lruvec.max_seq - seq > 1:
                break
            if sc.nr_reclaimed >= sc.nr_to_reclaim and sc.evicted_anon:
                break
            if not sc.root_reclaim:
                continue
        if ((sc.root_reclaim or k.cfg.abort_memcg_scan_at_goal)
                and sc.nr_reclaimed >= sc.nr_to_reclaim):
            break
    return nr_to_scan < 0


def run_eviction(k: SimKernel, lruvec: Lruvec, seq: int, swappiness: int,
                 nr_to_reclaim: int) -> None:
    """The debugfs `-` command. mm/vmscan.c: run_eviction().

    Raises:
        OSError: EINVAL if seq + 2 > max_seq.
    """
    import errno

    if seq + MIN_NR_GENS > lruvec.max_seq:
        raise OSError(errno.EINVAL, "Invalid argument")
    # lru_gen_seq_write()'s scan_control is not .proactive: it counts as direct
    sc = ScanControl(nr_to_reclaim=nr_to_reclaim)
    while True:
        if seq < evictable_min_seq(lruvec, swappiness):
            return
        if sc.nr_reclaimed >= nr_to_reclaim:
            return
        if not evict_folios(k, lruvec, sc, swappiness, nr_to_reclaim - sc.nr_reclaimed):
            return

