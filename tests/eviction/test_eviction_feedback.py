"""Checklist tests for feedback: spec §9 items 20, 21 (PID), 26 (look-around), 27 (refaults)
and 28 (min_ttl).

PID decisions are checked against the integer formulas of spec §4.4 evaluated in
the test on the counters `lru_gen_full` prints (R/T on the max_seq line, r/e/p on
the min_seq line). PID history is set on the lruvec (the averages a long run
would have left behind); everything else is driven through files and tasks.
"""

from __future__ import annotations

import numpy as np
import pytest
from evict_checks import (
    PAGE,
    age,
    audit,
    child,
    cold_anon,
    evict,
    file_in_three_gens,
    gen_field,
    min_max_seq,
    new_kernel,
    pages_by_seq,
    ptes,
    resident_mask,
    stat,
    swapped_mask,
    tier_rows,
)

from mglru.lru_gen.bloom import test_bloom_filter as bloom_has
from mglru.mm.mmu_notifier import mmu_notifier_register
from mglru.mm.page import LRU_REFS_MASK, LRU_REFS_SHIFT, PTE_YOUNG, PG_referenced, PG_workingset

BOTH = ("v6.10", "v6.14")
MIN_TTL = "/sys/kernel/mm/lru_gen/min_ttl_ms"


# -- the formulas of spec §4.4, written out for the tests --------------------------------------
def positive_ctrl_err(sp: tuple[int, int, int], pv: tuple[int, int, int]) -> bool:
    """(refaulted, total, gain) pairs: PV refaults < 64, or its ratio is no worse than SP's."""
    return pv[0] < 64 or pv[0] * (sp[1] + 64) * sp[2] <= (sp[0] + 1) * pv[1] * pv[2]


def ctrl_pos(row, tiers: range, gain: int) -> tuple[int, int, int]:
    """Sum of refaulted and total over tiers: avg + this history slot (spec §4.4)."""
    ref = sum(row.avg_refaulted[t] + row.refaulted[t] for t in tiers)
    tot = sum(row.avg_total[t] + row.protected[t] + row.evicted[t] for t in tiers)
    return ref, tot, gain


def tier_idx(row) -> int:
    """get_tier_idx: the last tier still evicted."""
    sp = ctrl_pos(row, range(0, 1), 2)
    for tier in range(1, 4):
        if not positive_ctrl_err(sp, ctrl_pos(row, range(tier, tier + 1), 3)):
            return tier - 1
    return 3


def reads_to_tier(preset_two_step: bool, reads: int) -> tuple[int, bool]:
    """(tier, lazily promoted) of a page read(2) `reads` times, from spec §2.4/§2.6/§8.4.

    Upstream lru_gen_inc_refs: PG_referenced, then the refs field up to 3, then
    PG_workingset; refs = field + 1; tier = 3 with workingset else order_base_2(refs);
    refs 4 + workingset is the lazily promoted working set. v6.10: PG_referenced, then
    PG_workingset, then the field; refs = field + workingset; tier = order_base_2(refs + 1).
    """
    if preset_two_step:
        refs = min(reads, 4)
        ws = reads >= 5
        tier = 3 if ws else (refs - 1).bit_length() if refs > 1 else 0
        return tier, ws and refs == 4
    ws = reads >= 2
    refs = max(min(reads - 2, 3), 0) + int(ws)
    return (refs + 1 - 1).bit_length() if refs else 0, False


# -- item 20 ---------------------------------------------------------------------------------
#: PID history of the file type, per tier: (avg_refaulted, avg_total)
HISTORY = {
    "none": ([0, 0, 0, 0], [0, 0, 0, 0]),
    "below-floor": ([0, 63, 0, 0], [1000, 63, 0, 0]),  # 63 refaults: never conclusive
    "at-floor": ([0, 64, 0, 0], [1000, 64, 0, 0]),
    "tier2-hot": ([100, 64, 500, 0], [1000, 1000, 600, 0]),
    "equality": ([99, 100, 100, 100], [236, 200, 199, 199]),  # tier 1 exactly on the line
    "tier3-hot": ([0, 0, 0, 900], [2000, 100, 100, 1000]),
}


@pytest.mark.parametrize("preset", BOTH)
@pytest.mark.parametrize("history", HISTORY)
def test_fc20_tier_protection_follows_the_pid_formula(preset: str, history: str) -> None:
    """Spec §9 item 20: "Tier protection follows the PID formulas exactly (integer math,
    gains 2/3, floor 64)."

    Groups of 8 file pages are read(2) 1, 2, 3 and 5 times into the oldest generation
    (file kept at 3 generations, so that every version puts them there), which gives
    them known tiers (spec §2.6, and §8.4 for v6.10). With a PID history on
    the file type, one `-` pass (file only) must evict exactly the groups whose tier is
    <= get_tier_idx computed here from the printed counters, and protect the others
    into min_seq + 1 (the lazily promoted working set always). Then, by spec §4.2 and
    §4.4, the oldest generation empties, min_seq advances and reset_ctrl_pos folds the
    protected counts into avg_total: T' = (T + p) / 2, R' = R / 2; the evictions,
    counted after that (shrink_folio_list runs after try_to_inc_min_seq), show as `e`
    per tier on the new min_seq line.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    two_step = k.cfg.two_step_promotion
    oldest = file_in_three_gens(k, a)
    f = k.open_file("f", 32 * PAGE)
    groups = {1: range(0, 8), 2: range(8, 16), 3: range(16, 24), 5: range(24, 32)}
    for reads, pages in groups.items():
        for _ in range(reads):
            p.read(f, pages.start * PAGE, 8 * PAGE)
    assert pages_by_seq(k, a.id)[oldest] == (0, 32)
    lv = k.lruvec(a)
    lv.avg_refaulted[1] = HISTORY[history][0]
    lv.avg_total[1] = HISTORY[history][1]

    before = tier_rows(k, a.id)[1]
    idx = tier_idx(before)
    protected = [0] * 4
    evicted = [0] * 4
    fate = {}
    for reads in groups:
        tier, lazy = reads_to_tier(two_step, reads)
        keep = lazy or tier > idx
        fate[reads] = keep
        if keep and not lazy:
            protected[tier] += 8
        if not keep:
            evicted[tier] += 8
    pfns = f.pages.copy()
    evict(k, a.id, oldest, 0, 1)
    for reads, pages in groups.items():
        sel = np.array(pages)
        if fate[reads]:
            assert (f.pages[sel] == pfns[sel]).all(), f"group read {reads}x must be protected"
            assert (gen_field(k, pfns[sel]) == (oldest + 1) % 4).all(), \
                "protected into min_seq + 1"
        else:
            assert (f.pages[sel] < 0).all(), f"group read {reads}x must be evicted"
    after = tier_rows(k, a.id)[1]
    assert after.avg_total == [(t + q) // 2
                               for t, q in zip(before.avg_total, protected, strict=True)]
    assert after.avg_refaulted == [r // 2 for r in before.avg_refaulted]
    assert after.evicted == evicted and after.protected == [0] * 4
    audit(k)


# -- item 21 ---------------------------------------------------------------------------------
#: (anon, file) PID history: per tier (avg_refaulted, avg_total)
TYPE_HISTORY = {
    "none": (([0] * 4, [0] * 4), ([0] * 4, [0] * 4)),
    # equal ratios: file while 100*1064*s <= 101*1000*(200-s), i.e. s <= 97
    "balanced": (([40, 30, 20, 10], [400, 300, 200, 100]), ([25, 25, 25, 25], [250] * 4)),
    "file-thrashing": (([0] * 4, [1000, 0, 0, 0]), ([500, 0, 0, 0], [1000, 0, 0, 0])),
}


@pytest.mark.parametrize("preset", BOTH)
@pytest.mark.parametrize("history", TYPE_HISTORY)
@pytest.mark.parametrize("swappiness", [1, 2, 60, 97, 98, 140, 199, 200])
def test_fc21_type_selection(preset: str, history: str, swappiness: int) -> None:
    """Spec §9 item 21: "Type selection: swappiness ≤1 → file, ≥200 → anon, else PID
    comparison with gains swappiness / 200−swappiness."

    100 cold anon and 100 read(2) file pages share the oldest generation. One `-` pass
    (nr_to_reclaim 1) evicts one batch of a single type: the one spec §4.3 picks from
    the all-tier sums (SP = anon, PV = file) read from lru_gen_full.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    f = k.open_file("f", 100 * PAGE)
    # read(2) before cold_anon's agings: into seq 0 (v6.14: max_seq - 3) or 1 (before:
    # min_seq + 1 with 4 generations); each aging of the full type moves them up
    # (inc_min_seq), so they reach the oldest generation, seq 3, with the anon pages
    p.read(f, 0, 100 * PAGE)
    anon = cold_anon(k, a, p, 100)
    assert pages_by_seq(k, a.id)[3] == (100, 100)
    lv = k.lruvec(a)
    for t, (ref, tot) in enumerate(TYPE_HISTORY[history]):
        lv.avg_refaulted[t] = ref
        lv.avg_total[t] = tot
    rows = tier_rows(k, a.id)
    if swappiness <= 1:
        want = "file"
    elif swappiness >= 200:
        want = "anon"
    else:
        sp = ctrl_pos(rows[0], range(4), swappiness)
        pv = ctrl_pos(rows[1], range(4), 200 - swappiness)
        want = "file" if positive_ctrl_err(sp, pv) else "anon"
    evict(k, a.id, 3, swappiness, 1)
    swapped = int(swapped_mask(p, anon, 100).sum())
    dropped = int((f.pages < 0).sum())
    assert (swapped, dropped) == ((64, 0) if want == "anon" else (0, 64))


# -- item 26 ---------------------------------------------------------------------------------
class FakeSecondaryMmu:
    """An MMU notifier subscriber with accessed bits for some addresses (spec §4.10)."""

    def __init__(self) -> None:
        self.young: set[int] = set()
        self.calls = 0

    def clear_young(self, start: int, end: int) -> bool:
        self.calls += 1
        hit = {x for x in self.young if start <= x < end}
        self.young -= hit
        return bool(hit)

    clear_flush_young = clear_young

    def test_young(self, addr: int) -> bool:
        return addr in self.young

    def invalidate_range(self, start: int, end: int) -> None:
        self.young = {x for x in self.young if not start <= x < end}

    def fast_only_capable(self) -> bool:
        return True

    def aging_segments(self):
        return []

    def account_aging(self, row) -> None:
        pass


TARGET = 200  # page index of the one folio left in the oldest generation


def _look_around_setup(preset: str):
    """512 anon pages (one PTE table); all but TARGET promoted out of the oldest generation.

    Written, then: age, access all but TARGET, age, age (spec §2.6: v6.10 promotes
    at the first young sighting, v6.14+ at the second). The last aging retires the
    oldest generation (§3.11) and sorts its list, so TARGET is alone, cold, in the
    oldest generation (seq 3) and the others are in seq 4 (gen field and list).
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = p.mmap(512 * PAGE)
    assert addr % (512 * PAGE) == 0
    p.access(addr, 512 * PAGE, write=True)
    age(k, a.id, 60)
    p.access(addr, TARGET * PAGE)
    p.access(addr + (TARGET + 1) * PAGE, (511 - TARGET) * PAGE)
    age(k, a.id, 60)
    age(k, a.id, 60)
    mins, max_seq = min_max_seq(k, a.id)
    pfns = ptes(p, addr, 512)[0]
    assert mins[0] == 3 and max_seq == 6 and pages_by_seq(k, a.id)[3] == (1, 0)
    assert gen_field(k, pfns[TARGET]) == 3
    return k, a, p, addr, pfns


@pytest.mark.parametrize("preset", BOTH)
@pytest.mark.parametrize("young", ["target-old", "sparse", "dense", "far"])
def test_fc26_look_around(preset: str, young: str) -> None:
    """Spec §9 item 26: "Look-around: target PTE old (primary and secondary) → not referenced;
    otherwise referenced and up to 64 neighbouring PTEs are harvested; dense windows feed
    the current filter."

    The target is alone in the oldest generation; chosen neighbours are made young.
    `-` isolates the target and the rmap walk runs look-around (spec §4.7): an old
    target is reclaimed and no neighbour is touched; a young target is kept, and
    exactly the young PTEs inside the 64-page window centred on it (pages 168..231)
    lose their accessed bit and are promoted to the youngest generation, those outside
    keep it. The window goes into the current Bloom filter iff young * 8 >= 64 (the
    target counts as one).
    """
    k, a, p, addr, pfns = _look_around_setup(preset)
    window = range(TARGET - 32, TARGET + 32)
    chosen = {"target-old": [150, 190, 210], "sparse": [190, 191, 210, 211, 450],
              "dense": [193, 194, 195, 196, 197, 198, 199, 201, 100, 300],
              "far": [0, 100, 511]}[young]
    for i in chosen:
        p.access(addr + i * PAGE, PAGE)
    if young != "target-old":
        p.access(addr + TARGET * PAGE, PAGE)
    lv = k.lruvec(a)
    pmd = addr >> 21
    assert not bloom_has(lv.mm_state, lv.max_seq, p.mm.id, pmd)
    max_seq = lv.max_seq
    evict(k, a.id, 3, 200, 1)
    flags = ptes(p, addr, 512)[1]
    if young == "target-old":
        assert swapped_mask(p, addr + TARGET * PAGE, 1).all(), "old target: not referenced"
        assert all(flags[i] & PTE_YOUNG for i in chosen), "no window scan for an old target"
        return
    assert resident_mask(p, addr + TARGET * PAGE, 1).all(), "young target: referenced"
    assert not flags[TARGET] & PTE_YOUNG
    harvested = [i for i in chosen if i in window and i != TARGET]
    for i in chosen:
        assert bool(flags[i] & PTE_YOUNG) == (i not in harvested), i
        want = max_seq % 4 if i in harvested else 4 % 4
        assert gen_field(k, pfns[i]) == want, f"page {i}"
    dense = (1 + len(harvested)) * 8 >= len(window)
    assert bloom_has(lv.mm_state, lv.max_seq, p.mm.id, pmd) == dense
    audit(k)


@pytest.mark.parametrize("preset", BOTH)
def test_fc26_look_around_with_a_secondary_mmu(preset: str) -> None:
    """Spec §9 item 26 with a secondary MMU (spec §4.7, §4.10, §8.3).

    The target is old in the primary MMU but young in the secondary one, and so is a
    neighbour: the target is referenced either way (v6.12+ ptep_clear_young_notify in
    look-around; v6.10 ptep_clear_flush_young_notify after it) and its secondary bit
    is cleared. The neighbour, young only in the secondary MMU, is harvested by the
    window scan from v6.12 (clear_young per PTE) but not by v6.10, which looks only at
    primary accessed bits.
    """
    k, a, p, addr, pfns = _look_around_setup(preset)
    sec = FakeSecondaryMmu()
    mmu_notifier_register(p.mm, sec)
    neighbour = TARGET + 5
    sec.young = {addr + TARGET * PAGE, addr + neighbour * PAGE}
    max_seq = k.lruvec(a).max_seq
    evict(k, a.id, 3, 200, 1)
    assert resident_mask(p, addr + TARGET * PAGE, 1).all()
    assert addr + TARGET * PAGE not in sec.young
    harvested = k.cfg.look_around != "v6.10"
    assert (addr + neighbour * PAGE not in sec.young) == harvested
    assert gen_field(k, pfns[neighbour]) == (max_seq % 4 if harvested else 4 % 4)


# -- item 27 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ("v6.1",) + BOTH)
def test_fc27_refaults_count_by_stored_tier(preset: str) -> None:
    """Spec §9 item 27: "Refault of a recently evicted page increments `refaulted` for its
    stored tier and restores workingset/refs; `evicted` increments at eviction with the
    tier computed from flags."

    Groups of 16 file pages read 1, 2 and 3 times (tiers 0, 1, 2) sit at the tail of
    the oldest generation (file kept at 3 generations, so that every version puts them
    there), 200 filler pages read once behind them. One `-` batch of 64
    evicts the groups and 16 filler pages: `e` per tier must be 32/16/16 (the oldest
    generation keeps filler, so min_seq and its counters stay). Faulting the groups
    back through a mapping is a recent refault (same max_seq and min_seq): `r` per
    tier becomes 16/16/16 and the refs are restored (upstream: refs field = stored
    refs - 1, no PG_referenced; v6.10, in a fault: refs field full and PG_workingset,
    then the fault adds the folio active and lru_gen_add_folio() clears refs again on
    kernels that reset an entering active folio's tier; 6.1 keeps the full field).
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    oldest = file_in_three_gens(k, a)
    f = k.open_file("f", 248 * PAGE)
    for reads, first in ((1, 0), (2, 16), (3, 32)):
        for _ in range(reads):
            p.read(f, first * PAGE, 16 * PAGE)
    p.read(f, 48 * PAGE, 200 * PAGE)
    evict(k, a.id, oldest, 0, 1)
    assert (f.pages[:64] < 0).all() and (f.pages[64:] >= 0).all()
    row = tier_rows(k, a.id)[1]
    assert row.evicted == [32, 16, 16, 0] and row.refaulted == [0] * 4
    refaults = stat(k, "workingset_refault_file")
    m = p.mmap(48 * PAGE, file=f)
    p.access(m, 48 * PAGE)
    row = tier_rows(k, a.id)[1]
    assert row.refaulted == [16, 16, 16, 0]
    assert stat(k, "workingset_refault_file") - refaults == 48
    flags = k.mem.flags[f.pages[:48]].astype(int)
    field = (flags & LRU_REFS_MASK) >> LRU_REFS_SHIFT
    if k.cfg.two_step_promotion:
        assert field.tolist() == [0] * 16 + [1] * 16 + [2] * 16
        assert not (flags & (PG_referenced | PG_workingset)).any()
    elif k.rules.active_add_resets_tier:
        assert (field == 0).all() and (flags & PG_workingset).all()
        assert not (flags & PG_referenced).any()
    else:
        assert (field == 3).all() and (flags & PG_workingset).all()
    audit(k)


def recent(k, lv_min_seq: int, lv_max_seq: int, stored: int) -> bool:
    """Spec §4.8: upstream |max_seq - stored seq| < 4; v6.10 stored seq == min_seq (§8.4)."""
    if k.cfg.independent_min_seq:
        return abs(lv_max_seq - stored) < 4
    return stored == lv_min_seq


@pytest.mark.parametrize("preset", BOTH)
@pytest.mark.parametrize("agings", [0, 1])
def test_fc27_recent_rule(preset: str, agings: int) -> None:
    """Spec §9 item 27 and §4.8: which refaults are "recent".

    100 file pages read(2) into seq 0 (v6.14: max_seq - 3) or seq 1 (before: min_seq +
    1 with 4 generations) are evicted in two `-` commands: 64, then the remaining 36,
    which empties the generation so min_seq advances before they are written out
    (try_to_inc_min_seq precedes shrink_folio_list, spec §4.2): the shadows store
    that seq and seq 2, which the test reads as min_seq after each command. After 0
    or 1 agings the pages are read back; each group counts in `refaulted` iff the
    version's rule calls it recent (upstream |max_seq - seq| < 4, v6.10 seq ==
    min_seq), while workingset_refault counts every one.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    f = k.open_file("f", 100 * PAGE)
    p.read(f, 0, 100 * PAGE)
    first = 0 if k.cfg.workingset_folio_seq else 1
    assert pages_by_seq(k, a.id)[first] == (0, 100)
    groups = []
    for nr in (1, None):
        evict(k, a.id, first, 0, nr)
        stored = min_max_seq(k, a.id)[0][1]
        evicted = np.nonzero(f.pages < 0)[0]
        groups.append((sorted(set(evicted) - {i for g, _ in groups for i in g}), stored))
    assert [len(g) for g, _ in groups] == [64, 36] and [s for _, s in groups] == [first, 2]
    for _ in range(agings):
        age(k, a.id, 0)
    mins, max_seq = min_max_seq(k, a.id)
    for pages, stored in groups:
        before = tier_rows(k, a.id)[1].refaulted[0]
        n = stat(k, "workingset_refault_file")
        for i in pages:
            p.read(f, int(i) * PAGE, PAGE)
        after = tier_rows(k, a.id)[1].refaulted[0]
        want = len(pages) if recent(k, mins[1], max_seq, stored) else 0
        assert after - before == want, (stored, mins, max_seq)
        assert stat(k, "workingset_refault_file") - n == len(pages)


@pytest.mark.parametrize("preset", BOTH)
def test_fc27_workingset_restore_on_swap_in(preset: str) -> None:
    """Spec §9 item 27: PG_workingset survives eviction in the shadow entry (spec §4.8).

    W (64 pages) is promoted by aging (upstream: at the second sighting, which sets
    PG_workingset, §2.6) and A (64) never is; both are then aged cold and swapped out
    in batches of 64, whose stored seq the test reads as min_seq after each batch.
    Swapped back in by a fault (PG_active, §2.5 rule 1), a page refaulting recently
    gets PG_workingset back -- upstream if it had it (W), v6.10 on every recent refault
    in a fault. On v6.14 (lru_gen_folio_seq()) the workingset ones land in max_seq and
    the others in max_seq - 1; before, lru_gen_add_folio() puts every active folio in
    max_seq.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = p.mmap(128 * PAGE)
    p.access(addr, 128 * PAGE, write=True)
    age(k, a.id, 60)
    p.access(addr, 64 * PAGE)  # W = the first 64
    for _ in range(4):
        age(k, a.id, 60)
    mins, _ = min_max_seq(k, a.id)
    stored = np.full(128, -1)
    while not swapped_mask(p, addr, 128).all():
        evict(k, a.id, mins[0], 60, 1)
        now = swapped_mask(p, addr, 128)
        stored[now & (stored < 0)] = min_max_seq(k, a.id)[0][0]
    mins, max_seq = min_max_seq(k, a.id)
    p.access(addr, 128 * PAGE)
    assert min_max_seq(k, a.id)[1] == max_seq
    pfns = ptes(p, addr, 128)[0]
    ws = (k.mem.flags[pfns] & PG_workingset) != 0
    gens = gen_field(k, pfns)
    is_recent = np.array([recent(k, mins[0], max_seq, int(s)) for s in stored])
    was_ws = np.arange(128) < 64 if k.cfg.two_step_promotion else np.ones(128, bool)
    want_ws = is_recent & was_ws
    assert is_recent.any()
    assert (ws == want_ws).all()
    youngest = want_ws | (not k.cfg.workingset_folio_seq)
    assert (gens == np.where(youngest, max_seq % 4, (max_seq - 1) % 4)).all()
    audit(k)


# -- item 28 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", BOTH)
@pytest.mark.parametrize("elapsed, memory_min, oom", [
    (0, 0, True), (1000, 0, True), (1001, 0, False), (1001, 15500, True), (None, 0, False)])
def test_fc28_min_ttl_oom(preset: str, elapsed: int | None, memory_min: int, oom: bool) -> None:
    """Spec §9 item 28: "With `min_ttl_ms` set, when every lruvec's oldest evictable gen is
    younger than the TTL, the OOM path is triggered."

    A task fills a 64 MiB node, min_ttl_ms is 1000 (None: left at 0), and it asks for
    more. Reclaim first runs the min_ttl check (spec §4.9): a lruvec is reclaimable
    only if it is not below memory.min, is sizable, and the birth of its oldest
    evictable generation is *before* now - min_ttl (time_is_before_jiffies: strictly).
    With none reclaimable the OOM killer runs (the task, the biggest, is killed and
    its allocation fails); otherwise reclaim makes room and the access succeeds.
    """
    k = new_kernel(preset, mib=64)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = p.mmap(16000 * PAGE)
    p.access(addr, 15000 * PAGE, write=True)
    if memory_min:
        k.write("/sys/fs/cgroup/a/memory.min", str(memory_min * PAGE))
    if elapsed is not None:
        k.write(MIN_TTL, "1000")
        k.tick(elapsed)
    else:
        k.tick(5000)
    if oom:
        with pytest.raises(MemoryError):
            p.access(addr + 15000 * PAGE, 1000 * PAGE, write=True)
        assert [(e["reason"], e["pid"]) for e in k.oom_events] == [("min_ttl", p.pid)]
        assert not p.alive and a.nr_charged == 0
    else:
        p.access(addr + 15000 * PAGE, 1000 * PAGE, write=True)
        # 16000 pages wanted, 16384 - 1024 reserved available: at least 640 swapped
        assert k.oom_events == [] and stat(k, "pswpout") >= 16000 - (16384 - 1024)
    audit(k)


@pytest.mark.parametrize("preset", ["v6.1", "v6.10"])
@pytest.mark.parametrize("agings", [0, 1])
def test_v6_1_refault_stats_count_only_recent_refaults(preset: str, agings: int) -> None:
    """mm/workingset.c lru_gen_refault(), 6.1: a refault whose shadow seq is not min_seq
    returns before any counting, so workingset_refault_file counts only recent
    refaults, and workingset_activate_file is never counted. v6.10 counts every
    refault and activates the recent ones. `refaulted` (the PID's r) counts the recent
    ones on both. Setup as in the recent-rule test above: two groups evicted with
    stored seqs 1 and 2 (read(2) entered min_seq + 1 = 1); with swappiness 0 the file
    min_seq ends at 2, so only the second group is recent, aged or not."""
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    f = k.open_file("f", 100 * PAGE)
    p.read(f, 0, 100 * PAGE)
    groups = []
    for nr in (1, None):
        evict(k, a.id, 1, 0, nr)
        evicted = np.nonzero(f.pages < 0)[0]
        groups.append(sorted(set(evicted) - {i for g in groups for i in g}))
    assert [len(g) for g in groups] == [64, 36] and min_max_seq(k, a.id)[0][1] == 2
    for _ in range(agings):
        age(k, a.id, 0)
    for pages, recent in zip(groups, (False, True), strict=True):
        r0, a0 = stat(k, "workingset_refault_file"), stat(k, "workingset_activate_file")
        rt0 = tier_rows(k, a.id)[1].refaulted[0]
        for i in pages:
            p.read(f, int(i) * PAGE, PAGE)
        counted = len(pages) if recent or preset == "v6.10" else 0
        activated = len(pages) if recent and preset == "v6.10" else 0
        assert stat(k, "workingset_refault_file") - r0 == counted
        assert stat(k, "workingset_activate_file") - a0 == activated
        assert tier_rows(k, a.id)[1].refaulted[0] - rt0 == (len(pages) if recent else 0)
