"""Where a folio enters MGLRU, per version (include/linux/mm_inline.h).

Before v6.14 (6.1 through 6.13) lru_gen_add_folio() places a folio by a ladder:
PG_active -> max_seq ("freshly faulted in", workingset or not); anon not in the
swap cache, or PG_reclaim and dirty or under writeback -> max_seq - 1; added by
reclaim, or at most MIN_NR_GENS + 1 generations of its type -> min_seq[type];
else min_seq[type] + 1. v6.14's lru_gen_folio_seq() places an active folio in
max_seq - 1 unless it has PG_workingset, and cold ones near max_seq - 3.

Expected seqs below are read off those rules by hand; the kernel is driven
through faults, read(2), debugfs and eviction.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import CGROOT, LRU_GEN, age, folio_seq, parse_lru_gen, pte_of

from mglru import SimKernel
from mglru.lru_gen.folio import lru_gen_folio_seq
from mglru.mm.page import (
    PTE_PRESENT,
    PG_active,
    PG_dirty,
    PG_reclaim,
    PG_swapbacked,
    PG_swapcache,
    PG_workingset,
    PG_writeback,
)

PAGE = 4096
#: presets with the ladder of lru_gen_add_folio() (6.1-6.13 bases)
LADDER = ("v6.1", "v6.10", "seed-v4", "seed-v4-noopt", "v6.12", "v3-bitmap", "v5-fast-only")
#: presets with v6.14's lru_gen_folio_seq()
BY_WORKINGSET = ("v6.14", "v6.15", "v6.16")


def kernel(preset: str, **kw) -> tuple[SimKernel, object]:
    """/a (id 2) with one task, on a 64 MiB node."""
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True, **kw)
    k.mkdir(CGROOT + "/a")
    return k, k.spawn(memcg="/a")


def gen_of(k: SimKernel, pfns) -> list[int]:
    """The folios' gen field (gen index)."""
    return [int(k.mem.gen[pfn]) - 1 for pfn in pfns]


def by_seq(k: SimKernel, memcg_id: int = 2) -> dict[int, tuple[int, int]]:
    return {g.seq: (g.anon, g.file) for g in parse_lru_gen(k.read(LRU_GEN))[memcg_id].nodes[0].gens}


@pytest.mark.parametrize("preset", LADDER + BY_WORKINGSET)
def test_fresh_anon_write_fault_lands_in_max_seq_before_v6_14(preset: str) -> None:
    """A write fault in a recency VMA sets PG_active (folio_add_lru() under
    lru_gen_in_fault()). Before v6.14 the folio enters max_seq (3); v6.14 puts a
    non-workingset active folio in max_seq - 1 (2). The same for a THP and a mapped
    file page; a fault without recency (no PG_active) leaves anon in max_seq - 1
    on every version."""
    k, p = kernel(preset)
    want = 3 if preset in LADDER else 2
    anon = p.mmap(16 * PAGE)
    p.access(anon, 16 * PAGE, write=True)
    thp = p.mmap(2 << 20, thp=True)
    p.access(thp, 2 << 20, write=True)
    fm = p.mmap(4 * PAGE, file=k.open_file("f", 4 * PAGE))
    p.access(fm, 4 * PAGE)
    cold = p.mmap(4 * PAGE, flags=("rand_read",))
    p.access(cold, 4 * PAGE, write=True)
    expect = {s: (0, 0) for s in range(4)}
    expect[want] = (16 + 512, 4)
    expect[2] = (expect[2][0] + 4, expect[2][1])
    assert by_seq(k) == expect
    lv = k.lruvec("/a")
    assert folio_seq(lv, k.mem.gen[pte_of(p, anon)[0]], 0) == lv.max_seq - (want != 3)
    assert not (k.mem.flags[pte_of(p, anon)[0]] & PG_active)


@pytest.mark.parametrize("preset", ("v6.12", "seed-v4", "v6.14"))
def test_rescued_active_folios_are_put_back_in_max_seq_before_v6_14(preset: str) -> None:
    """Eviction's put-back (mm/vmscan.c evict_folios): mapped file folios found young
    again after isolation, and anon folios that get no swap slot (activate_locked),
    become active and re-enter through lru_gen_add_folio(): max_seq before v6.14,
    max_seq - 1 on v6.14 (not workingset). Before the fix they entered max_seq - 1
    on every version, one aging closer to eviction than on a real 6.12."""
    k, p = kernel(preset)
    lv = k.lruvec("/a")
    f = k.open_file("f", 64 * PAGE)
    addr = p.mmap(64 * PAGE, file=f)
    p.access(addr, 64 * PAGE)
    for _ in range(3):  # cold in the oldest generation, seq 3 of max_seq 6
        age(k, 2, swappiness=60)
    assert (lv.max_seq, lv.min_seq) == (6, [3, 3])
    p.access(addr, 64 * PAGE)  # young again, after the last aging
    k.write(LRU_GEN, "- 2 0 3 0\n")
    put_back = lv.max_seq if preset != "v6.14" else lv.max_seq - 1
    assert (f.pages >= 0).all()
    assert gen_of(k, f.pages) == [put_back % 4] * 64

    k, p = kernel(preset, swap_pages=10)
    lv = k.lruvec("/a")
    anon = p.mmap(100 * PAGE)
    p.access(anon, 100 * PAGE, write=True)
    for _ in range(3):
        age(k, 2, swappiness=60)
    k.write(LRU_GEN, "- 2 0 3 200\n")
    kept = [pfn for pfn, bits in (pte_of(p, anon + i * PAGE) for i in range(100))
            if bits & PTE_PRESENT]
    assert len(kept) == 90, "10 swap slots: 90 folios activated and put back"
    put_back = lv.max_seq if preset != "v6.14" else lv.max_seq - 1
    assert gen_of(k, kept) == [put_back % 4] * 90


def _file_gens(k: SimKernel, nr_gens: int) -> None:
    """Give /a's (empty) file type 2, 3 or 4 generations through debugfs.

    A fresh lruvec has 4 (min_seq 0, max_seq 3). `-` with swappiness 0 retires the
    empty file seqs 0 and 1 (2 generations); each aging with swappiness 0 then adds
    one without touching min_seq[file].
    """
    if nr_gens == 4:
        return
    k.write(LRU_GEN, "- 2 0 0 0\n")
    for _ in range(nr_gens - 2):
        age(k, 2, swappiness=0)


@pytest.mark.parametrize("preset", ("v6.10", "v6.12", "seed-v4", "v6.14"))
@pytest.mark.parametrize("nr_gens", [2, 3, 4])
def test_read_enters_min_seq_or_the_next_by_generation_count(preset: str, nr_gens: int) -> None:
    """read(2) adds an inactive file folio. Before v6.14: min_seq[file] + 1 when the
    type has 4 generations (min_seq + MIN_NR_GENS < max_seq), min_seq with 3 or 2.
    v6.14: max_seq - 3 clamped to min_seq, i.e. min_seq for 2, 3 and 4."""
    k, p = kernel(preset)
    _file_gens(k, nr_gens)
    lv = k.lruvec("/a")
    min_seq = lv.min_seq[1]
    assert lv.max_seq - min_seq + 1 == nr_gens
    f = k.open_file("f", 4 * PAGE)
    p.read(f, 0, 4 * PAGE)
    want = min_seq + 1 if nr_gens == 4 and preset != "v6.14" else min_seq
    assert [folio_seq(lv, k.mem.gen[pfn], 1) for pfn in f.pages] == [want] * 4


# the ladder itself, on an empty lruvec whose seqs are set directly
ANON = PG_swapbacked
FILE = 0
#: (flags, reclaiming, {nr_gens: seq as offset from (max_seq, min_seq)}) for 6.1-6.13
LADDER_CASES = [
    # PG_active: max_seq, workingset or not
    (ANON | PG_active, False, {4: ("max", 0), 3: ("max", 0), 2: ("max", 0)}),
    (FILE | PG_active | PG_workingset, False, {4: ("max", 0), 3: ("max", 0), 2: ("max", 0)}),
    (FILE | PG_active, True, {4: ("max", 0), 3: ("max", 0), 2: ("max", 0)}),
    # anon not in the swap cache: max_seq - 1, even when added by reclaim
    (ANON, False, {4: ("max", -1), 3: ("max", -1), 2: ("max", -1)}),
    (ANON, True, {4: ("max", -1), 3: ("max", -1), 2: ("max", -1)}),
    # PG_reclaim with dirty or writeback: max_seq - 1
    (FILE | PG_reclaim | PG_dirty, False, {4: ("max", -1), 3: ("max", -1), 2: ("max", -1)}),
    (FILE | PG_reclaim | PG_writeback, True, {4: ("max", -1), 3: ("max", -1), 2: ("max", -1)}),
    # PG_reclaim alone is cold: by distance
    (FILE | PG_reclaim, False, {4: ("min", 1), 3: ("min", 0), 2: ("min", 0)}),
    # anon in the swap cache, file: min_seq + 1 with 4 generations, else min_seq
    (ANON | PG_swapcache, False, {4: ("min", 1), 3: ("min", 0), 2: ("min", 0)}),
    (FILE | PG_workingset, False, {4: ("min", 1), 3: ("min", 0), 2: ("min", 0)}),
    # added by reclaim: min_seq
    (FILE, True, {4: ("min", 0), 3: ("min", 0), 2: ("min", 0)}),
    (ANON | PG_swapcache, True, {4: ("min", 0), 3: ("min", 0), 2: ("min", 0)}),
]


@pytest.mark.parametrize("preset", ("v6.10", "v6.12", "seed-v4"))
@pytest.mark.parametrize("nr_gens", [2, 3, 4])
@pytest.mark.parametrize("flags,reclaiming,where", LADDER_CASES, ids=[
    "active-anon", "active-workingset-file", "active-file-by-reclaim", "anon", "anon-by-reclaim",
    "reclaim-dirty-file", "reclaim-writeback-file-by-reclaim", "reclaim-clean-file",
    "swapcache-anon", "workingset-file", "file-by-reclaim", "swapcache-anon-by-reclaim"])
def test_lru_gen_add_folio_ladder(preset: str, nr_gens: int, flags: int, reclaiming: bool,
                                  where: dict) -> None:
    """Each rung of the 6.1-6.13 ladder at 2, 3 and 4 generations of the folio's type
    (max_seq 7, so that no rung coincides with another by accident)."""
    k, _ = kernel(preset)
    lv = k.lruvec("/a")
    lv.max_seq = 7
    lv.min_seq = [7 - nr_gens + 1] * 2
    base, off = where[nr_gens]
    want = (lv.max_seq if base == "max" else lv.min_seq[0]) + off
    got = lru_gen_folio_seq(lv, np.array([flags], np.uint16), reclaiming)
    assert got.tolist() == [want]


#: presets whose lru_gen_add_folio() resets an entering active folio's tier (6.9-6.13)
RESETS_TIER = ("v6.10", "seed-v4", "seed-v4-noopt", "v6.12", "v3-bitmap", "v5-fast-only")


@pytest.mark.parametrize("preset", RESETS_TIER + ("v6.1",) + BY_WORKINGSET)
def test_entering_active_folio_loses_its_tier_on_6_9_to_6_13(preset: str) -> None:
    """Four file folios, each with the refs field at 2 and PG_referenced, taken off the
    list and added back: the two with PG_active enter max_seq and, on kernels from
    6.9 to 6.13 (read in 6.12's include/linux/mm_inline.h: lru_gen_add_folio()), lose
    refs and PG_referenced but keep PG_workingset; 6.1 and the v6.14 rework keep
    them. Inactive folios keep their refs everywhere."""
    from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_del_folio
    from mglru.mm.page import LRU_REFS_MASK, LRU_REFS_SHIFT, PG_referenced

    k, p = kernel(preset)
    f = k.open_file("f", 4 * PAGE)
    p.read(f, 0, 4 * PAGE)
    pfns = np.asarray(f.pages[:4], np.int64)
    lv = k.lruvec("/a")
    lru_gen_del_folio(k.mem, lv, pfns, reclaiming=True)
    tier = np.uint16((2 << LRU_REFS_SHIFT) | PG_referenced | PG_workingset)
    k.mem.flags[pfns] = (k.mem.flags[pfns] & ~np.uint16(LRU_REFS_MASK)) | tier
    k.mem.flags[pfns[:2]] |= np.uint16(PG_active)
    lru_gen_add_folio(k.mem, lv, pfns)
    flags = k.mem.flags[pfns].astype(int)
    refs = ((flags & LRU_REFS_MASK) >> LRU_REFS_SHIFT).tolist()
    referenced = [bool(x & PG_referenced) for x in flags]
    reset = preset in RESETS_TIER
    assert refs == ([0, 0] if reset else [2, 2]) + [2, 2]
    assert referenced == [not reset, not reset, True, True]
    assert all(x & PG_workingset for x in flags) and not any(x & PG_active for x in flags)


@pytest.mark.parametrize("preset", LADDER[1:2] + BY_WORKINGSET[:1])
@pytest.mark.parametrize("nr_gens", [2, 3, 4])
def test_lru_gen_add_one_matches_lru_gen_add_folio(preset: str, nr_gens: int) -> None:
    """The fault path's one-folio twin reaches the state lru_gen_add_folio() reaches, for
    every combination of the flags the placement reads (and unevictable, THP heads)."""
    from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_add_one
    from mglru.mm.page import LRU_REFS_SHIFT, PG_head, PG_referenced, PG_unevictable

    bits = [PG_active, PG_workingset, PG_swapbacked, PG_swapcache, PG_reclaim, PG_dirty,
            PG_writeback, PG_unevictable, PG_head, PG_referenced, 1 << LRU_REFS_SHIFT]
    states = []
    for one in (False, True):
        k, _ = kernel(preset)
        lv = k.lruvec("/a")
        lv.max_seq = 7
        lv.min_seq = [7 - nr_gens + 1, 7 - nr_gens + 2 if nr_gens > 2 else 6]
        pfns = np.arange(4096, 4096 + (1 << len(bits)), dtype=np.int64)
        k.mem.flags[pfns] = [sum(b for i, b in enumerate(bits) if c >> i & 1)
                             for c in range(len(pfns))]
        for pfn in pfns:
            if one:
                lru_gen_add_one(k.mem, lv, int(pfn))
            else:
                lru_gen_add_folio(k.mem, lv, np.array([pfn]))
        states.append((k.mem.flags[pfns].tolist(), k.mem.gen[pfns].tolist(),
                       k.mem.lru[pfns].tolist(), lv.nr_pages.tolist(), lv.nr_listed.tolist()))
    assert states[0] == states[1]


@pytest.mark.parametrize("preset", LADDER[1:2] + BY_WORKINGSET[:1])
@pytest.mark.parametrize("reclaiming", [False, True])
def test_lru_gen_del_one_matches_lru_gen_del_folio(preset: str, reclaiming: bool) -> None:
    """The one-folio twin of lru_gen_del_folio() reaches the same state, for folios of
    every generation, both types and THP heads."""
    from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_del_folio, lru_gen_del_one
    from mglru.mm.page import PG_head

    states = []
    for one in (False, True):
        k, _ = kernel(preset)
        lv = k.lruvec("/a")
        lv.max_seq = 7
        lv.min_seq = [4, 4]
        pfns = np.arange(4096, 4096 + 32, dtype=np.int64)
        k.mem.flags[pfns] = [(PG_swapbacked if c & 1 else 0) | (PG_head if c & 2 else 0)
                             | (PG_active if c & 4 else 0) | (PG_workingset if c & 8 else 0)
                             for c in range(len(pfns))]
        lru_gen_add_folio(k.mem, lv, pfns)
        k.mem.gen[pfns] = np.arange(len(pfns)) % 4 + 1  # every generation
        for pfn in pfns:
            if one:
                lru_gen_del_one(k.mem, lv, int(pfn), reclaiming)
            else:
                lru_gen_del_folio(k.mem, lv, np.array([pfn]), reclaiming)
        states.append((k.mem.flags[pfns].tolist(), k.mem.gen[pfns].tolist(),
                       k.mem.lru[pfns].tolist(), lv.nr_pages.tolist(), lv.nr_listed.tolist()))
    assert states[0] == states[1]
