"""Spec §9 checklist, "Generations and folios": items 1-6.

Each test drives the kernel like a user (process API, cgroupfs, debugfs) and
checks the generations through lru_gen / lru_gen_full (read back by the
independent parser in kernel_checks) and through the lruvec state.
"""

from __future__ import annotations

import pytest
from kernel_checks import (
    CGROOT,
    LRU_GEN,
    LRU_GEN_FULL,
    age,
    age_direct,
    check_invariants,
    folio_seq,
    parse_lru_gen,
    pte_of,
)

from mglru import SimKernel
from mglru.lru_gen.aging import try_to_inc_min_seq
from mglru.mm.page import LRU_REFS_MASK, PG_referenced

PAGE = 4096


def kernel(preset: str, **kw) -> SimKernel:
    kw.setdefault("node_bytes", (64 << 20,))
    return SimKernel(preset, debug=True, **kw)


def gens_of(k: SimKernel, memcg_id: int, nid: int = 0, full: bool = False):
    """Parsed generations of one lruvec."""
    return parse_lru_gen(k.read(LRU_GEN_FULL if full else LRU_GEN), full=full)[memcg_id].nodes[nid]


def t_stat(k: SimKernel, memcg_id: int, type_: int, tier: int, nid: int = 0) -> int:
    """avg_total ('T') of a type and tier, printed on the max_seq line of lru_gen_full."""
    g = gens_of(k, memcg_id, nid, full=True).gens[-1]
    value, mark = g.tiers[tier][3 * type_ + 1]
    assert mark == "T"
    return value


# -- item 1 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc01_fresh_lruvec_has_gens_0_to_3(preset: str) -> None:
    """§9.1: "A fresh lruvec shows gens 0..3 (4 lines in `lru_gen`), `max_seq=3`, both
    `min_seq=0`." Checked for the root memcg and a new memcg on both nodes; the ages
    count from the lruvec's birth (boot, or the mkdir)."""
    k = kernel(preset, node_bytes=(64 << 20, 64 << 20))
    k.tick(5)
    k.mkdir(CGROOT + "/a")
    k.tick(7)
    out = parse_lru_gen(k.read(LRU_GEN))
    assert sorted(out) == [1, 2]
    for memcg_id, age_ms in ((1, 12), (2, 7)):
        assert sorted(out[memcg_id].nodes) == [0, 1]
        for nid in (0, 1):
            block = out[memcg_id].nodes[nid]
            assert block.seqs() == [0, 1, 2, 3]
            assert [(g.age_ms, g.anon, g.file) for g in block.gens] == [(age_ms, 0, 0)] * 4
            lv = k.lruvec(memcg_id, nid)
            assert (lv.max_seq, lv.min_seq) == (3, [0, 0])
    full = parse_lru_gen(k.read(LRU_GEN_FULL), full=True)
    assert all(g.marks == "  " for m in full.values() for nb in m.nodes.values() for g in nb.gens)
    assert [g.seq for g in full[2].nodes[1].gens] == [0, 1, 2, 3]


# -- item 2 ------------------------------------------------------------------------------
# where a fault (PG_active) and a read(2) land with 4 generations of each type:
# v6.14's lru_gen_folio_seq() puts a non-workingset active folio in max_seq - 1 and a
# cold file folio in max_seq - 3; before (include/linux/mm_inline.h lru_gen_add_folio(),
# 6.1-6.13) every active folio enters max_seq and a cold file folio min_seq + 1
FAULT_READ_OFFSETS = {"v6.10": (0, 1), "v6.14": (-1, -3)}


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc02_fault_lands_in_max_seq_minus_1_read_in_oldest(preset: str) -> None:
    """§9.2 as of v6.14: "A page faulted in (anon or file, recency VMA) appears in
    `max_seq-1`; a page-cache page added by `read()` (not in a fault) appears in the
    oldest allowed gen (`max(max_seq-3, min_seq)`)." Before v6.14 the fault lands in
    max_seq and, with four generations, the read in min_seq + 1. Covers anon, THP, file
    and shmem (swap-backed, so counted as anon) faults, read(2), after aging, and with
    min_seq[file] close enough to max_seq that the oldest generation is the only choice."""
    fault_off, read_off = FAULT_READ_OFFSETS[preset]
    k = kernel(preset)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    anon = p.mmap(10 * PAGE)
    thp = p.mmap(2 << 20, thp=True)
    f = k.open_file("f", 64 * PAGE)
    fmap = p.mmap(6 * PAGE, file=f)
    shm = p.mmap(3 * PAGE, file=k.open_file("shm", 3 * PAGE, shmem=True))
    p.access(anon, 10 * PAGE, write=True)
    p.access(thp, 2 << 20, write=True)
    p.access(fmap, 6 * PAGE)
    p.access(shm, 3 * PAGE, write=True)
    p.read(f, 32 * PAGE, 5 * PAGE)
    by_seq = {g.seq: (g.anon, g.file) for g in gens_of(k, 2).gens}
    expect = {seq: (0, 0) for seq in range(4)}
    # max_seq 3, min_seq 0: v6.14 faults in 2 and reads in 0; before, 3 and 1
    expect[3 + fault_off] = (10 + 512 + 3, 6)
    expect[3 + read_off if read_off < 0 else 0 + read_off] = (0, 5)
    assert by_seq == expect

    # after two agings (max_seq 5, min_seq 2): a fault lands in 4 (v6.14) or 5; a
    # read(2) in 5 - 3 = 2 (v6.14) or min_seq + 1 = 3
    age(k, 2)
    age(k, 2)
    lv = k.lruvec("/a")
    assert lv.max_seq == 5 and lv.min_seq == [2, 2]
    more = p.mmap(4 * PAGE)
    p.access(more, 4 * PAGE, write=True)
    p.read(f, 40 * PAGE, 2 * PAGE)
    assert folio_seq(lv, k.mem.gen[pte_of(p, more)[0]], 0) == 5 + fault_off
    assert folio_seq(lv, k.mem.gen[f.pages[40]], 1) == (5 + read_off if read_off < 0
                                                         else 2 + read_off)

    # retire the empty old file generations (as eviction does): the clamp to
    # min_seq[file] now decides where read(2) puts a page
    fresh = kernel(preset)
    fresh.mkdir(CGROOT + "/b")
    q = fresh.spawn(memcg="/b")  # no pages yet: every old list is empty
    age(fresh, 2)
    age(fresh, 2)
    lv = fresh.lruvec("/b")
    try_to_inc_min_seq(fresh, lv, 60)
    assert lv.min_seq[1] > lv.max_seq - 3, "precondition: file min_seq above max_seq - 3"
    g = fresh.open_file("g", 4 * PAGE)
    q.read(g, 0, 4 * PAGE)
    assert folio_seq(lv, fresh.mem.gen[g.pages[0]], 1) == lv.min_seq[1]
    assert gens_of(fresh, 2).by_seq(lv.min_seq[1]).file == 4
    check_invariants(k)
    check_invariants(fresh)


# -- item 3 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc03_aging_adds_one_empty_generation_aged_zero(preset: str) -> None:
    """§9.3: "Aging always increments `max_seq` by exactly 1 and sets the new gen's age
    to ~0 ms; the new youngest gen is empty right after aging." Checked across passes
    with and without fresh accesses, with and without force_scan (reclaim's path on
    v6.10, where debugfs needs force_scan), and with fewer than 4 generations. The
    exception of item 4 (a non-evictable type's oldest folios aliasing the new
    youngest index) is excluded here by using the default swappiness."""
    k = kernel(preset)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(40 * PAGE)
    p.access(a, 40 * PAGE, write=True)
    f = k.open_file("f", 20 * PAGE)
    p.read(f, 0, 20 * PAGE)
    lv = k.lruvec("/a")
    elapsed = 0
    for step in range(8):
        k.tick(100)
        elapsed += 100
        before = gens_of(k, 2)
        if step % 2:
            p.access(a, (step + 1) * 4 * PAGE)
        if step == 5:
            try_to_inc_min_seq(k, lv, 60)  # fewer than 4 gens from here on
        if step in (3, 6):
            if k.cfg.aging_rc_eexist:
                age(k, 2, force_scan=False)
            else:
                assert age_direct(k, lv, force_scan=False)
        else:
            age(k, 2)
        after = gens_of(k, 2)
        assert after.max_seq == before.max_seq + 1 == lv.max_seq
        newest = after.gens[-1]
        assert (newest.age_ms, newest.anon, newest.file) == (0, 0, 0)
        # the previous youngest keeps its birth time
        assert after.by_seq(before.max_seq).age_ms == before.by_seq(before.max_seq).age_ms
        assert sum(g.anon + g.file for g in after.gens) == 60
    assert gens_of(k, 2).gens[0].age_ms <= elapsed


# -- item 4 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc04_full_type_retires_oldest_gen_moving_folios_up(preset: str) -> None:
    """§9.4 (evictable case): "If a type already has 4 gens, aging first increments its
    `min_seq`, moving the oldest folios to `min_seq+1` (counted as protected)". A fresh
    lruvec already has 4 generations; read(2) puts 16 file pages into seq 0 (v6.14) or
    seq 1 (before: min_seq + 1), so v6.10 first ages once without moving them, to make
    them the oldest. Aging then moves them to the next seq and clears their refs.
    "Counted as protected" is v6.14+ (spec §3.11, §8.4): protected[tier 0] += 16,
    immediately folded by reset_ctrl_pos() into avg_total = 16 / 2 = 8, shown as `T` on
    the max_seq line; v6.10 counts nothing."""
    k = kernel(preset)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    f = k.open_file("f", 16 * PAGE)
    p.read(f, 0, 16 * PAGE)
    pfns = f.pages.copy()
    assert (k.mem.flags[pfns] & PG_referenced).all()
    lv = k.lruvec("/a")
    base = 0 if preset == "v6.14" else 1
    assert gens_of(k, 2).by_seq(base).file == 16
    if base:
        age(k, 2)  # retires the empty seq 0 (min_seq [1, 1]); the pages stay in seq 1
        assert lv.min_seq == [1, 1] and gens_of(k, 2).by_seq(1).file == 16
        assert (k.mem.flags[pfns] & PG_referenced).all()
    age(k, 2)
    assert lv.min_seq == [base + 1, base + 1]
    blk = gens_of(k, 2)
    assert blk.seqs() == [base + 1, base + 2, base + 3, base + 4]
    assert blk.by_seq(base + 1).file == 16
    assert (k.mem.gen[pfns] == (base + 1) % 4 + 1).all()
    assert not (k.mem.flags[pfns] & (PG_referenced | LRU_REFS_MASK)).any()
    assert t_stat(k, 2, 1, 0) == (8 if preset == "v6.14" else 0)
    assert t_stat(k, 2, 0, 0) == 0
    check_invariants(k)


@pytest.mark.parametrize("preset,swappiness,type_", [
    ("v6.10", "0", 0), ("v6.14", "0", 0), ("v6.16", "0", 0), ("v6.16", "max", 1),
])
def test_fc04_non_evictable_type_keeps_oldest_folios(preset: str, swappiness: str,
                                                      type_: int) -> None:
    """§9.4 (non-evictable case): "... or, for a non-evictable type (anon with swappiness
    0, file with 201), without moving them (they re-appear as youngest)." The folios
    keep their gen field, flags and refs, min_seq still advances, lru_gen lists them on
    the new max_seq line, and nothing is counted as protected. File with 201 needs the
    v6.16 `max` token (earlier kernels reject 201, spec §5.4)."""
    k = kernel(preset)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    lv = k.lruvec("/a")
    if type_ == 0:
        a = p.mmap(12 * PAGE)
        p.access(a, 12 * PAGE, write=True)
        pfns = [pte_of(p, a + i * PAGE)[0] for i in range(12)]
        # age without further access until the pages are the oldest generation
        while folio_seq(lv, k.mem.gen[pfns[0]], 0) != lv.min_seq[0]:
            age(k, 2)
    else:
        f = k.open_file("f", 12 * PAGE)
        p.read(f, 0, 12 * PAGE)
        pfns = list(f.pages)
    old_seq = lv.min_seq[type_]
    gen_before = k.mem.gen[pfns].copy()
    flags_before = k.mem.flags[pfns].copy()
    age(k, 2, swappiness=swappiness)
    assert lv.min_seq[type_] == old_seq + 1
    assert (k.mem.gen[pfns] == gen_before).all()
    assert (k.mem.flags[pfns] == flags_before).all()
    newest = gens_of(k, 2).gens[-1]
    assert newest.seq == lv.max_seq == old_seq + 4
    assert (newest.anon, newest.file)[type_] == 12
    assert t_stat(k, 2, type_, 0) == 0
    check_invariants(k)


# -- item 5 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14", "v6.16"])
def test_fc05_nr_gens_within_2_and_4(preset: str) -> None:
    """§9.5: "`max_seq - min_seq[t] + 1` stays within [2, 4] for both types at all
    times." Aging with every swappiness class and force_scan on and off, interleaved
    with retiring empty generations, reaches both bounds (2 after retiring, 4 after
    aging) and never leaves them; lru_gen_full marks exactly the seqs below min_seq
    with `x`, and lru_gen starts at the lower min_seq."""
    k = kernel(preset)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(30 * PAGE)
    fm = p.mmap(10 * PAGE, file=k.open_file("f", 10 * PAGE))
    lv = k.lruvec("/a")
    swps = ["0", "1", "60", "200"] + (["max"] if k.cfg.swappiness_max_token else [])
    seen = set()
    for step in range(30):
        if step % 7 != 6:
            p.access(a, 30 * PAGE, write=True)
            p.access(fm, 10 * PAGE)
        swp = swps[step % len(swps)]
        force = step % 4 != 1
        if step % 6 == 5:
            swp = swps[step // 6 % len(swps)]
            try_to_inc_min_seq(k, lv, int(swp) if swp.isdigit() else 201)
        elif force or k.cfg.aging_rc_eexist:
            age(k, 2, swappiness=swp, force_scan=force)
        else:
            age_direct(k, lv, False, int(swp) if swp.isdigit() else 201)
        for t in (0, 1):
            nr = lv.max_seq - lv.min_seq[t] + 1
            assert 2 <= nr <= 4, f"step {step}: type {t} has {nr} gens"
            seen.add(nr)
        full = gens_of(k, 2, full=True)
        for g in full.gens:
            assert g.marks == "".join("x" if g.seq < lv.min_seq[t] else " " for t in (0, 1))
        assert gens_of(k, 2).seqs()[0] == min(lv.min_seq)
    assert {2, 4} <= seen


# -- item 6 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc06_counts_never_negative_and_conserved(preset: str) -> None:
    """§9.6: "Page counts per gen are never reported negative; totals are conserved
    across aging (only eviction/removal reduces them)." A known population (anon, THP,
    file mapped and read(2), shmem, two memcgs, two nodes) keeps its exact total per
    memcg through agings with accesses, task migration between memcgs (charges stay),
    MGLRU off/on, and rmdir (pages reparented to the parent)."""
    k = kernel(preset, node_bytes=(64 << 20, 64 << 20))
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/a/b")
    p = k.spawn(memcg="/a", node=0)
    q = k.spawn(memcg="/a/b", node=1)
    anon = p.mmap(100 * PAGE)
    p.access(anon, 100 * PAGE, write=True)
    thp = q.mmap(2 << 20, thp=True)
    q.access(thp, 2 << 20, write=True)
    f = k.open_file("f", 50 * PAGE)
    p.read(f, 0, 30 * PAGE)
    fm = q.mmap(50 * PAGE, file=f)
    q.access(fm, 50 * PAGE)  # 30 already cached (charged to /a), 20 new (to /a/b)
    shm = p.mmap(8 * PAGE, file=k.open_file("shm", 8 * PAGE, shmem=True))
    p.access(shm, 8 * PAGE, write=True)
    expected = {(2, 0): 100 + 30 + 8, (3, 1): 512 + 20}

    def totals() -> dict:
        out = {}
        for m in parse_lru_gen(k.read(LRU_GEN)).values():
            for nid, nb in m.nodes.items():
                for g in nb.gens:
                    assert g.anon >= 0 and g.file >= 0
                n = sum(g.anon + g.file for g in nb.gens)
                if n:
                    out[(m.id, nid)] = n
        return out

    assert totals() == expected
    for step in range(6):
        p.access(anon, (step + 1) * 10 * PAGE)
        q.access(fm, (step + 1) * 5 * PAGE)
        age(k, 2, 0)
        age(k, 3, 1, swappiness=("0", "60", "200")[step % 3])
        if step == 2:
            k.write(CGROOT + "/cgroup.procs", str(q.pid))  # q to the root: charges stay
        if step == 3:
            k.write("/sys/kernel/mm/lru_gen/enabled", "n")
            assert totals() == {}
            k.write("/sys/kernel/mm/lru_gen/enabled", "y")
        assert totals() == expected
        check_invariants(k)
    k.rmdir(CGROOT + "/a/b")
    assert totals() == {(2, 0): 138, (2, 1): 532}
    check_invariants(k)
