"""Spec §9 checklist, "Accessed-bit harvesting": items 7-16.

The page-table walk of aging (spec §3.4-3.9, §3.12, §8.3-8.4; seed 2/7). Tests
use the process API to fault and touch memory, debugfs `+` to age, and read
the outcome from lru_gen, lru_gen_full (mm_stats), folio flags and PTE bits.

Where debugfs cannot express a walk (v6.10/v6.12 answer `+` without
force_scan with -ERANGE while a type has 4 generations, spec §8.4), the walk is
started the way reclaim does, with try_to_inc_max_seq(force_scan=False).

Secondary MMUs are a `FakeSecondaryMmu` subscriber (tests/kernel_checks.py)
implementing only the walk's subscription contract; the KVM model proper is
tested with its own issue.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import (
    CGROOT,
    ENABLED,
    LRU_GEN,
    LRU_GEN_FULL,
    FakeSecondaryMmu,
    age,
    age_direct,
    check_invariants,
    folio_seq,
    mm_stats,
    parse_lru_gen,
    pmd_of,
    pte_of,
)

from mglru import SimKernel
from mglru.mm.page import (
    PMD_LEAF,
    PMD_SHIFT,
    PTE_DIRTY,
    PTE_YOUNG,
    PG_anon,
    PG_dirty,
    PG_referenced,
    PG_swapbacked,
    PG_swapcache,
    PG_workingset,
)

PAGE = 4096


def setup(preset: str, **kw) -> tuple[SimKernel, object]:
    """A kernel with memcg /a (id 2) and one task in it."""
    kw.setdefault("node_bytes", (64 << 20,))
    k = SimKernel(preset, debug=True, **kw)
    k.mkdir(CGROOT + "/a")
    return k, k.spawn(memcg="/a")


def age_no_force(k: SimKernel, memcg_id: int = 2, nid: int = 0, swappiness: int = 60) -> None:
    """An aging pass without force_scan: debugfs on v6.14+, reclaim's call before."""
    if k.cfg.aging_rc_eexist:
        age(k, memcg_id, nid, swappiness=swappiness, force_scan=False)
    else:
        assert age_direct(k, k.lruvec(memcg_id, nid), False, swappiness)


def pfns(p, addr: int, npages: int) -> np.ndarray:
    return np.array([pte_of(p, addr + i * PAGE)[0] for i in range(npages)], np.int64)


def young(p, addr: int, npages: int) -> np.ndarray:
    """Primary accessed bits of npages PTEs."""
    return np.array([bool(pte_of(p, addr + i * PAGE)[1] & PTE_YOUNG) for i in range(npages)])


def seqs(k: SimKernel, lv, pfn_list, type_: int = 0) -> list[int]:
    return [folio_seq(lv, int(k.mem.gen[f]), type_) for f in pfn_list]


def clear_pmd_young(p, addr: int) -> None:
    """The CPU reached the PTE through a cached translation: the non-leaf PMD's
    accessed bit stays clear while the PTE's is set (white-box, spec §3.6)."""
    vma = p.mm.find_vma(addr)
    row = int(vma.rows[(addr >> PMD_SHIFT) - (vma.start >> PMD_SHIFT)])
    p.mm.pt.pmd_flags[row] &= ~np.uint8(PTE_YOUNG)


# -- item 7 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,two_step", [
    ("v6.10", False), ("v6.12", False), ("v6.14", True), ("v6.16", True),
])
def test_fc07_two_step_promotion(preset: str, two_step: bool) -> None:
    """§9.7: "First detection of a young PTE on a folio with neither `PG_referenced` nor
    `PG_workingset` only sets `PG_referenced` (gen unchanged); the second detection moves
    it to the gen of `max_seq` *at walk time* (i.e. `new max_seq − 1` after the pass)
    and sets `PG_workingset`." Two-step is v6.14+; v6.10 and v6.12 promote on the first
    detection and clear PG_referenced/PG_workingset (spec §8.4). A folio already
    referenced by read(2) is promoted on its first detection in every version."""
    k, p = setup(preset)
    lv = k.lruvec("/a")
    a = p.mmap(8 * PAGE)
    p.access(a, 8 * PAGE, write=True)
    pf = pfns(p, a, 8)
    if two_step:
        shift = 0
        assert seqs(k, lv, pf) == [2] * 8  # v6.14: max_seq - 1
    else:
        # before v6.14 the fault enters max_seq (3), where promotion would not show:
        # one pass clears the PTEs (the folios stay in 3, now max_seq - 1), a second
        # touch makes them young again, as v6.14's fresh fault is
        assert seqs(k, lv, pf) == [3] * 8
        age(k, 2)  # closes seq 3
        assert seqs(k, lv, pf) == [lv.max_seq - 1] * 8 == [3] * 8
        assert not young(p, a, 8).any()
        p.access(a, 8 * PAGE)
        shift = 1
    assert not (k.mem.flags[pf] & (PG_referenced | PG_workingset)).any()

    age(k, 2)  # closes seq 3 + shift
    assert not young(p, a, 8).any()
    if two_step:
        assert seqs(k, lv, pf) == [2] * 8
        assert (k.mem.flags[pf] & PG_referenced).all()
        assert not (k.mem.flags[pf] & PG_workingset).any()
    else:
        assert seqs(k, lv, pf) == [lv.max_seq - 1] * 8 == [3 + shift] * 8
        assert not (k.mem.flags[pf] & (PG_referenced | PG_workingset)).any()

    p.access(a, 8 * PAGE)
    age(k, 2)  # closes seq 4 + shift
    assert seqs(k, lv, pf) == [lv.max_seq - 1] * 8 == [4 + shift] * 8
    assert not (k.mem.flags[pf] & PG_referenced).any()
    assert bool((k.mem.flags[pf] & PG_workingset).all()) is two_step
    assert parse_lru_gen(k.read(LRU_GEN))[2].nodes[0].by_seq(4 + shift).anon == 8

    # a page cache folio referenced by read(2), then mapped and touched
    f = k.open_file("f", 4 * PAGE)
    p.read(f, 0, 4 * PAGE)
    m = p.mmap(4 * PAGE, file=f)
    p.access(m, 4 * PAGE)
    age(k, 2)  # closes seq 5 + shift
    assert seqs(k, lv, f.pages, 1) == [lv.max_seq - 1] * 4 == [5 + shift] * 4
    assert bool((k.mem.flags[f.pages] & PG_workingset).all()) is two_step
    check_invariants(k)


# -- item 8 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset,cap_off,promoted", [
    ("v6.10", False, False), ("seed-v4", True, False), ("seed-v4", False, True),
    ("v6.12", False, True), ("v6.14", False, True),
])
def test_fc08_secondary_only_access_promotes_on_upstream(preset: str, cap_off: bool,
                                                         promoted: bool) -> None:
    """§9.8: "A folio accessed only through a secondary MMU (guest access, primary PTE
    old) is promoted by aging on v6.12+ semantics; with the "no notifier consult"
    (pre-6.12 / v4 cap off) semantics it is not." The v4 series consults the secondary
    MMU only with cap 0x8 on (spec §8.3). Promoted pages land in new max_seq - 1 and
    their SPTE accessed bits are cleared; otherwise the walk makes no notifier call and
    the SPTEs stay young."""
    k, p = setup(preset)
    if cap_off:
        k.write(ENABLED, "7")
        assert k.read(ENABLED) == "0x0007\n"
    lv = k.lruvec("/a")
    a = p.mmap(16 * PAGE)
    p.access(a, 16 * PAGE, write=True)  # the host faults guest memory in
    sub = FakeSecondaryMmu([(a, 16)])
    p.mm.notifiers.append(sub)
    age(k, 2)
    age(k, 2)
    pf = pfns(p, a, 16)
    sub.guest_access(a, 4)
    assert not young(p, a, 16).any(), "precondition: primary PTEs old"
    before = seqs(k, lv, pf)
    age(k, 2)
    after = seqs(k, lv, pf)
    if promoted:
        assert after[:4] == [lv.max_seq - 1] * 4
        assert not any(sub.young(a + i * PAGE) for i in range(4))
    else:
        assert after[:4] == after[4:8] and lv.max_seq - 1 not in after
        assert all(sub.young(a + i * PAGE) for i in range(4))
        assert not sub.calls.any()
    assert all(s != lv.max_seq - 1 for s in after[4:])
    assert len(set(before)) == 1
    check_invariants(k)


# -- item 9 ------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "seed-v4", "v6.12", "v6.14"])
def test_fc09_walk_touches_only_its_memcg_and_node(preset: str) -> None:
    """§9.9: "Aging of lruvec (memcg M, node N) never changes folios of other memcgs or
    nodes, even when they are mapped in M's mms; pfns outside N's range are not even
    looked up." One task of /a maps: A (its own anon pages, node 0), B (anon pages
    charged to /b before it migrated), F (file pages of /a cached on node 1). Aging
    (/a, node 1) harvests only F; aging (/a, node 0) only A; B never changes and keeps
    its young PTEs. Notifier calls show that out-of-node pfns are never looked up:
    upstream calls clear_young once per candidate (A or F, even when old), and v4, which
    asks test_young for old PTEs before get_pfn_folio (spec §8.3, seed 2/7), never asks
    for F's old PTEs from a node-0 walk. (A is touched before the node-0 pass: on v6.10
    the node-1 walk cleared the non-leaf accessed bits the two walks share.)"""
    k = SimKernel(preset, node_bytes=(64 << 20, 64 << 20), debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/b")
    q = k.spawn(memcg="/a", node=1)
    f = k.open_file("f", 8 * PAGE)
    q.read(f, 0, 8 * PAGE)  # page cache of /a on node 1
    k.exit_task(q)
    p = k.spawn(memcg="/b", node=0)
    b = p.mmap(8 * PAGE)
    p.access(b, 8 * PAGE, write=True)  # charged to /b
    k.write(CGROOT + "/a/cgroup.procs", str(p.pid))
    a = p.mmap(8 * PAGE)
    p.access(a, 8 * PAGE, write=True)  # charged to /a
    fm = p.mmap(8 * PAGE, file=f)
    p.access(fm, 8 * PAGE)
    sub = FakeSecondaryMmu([(a, 8), (b, 8), (fm, 8)])
    p.mm.notifiers.append(sub)
    pa, pb, pfile = pfns(p, a, 8), pfns(p, b, 8), pfns(p, fm, 8)
    assert (k.mem.memcg[pb] == 3).all() and (k.mem.memcg[pa] == 2).all()
    assert (pfile >= k.mem.nodes[1].start_pfn).all() and (k.mem.memcg[pfile] == 2).all()

    def state(x) -> tuple:
        return k.mem.gen[x].tolist(), k.mem.flags[x].tolist()

    b0, a0 = state(pb), state(pa)
    upstream = preset in ("v6.12", "v6.14")
    age(k, 2, 1)
    assert not young(p, fm, 8).any()
    assert young(p, a, 8).all() and young(p, b, 8).all()
    assert state(pa) == a0 and state(pb) == b0
    assert sub.stat("SEC_CLEAR_CALLS") == (8 if preset != "v6.10" else 0)
    f1 = state(pfile)

    p.access(a, 8 * PAGE)
    age(k, 2, 0)
    assert not young(p, a, 8).any()
    assert young(p, b, 8).all()
    assert state(pb) == b0 and state(pfile) == f1
    if preset == "v6.10":
        assert seqs(k, k.lruvec("/a", 0), pa) == [3] * 8  # promoted on first detection
    age(k, 2, 0)  # nothing young now
    assert state(pb) == b0 and state(pfile) == f1
    assert young(p, b, 8).all()
    if upstream:
        assert sub.stat("SEC_CLEAR_CALLS") == 8 + 8 + 8 and sub.stat("SEC_TEST_CALLS") == 0
    elif preset == "seed-v4":
        assert sub.stat("SEC_CLEAR_CALLS") == 16  # F, then A while young
        assert sub.stat("SEC_TEST_CALLS") == 8  # A once old; never F (out of node)
    else:
        assert not sub.calls.any()
    check_invariants(k)


# -- item 10 -----------------------------------------------------------------------------
_FLAG_KINDS = ["locked", "io", "dontexpand", "pfnmap", "mixedmap", "hugetlb", "seq_read",
               "rand_read", "noreuse_file", "unevictable_file", "no_read_folio_file"]


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
@pytest.mark.parametrize("kind", _FLAG_KINDS)
def test_fc10_vma_filter_skips_special_vmas(preset: str, kind: str) -> None:
    """§9.10 (flags): "VMAs with `VM_LOCKED`/`VM_SPECIAL`/hugetlb/no-recency are not
    scanned". No-recency covers seq/rand-read hints and FMODE_NOREUSE files; spec §3.4
    also skips unevictable mappings and mappings without read_folio. The special VMA's
    young PTEs survive an aging pass that harvests a normal VMA next to it, and
    mm_stats count only the normal VMA's slots."""
    k, p = setup(preset)
    ctl = p.mmap(8 * PAGE)
    if kind.endswith("_file"):
        opts = {"noreuse_file": {"noreuse": True}, "unevictable_file": {"unevictable": True},
                "no_read_folio_file": {"has_read_folio": False}}[kind]
        special = p.mmap(8 * PAGE, file=k.open_file("f", 8 * PAGE, **opts))
    else:
        special = p.mmap(8 * PAGE, flags=(kind,))
    p.access(ctl, 8 * PAGE, write=True)
    p.access(special, 8 * PAGE, write=True)
    # before v6.14 a fault enters max_seq, where the walk's promotion would not show:
    # one pass first, so that the folios sit below the seq the checked walk closes
    age(k, 2)
    p.access(ctl, 8 * PAGE)
    sp = pfns(p, special, 8)
    flags0 = k.mem.flags[sp].copy()
    walk_seq = k.lruvec("/a").max_seq
    before = mm_stats(k, 2)
    age(k, 2)  # the walk closes walk_seq
    assert not young(p, ctl, 8).any()
    assert young(p, special, 8).all()
    assert (k.mem.flags[sp] == flags0).all()
    if kind == "unevictable_file":
        assert not k.mem.gen[sp].any()  # never on an MGLRU list
    else:
        type_ = 1 if kind.endswith("_file") else 0
        assert walk_seq not in seqs(k, k.lruvec("/a"), sp, type_)
    st = mm_stats(k, 2)
    assert tuple(st[x] - before[x] for x in "TYF") == (8, 8, 1)


@pytest.mark.parametrize("preset,swappiness,skipped", [
    ("v6.10", "0", ("anon", "shmem")), ("v6.14", "0", ("anon", "shmem")),
    ("v6.16", "max", ("file",)), ("v6.16", "1", ()),
])
def test_fc10_vma_filter_follows_swappiness(preset: str, swappiness: str,
                                            skipped: tuple[str, ...]) -> None:
    """§9.10 (swappiness): "anon VMAs are skipped with swappiness 0; file VMAs with
    swappiness 201." Shmem follows anon for 0 but is still walked with 201 (spec §3.4:
    "shmem → skip iff swappiness == 0"). 201 is the v6.16 `max` token."""
    k, p = setup(preset)
    maps = {"anon": p.mmap(8 * PAGE),
            "shmem": p.mmap(8 * PAGE, file=k.open_file("shm", 8 * PAGE, shmem=True)),
            "file": p.mmap(8 * PAGE, file=k.open_file("f", 8 * PAGE))}
    for addr in maps.values():
        p.access(addr, 8 * PAGE, write=True)
    age(k, 2, swappiness=swappiness)
    for name, addr in maps.items():
        assert bool(young(p, addr, 8).all()) is (name in skipped), name
        assert bool(young(p, addr, 8).any()) is (name in skipped), name
    assert mm_stats(k, 2)["T"] == 8 * (3 - len(skipped))


# -- item 11 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc11_bitmap_skips_idle_mms_but_force_scans_new_ones(preset: str) -> None:
    """§9.11: "Without force_scan, an mm not switched-in since its last walk (bitmap bit
    clear) is skipped, except mms added after the previous iteration, which are
    force-scanned." p1 runs again, p2 does not: only p1's table is counted (`T`, `F`)
    and p2's young PTE survives. q, walked in /b and idle since, migrates into /a: the
    next pass takes it despite its clear bit and scans it ignoring the Bloom filter.
    Cap 0x4 is off so that non-leaf young (item 13) does not also gate the tables."""
    k, p1 = setup(preset)
    k.write(ENABLED, "3")
    k.mkdir(CGROOT + "/b")
    p2 = k.spawn(memcg="/a")
    a1, a2 = p1.mmap(16 * PAGE), p2.mmap(16 * PAGE)
    p1.access(a1, 16 * PAGE, write=True)
    p2.access(a2, 16 * PAGE, write=True)
    age(k, 2)  # first iteration: everything force-scanned, bits cleared

    p1.access(a1, 16 * PAGE)  # p1 runs, p2 does not
    # white-box: p2's first PTE is young although p2 was not switched in; the bitmap,
    # not the accessed bits, decides whether the mm is walked
    vma2 = p2.mm.find_vma(a2)
    p2.mm.pt.flat_flags()[vma2.pte_index(np.array([a2 >> 12]))] |= PTE_YOUNG
    before = mm_stats(k, 2)
    age_no_force(k)
    after = mm_stats(k, 2)
    assert after["T"] - before["T"] == 16 and after["F"] - before["F"] == 1
    assert not young(p1, a1, 16).any()
    assert young(p2, a2, 1).all()

    q = k.spawn(memcg="/b")
    b = q.mmap(16 * PAGE)
    q.access(b, 1 * PAGE, write=True)  # sparse: never in a Bloom filter
    age(k, 3)  # walks q in /b: its bit is now clear
    assert not q.mm.lru_gen_bitmap & 1
    k.write(CGROOT + "/a/cgroup.procs", str(q.pid))
    before = after
    age_no_force(k)  # p1 and p2 idle; q added since the last iteration
    after = mm_stats(k, 2)
    assert after["T"] - before["T"] == 16 and after["F"] - before["F"] == 1
    assert young(p2, a2, 1).all()


# -- item 12 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc12_bloom_filter_gates_pte_tables(preset: str) -> None:
    """§9.12: "Without force_scan, a PTE table is scanned only if its PMD is in the current
    Bloom filter (or the filter is absent); tables found "dense" (young*8 ≥ total) ...
    are inserted into the next filter; the next filter is cleared at the start of each
    iteration." Table A (64 slots) stays dense, table B turns sparse: B drops out of the
    filters and its young PTE is left alone until a force_scan pass. A pass where A is
    scanned but not dense leaves both filters without A two passes later, which only
    holds if the filter being written is cleared first. Cap 0x4 is off so that
    non-leaf young (item 13) does not also gate the tables. (The try-lock-contended
    case is tested separately.)"""
    k, p = setup(preset)
    k.write(ENABLED, "3")
    a, b = p.mmap(64 * PAGE), p.mmap(64 * PAGE)
    p.access(a, 64 * PAGE, write=True)
    p.access(b, 64 * PAGE, write=True)

    def delta(fn) -> tuple[int, int]:
        before = mm_stats(k, 2)
        fn()
        after = mm_stats(k, 2)
        return after["F"] - before["F"], after["A"] - before["A"]

    assert delta(lambda: age(k, 2)) == (2, 2)  # P1 (force): both dense, both added
    p.access(a, 64 * PAGE)
    p.access(b + PAGE, PAGE)
    assert delta(lambda: age_no_force(k)) == (2, 1)  # P2: both in the filter; B sparse
    assert not young(p, b + PAGE, 1).any()
    p.access(a, 64 * PAGE)
    p.access(b + PAGE, PAGE)
    assert delta(lambda: age_no_force(k)) == (1, 1)  # P3: B not in the filter
    assert young(p, b + PAGE, 1).all()
    p.mm.use()  # the task runs but touches nothing
    assert delta(lambda: age_no_force(k)) == (1, 0)  # P4: A scanned, not dense
    p.mm.use()
    assert delta(lambda: age_no_force(k)) == (0, 0)  # P5: the filter was cleared
    assert young(p, b + PAGE, 1).all()
    assert delta(lambda: age(k, 2)) == (2, 0)  # force_scan ignores the filter
    assert not young(p, b + PAGE, 1).any()


@pytest.mark.parametrize("nr_young,added", [(8, 1), (7, 0)])
def test_fc12_dense_means_young_times_8_at_least_total(nr_young: int, added: int) -> None:
    """§9.12 / §3.7: suitable_to_scan() is `young * 8 >= total` on x86: a 64-slot table
    with 8 young PTEs is carried into the next filter, with 7 it is not."""
    k, p = setup("v6.14")
    a = p.mmap(64 * PAGE)
    p.access(a, nr_young * PAGE, write=True)
    age(k, 2)
    st = mm_stats(k, 2)
    assert (st["T"], st["Y"], st["F"], st["A"]) == (64, nr_young, 1, added)


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc12_absent_filter_lets_every_table_through(preset: str) -> None:
    """§9.12: "... (or the filter is absent)". Filters are allocated when an iteration
    takes its first mm; a pass that takes none leaves the next pass's filter absent,
    so that pass scans a sparse table no filter ever held."""
    k, p = setup(preset)
    k.write(ENABLED, "3")  # non-leaf young off: only the filter gates the table
    a = p.mmap(64 * PAGE)
    p.access(a, PAGE, write=True)  # sparse: not added by the first pass
    age(k, 2)
    assert mm_stats(k, 2)["A"] == 0
    st = k.lruvec("/a").mm_state
    age_no_force(k)  # p is idle: no mm taken, the filter for the next seq not allocated
    assert st.filters[k.lruvec("/a").max_seq % 2] is None
    p.access(a, PAGE)
    before = mm_stats(k, 2)
    age_no_force(k)
    assert mm_stats(k, 2)["F"] - before["F"] == 1
    assert not young(p, a, 1).any()


@pytest.mark.parametrize("preset,added", [("v6.14", 1), ("v6.16", 1), ("v6.12", 0),
                                          ("seed-v4", 0), ("v6.10", 0), ("v6.1", 0)])
def test_fc12_contended_table_is_carried_over(preset: str, added: int) -> None:
    """§9.12 / §3.7: a PTE table whose lock cannot be try-locked is not scanned (its PTEs
    stay young) and FOUND counts it; from v6.14 it is reported "suitable" (ADDED, the
    next filter), before v6.14 walk_pte_range() returns false on the failed trylock."""
    k, p = setup(preset)
    a = p.mmap(64 * PAGE)
    p.access(a, PAGE, write=True)
    age(k, 2)
    p.access(a, PAGE)
    contend = getattr(p.mm, "ptl_contended", None)
    assert contend is not None, "no way to make the PTE lock contended"
    contend.add(a >> PMD_SHIFT)
    before = mm_stats(k, 2)
    age(k, 2)
    after = mm_stats(k, 2)
    assert [after[x] - before[x] for x in "TFA"] == [0, 1, added]
    assert young(p, a, 1).all()


# -- item 13 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset,force,notifiers,how,scanned", [
    ("v6.10", False, False, None, False),
    ("v6.10", True, False, None, False),  # v6.10 applies it even with force_scan
    ("v6.10", False, True, None, False),  # v6.10 ignores notifiers
    ("v6.12", True, False, None, True),  # v6.12: "ignore non-leaf pmd_young for force_scan"
    ("v6.12", False, False, None, False),
    ("v6.12", False, True, None, True),
    ("v6.14", False, False, None, False),
    ("v6.14", True, False, None, True),
    ("v6.14", False, True, None, True),
    ("seed-v4", False, False, None, True),  # v4: off whenever cap 0x8 is on
    ("seed-v4", False, False, "cap8_off", False),
    ("v6.14", False, False, "no_hw", True),
    ("v6.14", False, False, "cap4_off", True),
])
def test_fc13_old_nonleaf_pmd_skips_table(preset: str, force: bool, notifiers: bool,
                                          how: str | None, scanned: bool) -> None:
    """§9.13: "With non-leaf young enabled and no notifiers and not force_scan, an old
    non-leaf PMD skips its whole PTE table; with notifiers this optimisation is off."
    Non-leaf young needs the hardware (`hw_nonleaf_pmd_young`) and cap 0x4; v6.10 skips
    even with force_scan (v6.12 changed that), does not know notifiers, and the v4 series
    turns the optimisation off whenever cap 0x8 is on (spec §3.6, §8.3, seed 2/7). When
    the optimisation is on, the walk also clears a young non-leaf PMD's accessed bit."""
    kw = {"hw_nonleaf_pmd_young": False} if how == "no_hw" else {}
    k, p = setup(preset, **kw)
    if how == "cap4_off":
        k.write(ENABLED, "3")
    if how == "cap8_off":
        k.write(ENABLED, "7")
    a = p.mmap(64 * PAGE)
    p.access(a, 64 * PAGE, write=True)
    if notifiers:
        p.mm.notifiers.append(FakeSecondaryMmu([(a, 64)]))
    age(k, 2)  # the first iteration, dense: A is in the filter for the next pass
    p.access(a, 64 * PAGE)
    clear_pmd_young(p, a)
    before = mm_stats(k, 2)
    if force:
        age(k, 2)
    else:
        age_no_force(k)
    assert mm_stats(k, 2)["F"] - before["F"] == int(scanned)
    assert bool(young(p, a, 64).any()) is not scanned

    # the non-leaf bit is set again; the walk clears it (before the Bloom filter test)
    # iff the optimisation is on
    p.access(a, 64 * PAGE)
    if force:
        age(k, 2)
    else:
        age_no_force(k)
    assert bool(pmd_of(p, a)[1] & PTE_YOUNG) is scanned


# -- item 14 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.12", "v6.14"])
def test_fc14_harvest_clears_primary_and_notifies_per_candidate(preset: str) -> None:
    """§9.14: "Every harvested PTE/PMD gets its primary accessed bit cleared; with
    notifiers, `clear_young` is issued once per candidate 4 KiB page (2 MiB for THP); no
    TLB flush." Candidates are present in-node PTEs of this memcg's LRU folios: 20 anon
    pages and one THP, but not the zero page nor pages of another memcg (whose young bits
    stay set). Upstream issues 21 clear_young calls per pass, old or young, visiting
    20 + 512 SPTEs (the THP call spans 2 MiB), and never test_young. v6.10 does not
    consult notifiers. The walk's subscriber contract has no flush operation at all, so
    "no TLB flush" holds by construction; the KVM model checks flushes itself."""
    k, p = setup(preset)
    k.mkdir(CGROOT + "/b")
    k.write(CGROOT + "/b/cgroup.procs", str(p.pid))
    o = p.mmap(4 * PAGE)
    p.access(o, 4 * PAGE, write=True)  # charged to /b
    k.write(CGROOT + "/a/cgroup.procs", str(p.pid))
    a = p.mmap(20 * PAGE)
    p.access(a, 20 * PAGE, write=True)
    z = p.mmap(5 * PAGE)
    p.access(z, 5 * PAGE)  # zero page
    t = p.mmap(2 << 20, thp=True)
    p.access(t, 2 << 20, write=True)
    assert pmd_of(p, t)[0] == PMD_LEAF
    sub = FakeSecondaryMmu([(o, 4), (a, 20), (z, 5), (t, 512)])
    p.mm.notifiers.append(sub)
    age(k, 2)
    assert not young(p, a, 20).any()
    assert not pmd_of(p, t)[1] & PTE_YOUNG
    assert young(p, o, 4).all()
    upstream = preset != "v6.10"
    assert sub.stat("SEC_CLEAR_CALLS") == (21 if upstream else 0)
    assert sub.stat("SEC_VISITED") == (532 if upstream else 0)
    assert sub.stat("SEC_TEST_CALLS") == 0
    age(k, 2)  # nothing young: still one call per candidate
    assert sub.stat("SEC_CLEAR_CALLS") == (42 if upstream else 0)
    assert young(p, o, 4).all()


# -- item 15 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc15_dirty_young_pte_dirties_folio(preset: str) -> None:
    """§9.15: "Dirty PTEs found young mark the folio dirty (except anon swap-backed not in
    swap cache)." Folios are made clean while their PTEs stay dirty (white-box: as after
    writeback of a file folio, or for an anon folio in the swap cache); the walk then
    dirties the file, shmem and swap-cache folios but not plain anon ones, and only
    when the PTE is young (also on v6.14's first, non-promoting detection)."""
    k, p = setup(preset)
    f = p.mmap(4 * PAGE, file=k.open_file("f", 4 * PAGE))
    shm = p.mmap(4 * PAGE, file=k.open_file("shm", 4 * PAGE, shmem=True))
    anon = p.mmap(4 * PAGE)
    swc = p.mmap(4 * PAGE)
    for addr in (f, shm, anon, swc):
        p.access(addr, 4 * PAGE, write=True)
        assert all(pte_of(p, addr + i * PAGE)[1] & PTE_DIRTY for i in range(4))
    pf = {n: pfns(p, x, 4) for n, x in (("f", f), ("shm", shm), ("anon", anon), ("swc", swc))}
    assert (k.mem.flags[pf["anon"]] & PG_anon).all()
    assert (k.mem.flags[pf["swc"]] & PG_swapbacked).all()
    k.mem.flags[pf["swc"]] |= PG_swapcache
    for x in pf.values():
        k.mem.flags[x] &= ~np.uint16(PG_dirty)
    # the last page of each mapping is old: its dirty PTE is not harvested
    for addr in (f, shm, anon, swc):
        vma = p.mm.find_vma(addr)
        p.mm.pt.flat_flags()[vma.pte_index(np.array([(addr >> 12) + 3]))] &= ~np.uint8(PTE_YOUNG)
    age(k, 2)
    for name, expect in (("f", True), ("shm", True), ("swc", True), ("anon", False)):
        dirty = (k.mem.flags[pf[name]] & PG_dirty) != 0
        assert dirty[:3].tolist() == [expect] * 3, name
        assert not dirty[3], name


# -- item 16 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.12", "v6.14"])
def test_fc16_mm_stats_count_what_the_walk_did(preset: str) -> None:
    """§9.16: "mm_stats (lru_gen_full, `TYFA`) equal: leaf slots examined, young leaves, PTE
    tables scanned, tables added." Layout: A = 64 written pages (one table), Z = 16
    zero-page PTEs (one table), a 4 MiB THP VMA with its first 2 MiB written (a leaf and
    an empty PMD), and a 4-page VMA never touched (an empty PMD). Pass 1: T = 64+16+1+1+1,
    Y = 64+1, F = 2, A = 1 (Z has no young PTE). Pass 2, after reading 8 pages of A: A is
    dense again (8*8 >= 64). v6.10 prints six stats `TOYDFA` (O = old leaves, D = all
    non-leaf PMDs) and, with force_scan, still skips Z, whose non-leaf bit pass 1 cleared;
    v6.12+ scans it. With NR_HIST_GENS == 1 the values accumulate (spec §3.3)."""
    k, p = setup(preset)
    a = p.mmap(64 * PAGE)
    z = p.mmap(16 * PAGE)
    t = p.mmap(4 << 20, thp=True)
    p.mmap(4 * PAGE)
    p.access(a, 64 * PAGE, write=True)
    p.access(z, 16 * PAGE)
    p.access(t, 2 << 20, write=True)
    age(k, 2)
    v610 = preset == "v6.10"
    exp = {"T": 83, "Y": 65, "F": 2, "A": 1}
    if v610:
        exp |= {"O": 0, "D": 2}
    assert mm_stats(k, 2) == exp
    top = parse_lru_gen(k.read(LRU_GEN_FULL), full=True)[2].nodes[0].gens[-1]
    assert "".join(letter for _, letter in top.stats) == ("TOYDFA" if v610 else "TYFA")
    p.access(a, 8 * PAGE)
    age(k, 2)
    if v610:
        exp = {"T": 83 + 67, "O": 56 + 1, "Y": 65 + 8, "D": 4, "F": 3, "A": 2}
    else:
        exp = {"T": 83 * 2, "Y": 65 + 8, "F": 4, "A": 2}
    assert mm_stats(k, 2) == exp


def test_fc16_mm_stats_per_generation_with_lru_gen_stats() -> None:
    """§9.16 with CONFIG_LRU_GEN_STATS (NR_HIST_GENS = 4): each walk's stats are kept per
    seq and printed in lower case (`tyfa`) on the line of the seq the walk closed; the
    max_seq line shows `xxxx`, and the slot of the next seq is zeroed (spec §3.3, §5.3)."""
    k, p = setup("v6.14", lru_gen_stats=True)
    a = p.mmap(64 * PAGE)
    p.access(a, 64 * PAGE, write=True)
    age(k, 2)  # closes seq 3
    p.access(a, 8 * PAGE)
    age(k, 2)  # closes seq 4
    assert mm_stats(k, 2, seq=3) == {"t": 64, "y": 64, "f": 1, "a": 1}
    assert mm_stats(k, 2, seq=4) == {"t": 64, "y": 8, "f": 1, "a": 1}
    assert mm_stats(k, 2, seq=5) == {"x": 0}
    assert mm_stats(k, 2, seq=2) == {"t": 0, "y": 0, "f": 0, "a": 0}
