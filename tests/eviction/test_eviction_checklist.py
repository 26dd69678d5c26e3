"""Checklist tests for the eviction loop: spec §9 items 17-19, 22-25, 33 and 34.

Each test drives the kernel as a user would (tasks, mappings, read(2), debugfs
`+`/`-`, cgroup files) and checks what the spec says against `lru_gen` text,
per-pfn state and /proc/vmstat. Expected values are derived in the test from
the spec's rules; none is copied from the model's output. Presets are
parametrized where the semantics differ (spec §8.4): v6.10 promotes on the first
young sighting and couples min_seq, v6.14+ has two-step promotion and
independent min_seq, v6.16 adds the `max` swappiness token.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest
from evict_checks import (
    CGROOT,
    PAGE,
    age,
    audit,
    child,
    cold_anon,
    evict,
    gen_field,
    list_gen,
    min_max_seq,
    new_kernel,
    pages_by_seq,
    ptes,
    resident_mask,
    stat,
    swapped_mask,
)
from kernel_checks import LRU_GEN, snapshot

from mglru.lru_gen.aging import try_to_inc_min_seq
from mglru.lru_gen.eviction import ScanControl, evict_folios, should_run_aging
from mglru.mm.page import (
    PTE_DIRTY,
    PG_active,
    PG_dirty,
    PG_reclaim,
    PG_referenced,
    PG_swapbacked,
    PG_writeback,
)

BOTH = ("v6.10", "v6.14")


def lru_pfns(k, memcg, type_: int) -> np.ndarray:
    """Head pfns of one memcg's folios of a type that are on MGLRU lists (per-pfn scan)."""
    mem = k.mem
    sel = (mem.memcg == memcg.id) & (mem.gen != 0)
    sel &= ((mem.flags & PG_swapbacked) == 0) == bool(type_)
    sel &= (mem.flags & (1 << 11)) == 0  # not a THP tail
    return np.nonzero(sel)[0]


# -- item 17 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", BOTH)
def test_fc17_no_eviction_from_a_type_with_two_gens(preset: str) -> None:
    """Spec §9 item 17: "Eviction never takes folios from a type with only 2 gens, and returns 0
    (forcing aging) once `evictable_min_seq + 2 > max_seq`."

    Cold anon pages sit in the oldest generation (seq 3 of max_seq 6); file pages
    faulted afterwards sit in max_seq - 1 (v6.14: lru_gen_folio_seq()) or max_seq
    (before: lru_gen_add_folio() puts every faulted, so active, folio there). `-` with
    swappiness 0 retires file's empty generations, leaving file with 2 generations
    and anon with 4. Then `-` with
    swappiness 1 (file first, spec §4.3) cannot take file and takes anon instead.
    Once anon is gone both types have 2 generations: a direct `evict_folios` returns 0
    and changes nothing, and `memory.reclaim` has to age before it frees anything.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = cold_anon(k, a, p, 300)
    f = k.open_file("f", 100 * PAGE)
    fa = p.mmap(100 * PAGE, file=f)
    p.access(fa, 100 * PAGE)
    file_seq = 5 if k.cfg.workingset_folio_seq else 6
    assert min_max_seq(k, a.id) == ([3, 3], 6)
    expect = {3: (300, 0), 4: (0, 0), 5: (0, 0), 6: (0, 0)}
    expect[file_seq] = (0, 100)
    assert pages_by_seq(k, a.id) == expect

    evict(k, a.id, 3, 0)
    assert min_max_seq(k, a.id) == ([3, 5], 6), "file's empty generations are retired"
    before = stat(k, "pswpout")
    evict(k, a.id, 3, 1)
    assert resident_mask(p, fa, 100).all(), "file had 2 generations: nothing may be taken"
    assert swapped_mask(p, addr, 300).all() and stat(k, "pswpout") - before == 300
    assert min_max_seq(k, a.id) == ([5, 5], 6)
    assert pages_by_seq(k, a.id) == {s: v for s, v in expect.items() if s >= 5}

    snap = snapshot(k)
    assert evict_folios(k, k.lruvec(a), ScanControl(), 60, 1 << 20) == 0
    assert snapshot(k) == snap, "evict_folios changed state with 2 generations per type"

    dropped = stat(k, "pgsteal_file")
    k.write(f"{CGROOT}/a/memory.reclaim", str(50 * PAGE))
    assert min_max_seq(k, a.id)[1] > 6, "reclaim had to age"
    assert stat(k, "pgsteal_file") - dropped >= 50
    audit(k)


# -- item 18 ---------------------------------------------------------------------------------
def _expected_aging(mins: list[int], max_seq: int, pages: dict[int, tuple[int, int]],
                    swappiness: int) -> tuple[bool, int]:
    """should_run_aging from spec §4.1, on numbers read from lru_gen_full."""
    types = [t for t in (0, 1) if (swappiness > 0 if t == 0 else swappiness <= 200)]
    m = min(mins[t] for t in types)
    if m + 2 > max_seq:
        return True, 0
    nr = sum(pages.get(s, (0, 0))[t] for t in types for s in range(mins[t], max_seq + 1))
    return m + 2 >= max_seq, nr


@pytest.mark.parametrize("preset", ("v6.10", "v6.14", "v6.16"))
def test_fc18_should_run_aging_formula(preset: str) -> None:
    """Spec §9 item 18 (first half): "`should_run_aging` is true iff
    `evictable_min_seq + 2 >= max_seq`".

    States with 2, 3 and 4 generations per type are reached with `+` and `-`; at each
    the model's should_run_aging must equal the spec's formula computed from what
    lru_gen_full prints (min_seq from the `x` marks, page counts per generation), for
    every swappiness (201 = anon only exists from v6.16).
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = p.mmap(200 * PAGE)
    f = k.open_file("f", 100 * PAGE)
    swps = (0, 1, 60, 200) + ((201,) if k.cfg.swappiness_max_token else ())
    steps = [lambda: p.access(addr, 200 * PAGE, write=True),
             lambda: p.read(f, 0, 50 * PAGE),
             lambda: evict(k, a.id, 0, 60),
             lambda: age(k, a.id, 60),
             lambda: age(k, a.id, 60),
             lambda: p.read(f, 50 * PAGE, 50 * PAGE),
             lambda: age(k, a.id, 0),
             lambda: evict(k, a.id, min(min_max_seq(k, a.id)[0]), 0, 30),
             lambda: evict(k, a.id, min(min_max_seq(k, a.id)[0]), 200)]
    seen = set()
    for step in steps:
        step()
        mins, max_seq = min_max_seq(k, a.id)
        pages = pages_by_seq(k, a.id)
        seen.add(tuple(max_seq - m + 1 for m in mins))
        for swp in swps:
            want = _expected_aging(mins, max_seq, pages, swp)
            assert should_run_aging(k.lruvec(a), swp) == want, (mins, max_seq, pages, swp)
    assert {g for gens in seen for g in gens} == {2, 3, 4}, "the walk must cover 2, 3 and 4 gens"


@pytest.mark.parametrize("preset", BOTH)
@pytest.mark.parametrize("npages, gens, agings, agings_balanced",
                         [(8192, 3, 0, 0), (4095, 3, 1, 0), (8192, 2, 2, 1)])
def test_fc18_reclaim_ages_only_below_default_priority(preset: str, npages: int, gens: int,
                                                        agings: int,
                                                        agings_balanced: int) -> None:
    """Reclaim ages only when priority < 12 (mm/vmscan.c: get_nr_to_scan()).

    File pages read(2) into the oldest generation (never mapped, so no walk touches
    them) with file at `gens` generations; memory.reclaim of 32 pages with
    swappiness=0 (file only). At priority 12 the scan target is size >> 12 and there
    is no aging; below 12, a lruvec with 2 generations ages (out of cold folios), and
    one with 3 ages where should_run_aging() asks for it at MIN_NR_GENS + 1: always
    (`agings`, the v6.14 rework), or, as 6.1 and 6.12 do, only when max_seq holds over
    1/2 of the pages or the oldest under 1/4 (`agings_balanced`: here every page is in
    the oldest generation, so never). So: 8192 pages with 3 generations are reclaimed
    at priority 12 (8192 >> 12 = 2 > 0) with no aging; 4095 pages give 0 at priority
    12, so priority 11 ages once (3 -> 4 generations) where 3 always age, and evicts
    at once otherwise; with 2 generations, priority 11 ages (and 10 again where 3
    always age) before eviction.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    evict(k, a.id, 0, 0)  # retire file's empty generations: min_seq[file] = max_seq - 1
    if gens == 3:
        age(k, a.id, 0)
    f = k.open_file("f", npages * PAGE)
    p.read(f, 0, npages * PAGE)  # read(2) pages go to the oldest generation
    mins, max_seq = min_max_seq(k, a.id)
    assert max_seq - mins[1] + 1 == gens and pages_by_seq(k, a.id)[mins[1]] == (0, npages)
    # the expected number of agings follows from the rules above alone
    expect, g = 0, gens
    for priority in range(12, -1, -1):
        nr = 0 if g == 2 else npages
        if priority < 12 and (g == 2 or (g == 3 and k.cfg.aging_on_three_gens)):
            expect, g = expect + 1, g + 1
            continue
        if nr >> priority:
            break
    assert expect == (agings if k.cfg.aging_on_three_gens else agings_balanced)
    dropped = stat(k, "pgsteal_file")
    k.write(f"{CGROOT}/a/memory.reclaim", f"{32 * PAGE} swappiness=0")
    assert min_max_seq(k, a.id)[1] - max_seq == expect
    assert stat(k, "pgsteal_file") - dropped >= 32


# -- item 19 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", BOTH)
def test_fc19_promoted_folios_are_sorted_not_evicted(preset: str) -> None:
    """Spec §9 item 19: "Promoted folios found on the oldest list are moved to their gen's
    list, not evicted."

    400 anon pages are written; after one aging, the hot half is accessed again and a
    second aging promotes it (v6.10 already promoted everything at the first sighting,
    v6.14+ needs the second one, spec §2.6). Aging changes only gen fields, so all 400
    folios still sit on the list they entered, which is the oldest one on v6.14 (the
    fault put them in max_seq - 1 = 2); before v6.14 the fault put them in max_seq = 3,
    so a third aging (nothing young) makes list 3 the oldest (lazy sorting, spec §2.2).
    After `-` on the oldest generation, every folio whose gen field was not the oldest
    is resident and on the list of its gen, and only folios whose gen field was the
    oldest were evicted.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = p.mmap(400 * PAGE)
    p.access(addr, 400 * PAGE, write=True)
    age(k, a.id, 60)
    p.access(addr, 200 * PAGE)
    age(k, a.id, 60)
    if not k.cfg.workingset_folio_seq:
        age(k, a.id, 60)
    mins, max_seq = min_max_seq(k, a.id)
    pfns, _ = ptes(p, addr, 400)
    oldest = mins[0] % 4
    assert (list_gen(k, pfns) == oldest).all(), "aging must not sort lists"
    promoted = gen_field(k, pfns) != oldest
    assert promoted[:200].all(), "the hot half was promoted"
    evict(k, a.id, mins[0], 60)
    res = resident_mask(p, addr, 400)
    assert res[promoted].all(), "a promoted folio was evicted"
    now = ptes(p, addr, 400)[0]
    assert (list_gen(k, now[promoted]) == gen_field(k, now[promoted])).all(), \
        "promoted folios must be moved to the list of their generation"
    audit(k)


# -- item 22 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ("v6.10", "v6.14", "v6.16"))
def test_fc22_batch_limits(preset: str) -> None:
    """Spec §9 item 22: "At most 64 folios isolated per batch and at most 4096 folios
    examined per call."

    Examined: 5000 anon folios promoted by aging but still on the oldest list (one more
    aging before v6.14, where the fault put them one generation younger, as in item 19); one
    evict_folios call sorts exactly MAX_LRU_BATCH = 4096 of them (spec §4.5; the budget
    is 4096 in every modelled version, even when the caller asks for fewer: only
    linux-next caps it at nr_to_scan) and isolates none. Isolated: 1000 cold anon
    pages; `-` with nr_to_reclaim 1 stops after one call, which swapped exactly 64.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = p.mmap(5000 * PAGE)
    p.access(addr, 5000 * PAGE, write=True)
    age(k, a.id, 60)
    p.access(addr, 5000 * PAGE)
    age(k, a.id, 60)
    if not k.cfg.workingset_folio_seq:
        age(k, a.id, 60)
    mins, _ = min_max_seq(k, a.id)
    pfns, _ = ptes(p, addr, 5000)
    oldest = mins[0] % 4
    assert (list_gen(k, pfns) == oldest).all() and (gen_field(k, pfns) != oldest).all()
    before = stat(k, "pswpout")
    evict_folios(k, k.lruvec(a), ScanControl(), 200, 1)
    assert int((list_gen(k, pfns) == oldest).sum()) == 5000 - 4096
    assert stat(k, "pswpout") == before

    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    cold = cold_anon(k, a, p, 1000)
    evict(k, a.id, 3, 200, 1)
    assert stat(k, "pswpout") == 64 and int(swapped_mask(p, cold, 1000).sum()) == 64
    evict(k, a.id, 3, 200, 100)
    assert stat(k, "pswpout") == 64 + 128, "two more batches of 64 for a budget of 100"


# -- item 33 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", BOTH)
def test_fc33_minus_command(preset: str) -> None:
    """Spec §9 item 33: "`-` with seq + 2 > max_seq → EINVAL; otherwise evicts until min
    evictable seq > seq, the reclaim budget is met, or no progress."

    * EINVAL for seq = max_seq - 1 and max_seq, with nothing changed;
    * budget: nr_to_reclaim 100 on 1000 cold pages frees whole batches of 64: 128;
    * seq: with no budget, `- seq` empties generations <= seq and stops: the younger
      generations keep every page, min_seq ends above seq;
    * no progress: anon only, swap device full: the command still returns its length.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    cold = cold_anon(k, a, p, 1000)
    for seq in (5, 6, 7):
        snap = snapshot(k)
        with pytest.raises(OSError) as e:
            evict(k, a.id, seq)
        assert e.value.errno == errno.EINVAL and snapshot(k) == snap
    evict(k, a.id, 3, 60, 100)
    assert stat(k, "pswpout") == 128
    hot = p.mmap(300 * PAGE)
    p.access(hot, 300 * PAGE, write=True)  # max_seq - 1
    age(k, a.id, 60)  # young: v6.10 promotes to 6, v6.14 marks referenced (stays 5)
    mins, max_seq = min_max_seq(k, a.id)
    seq = max_seq - 2
    younger = {s: v for s, v in pages_by_seq(k, a.id).items() if s > seq}
    cmd = f"- {a.id} 0 {seq}\n"
    assert k.write(LRU_GEN, cmd) == len(cmd)
    assert swapped_mask(p, cold, 1000).all(), "every cold page is in a generation <= seq"
    assert {s: v for s, v in pages_by_seq(k, a.id).items() if s > seq} == younger
    assert min(min_max_seq(k, a.id)[0]) > seq

    k = new_kernel(preset, swap_pages=100)
    a = child(k)
    p = k.spawn(memcg="/a")
    cold_anon(k, a, p, 500)
    cmd = f"- {a.id} 0 3 200\n"
    assert k.write(LRU_GEN, cmd) == len(cmd)
    assert stat(k, "pswpout") == 100 and k.swap.nr_free == 0
    audit(k)


# -- item 34 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ("v6.10", "v6.14", "v6.16"))
def test_fc34_swappiness_token(preset: str) -> None:
    """Spec §9 item 34: "swappiness token: omitted → default; `max` → anon-only (v6.16+);
    > 201 → EINVAL."

    Cold anon and cold file pages share the oldest generation. Omitted swappiness
    takes get_swappiness (spec §4.1): the memcg's 60 with a swap device (PID with no
    history picks file first, then anon once file is gone: both evicted), 0 without
    one or with fewer than 64 free slots (file only). `max` evicts anon only on
    v6.16 and is EINVAL before; 202 is EINVAL everywhere.
    """
    def setup(swap_pages: int):
        k = new_kernel(preset, swap_pages=swap_pages)
        a = child(k)
        p = k.spawn(memcg="/a")
        f = k.open_file("f", 100 * PAGE)
        # read(2) before the agings: into seq 0 (v6.14: max_seq - 3) or seq 1 (before:
        # min_seq + 1 with 4 generations); each aging of a full type moves them up
        # (inc_min_seq), so they reach the oldest generation, seq 3, with the anon pages
        p.read(f, 0, 100 * PAGE)
        anon = cold_anon(k, a, p, 100)
        assert pages_by_seq(k, a.id)[3] == (100, 100)
        return k, a, p, anon, f

    k, a, p, anon, f = setup(1 << 20)
    evict(k, a.id, 3)
    assert swapped_mask(p, anon, 100).all() and (f.pages < 0).all()

    for swap_pages in (0, 63):
        k, a, p, anon, f = setup(swap_pages)
        evict(k, a.id, 3)
        assert resident_mask(p, anon, 100).all() and (f.pages < 0).all()
    # what counts is free swap (mem_cgroup_get_nr_swap_pages), not the device size:
    # another memcg fills 100 of 150 slots, leaving 50 < 64
    k, a, p, anon, f = setup(150)
    b = child(k, "b")
    q = k.spawn(memcg="/b")
    cold_anon(k, b, q, 100)
    evict(k, b.id, 3, 200)
    assert k.swap.nr_free == 50
    evict(k, a.id, 3)
    assert resident_mask(p, anon, 100).all() and (f.pages < 0).all()

    k, a, p, anon, f = setup(1 << 20)
    if k.cfg.swappiness_max_token:
        for token in ("max", "201"):
            k, a, p, anon, f = setup(1 << 20)
            evict(k, a.id, 3, token)
            assert swapped_mask(p, anon, 100).all() and (f.pages >= 0).all()
    else:
        snap = snapshot(k)
        with pytest.raises(OSError) as e:
            evict(k, a.id, 3, "max")
        assert e.value.errno == errno.EINVAL and snapshot(k) == snap
    k, a, p, anon, f = setup(1 << 20)
    snap = snapshot(k)
    with pytest.raises(OSError) as e:
        evict(k, a.id, 3, 202)
    assert e.value.errno == errno.EINVAL and snapshot(k) == snap


# -- item 23 ---------------------------------------------------------------------------------
def _file_in_oldest(k, a, p, name: str, npages: int, write: bool):
    """A shared file mapping of `npages`, faulted (written or read), then aged three times:
    the folios end cold in the oldest generation, seq 3 (see evict_checks.cold_anon)."""
    f = k.open_file(name, npages * PAGE)
    addr = p.mmap(npages * PAGE, file=f)
    p.access(addr, npages * PAGE, write=write)
    return f, addr


@pytest.mark.parametrize("preset", BOTH)
def test_fc23_dirty_and_writeback_folios_are_bumped(preset: str) -> None:
    """Spec §9 item 23: "Dirty file / writeback folios are bumped to `min_seq+1` with
    `PG_reclaim`."

    A written (dirty) and a read (clean) file mapping reach the oldest generation.
    `-` (file only) drops the clean pages and bumps every dirty folio to min_seq + 1
    with PG_reclaim (spec §4.5 step 5); the flusher takes them (PG_dirty ->
    PG_writeback). Written again meanwhile, a folio is dirty again (writeback
    cleaned its PTEs, so the write is seen). When writeback ends, PG_reclaim folios go
    to the tail of the oldest generation; the next `-` drops the clean ones and bumps
    the re-dirtied one again.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    dirty, daddr = _file_in_oldest(k, a, p, "dirty", 64, True)
    clean, caddr = _file_in_oldest(k, a, p, "clean", 64, False)
    for _ in range(3):
        age(k, a.id, 60)
    assert min_max_seq(k, a.id) == ([3, 3], 6) and pages_by_seq(k, a.id)[3] == (0, 128)
    pfns = dirty.pages.copy()
    assert (k.mem.flags[pfns] & PG_dirty).all()
    evict(k, a.id, 3, 0)
    assert (clean.pages < 0).all() and (dirty.pages == pfns).all()
    flags = k.mem.flags[pfns].astype(int)
    assert (gen_field(k, pfns) == 4 % 4).all(), "bumped to min_seq + 1 = 4"
    assert (flags & PG_reclaim).all() and (flags & PG_writeback).all()
    assert not (flags & PG_dirty).any()
    assert min_max_seq(k, a.id)[0][1] == 4

    p.access(daddr, PAGE, write=True)  # one page written again during writeback
    assert k.mem.flags[pfns[0]] & PG_dirty, "a write after writeback started must re-dirty"
    assert not (ptes(p, daddr + PAGE, 63)[1] & PTE_DIRTY).any(), "writeback cleans the PTEs"
    evict(k, a.id, 4, 0)
    assert (dirty.pages[1:] < 0).all(), "clean after writeback: dropped"
    assert dirty.pages[0] == pfns[0]
    assert k.mem.flags[pfns[0]] & (PG_dirty | PG_writeback)
    audit(k)


# -- item 24 ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", BOTH)
def test_fc24_rejected_folios_never_return_to_the_oldest_gen(preset: str) -> None:
    """Spec §9 item 24: "Rejected-but-kept folios are never re-added to the oldest gen (they
    become active)."

    Two ways to be rejected after isolation (spec §4.2 steps 3-4): mapped file folios
    whose PTE is young again (kept or activated by folio_check_references), and an anon
    folio that cannot get a swap slot (activate_locked). A file folio put back would
    otherwise go to max_seq - 3, clamped to the oldest generation (spec §2.5 rule 4),
    so the rule must turn it active: every survivor ends in max_seq - 1 on v6.14, where
    lru_gen_folio_seq() puts a non-workingset active folio, and in max_seq before
    (include/linux/mm_inline.h lru_gen_add_folio(), 6.1-6.13: every active folio);
    none in the oldest generation.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    # 64 folios: one isolation batch, so look-around never harvests a folio still
    # on the list (v6.14+ would only mark it referenced, and evict it next batch)
    f, addr = _file_in_oldest(k, a, p, "f", 64, False)
    for _ in range(3):
        age(k, a.id, 60)
    p.access(addr, 64 * PAGE)  # young again, after the last aging
    keys = k.mem.lru[f.pages].astype(np.int64) & ((1 << 29) - 1)
    evict(k, a.id, 3, 0)
    mins, max_seq = min_max_seq(k, a.id)
    put_back = max_seq - 1 if k.cfg.workingset_folio_seq else max_seq
    assert (f.pages >= 0).all(), "referenced folios must not be evicted"
    assert (gen_field(k, f.pages) == put_back % 4).all()
    assert pages_by_seq(k, a.id).get(mins[1], (0, 0))[1] == 0 or mins[1] == max_seq - 1
    assert not (k.mem.flags[f.pages] & PG_active).any(), "PG_active is cleared when added"
    # scanned from the tail and put back in the same order, each at the head: the
    # batch keeps its relative order (spec §4.5 pops the tail; §4.2 step 5 re-adds)
    after = k.mem.lru[f.pages].astype(np.int64) & ((1 << 29) - 1)
    assert (np.argsort(keys) == np.argsort(after)).all()

    k = new_kernel(preset, swap_pages=10)
    a = child(k)
    p = k.spawn(memcg="/a")
    anon = cold_anon(k, a, p, 100)
    evict(k, a.id, 3, 200)
    mins, max_seq = min_max_seq(k, a.id)
    res = resident_mask(p, anon, 100)
    assert int((~res).sum()) == 10
    kept = ptes(p, anon, 100)[0][res]
    put_back = max_seq - 1 if k.cfg.workingset_folio_seq else max_seq
    assert (gen_field(k, kept) == put_back % 4).all()
    assert mins[0] == max_seq - 1
    audit(k)


# -- item 25 ---------------------------------------------------------------------------------
def _occupied(k, memcg, type_: int) -> set[int]:
    """Generation lists holding a folio of this memcg and type (per-pfn list bits)."""
    return set(list_gen(k, lru_pfns(k, memcg, type_)).tolist())


def _expected_min_seq(mins: list[int], max_seq: int, occ: list[set[int]], swp: int,
                      independent: bool) -> list[int]:
    """try_to_inc_min_seq by spec §4.6 (upstream) and §8.4 (v6.10: anon <= file)."""
    types = [t for t in (0, 1) if (swp > 0 if t == 0 else swp <= 200)]
    m = list(mins)
    for t in types:
        while m[t] + 2 <= max_seq and m[t] % 4 not in occ[t]:
            m[t] += 1
    if independent and 0 < swp <= 200:
        s = max_seq - 2
        if m[0] > s and m[1] < s:
            m[0] = s
        elif m[1] > s and m[0] < s:
            m[1] = s
    elif not independent and swp:
        m[0] = min(m[0], m[1])  # v6.10: anon may not pass file
        m[1] = max(m[0], mins[1])
    return [max(m[t], mins[t]) if t in types else mins[t] for t in (0, 1)]


@pytest.mark.parametrize("preset", BOTH)
def test_fc25_min_seq_advances_over_empty_gens_only(preset: str) -> None:
    """Spec §9 item 25: "`min_seq` advances over empty gens only, never beyond `max_seq-2`,
    with the cross-type cap at `max_seq-2` when the other type lags."

    A script of faults, reads, agings and partial evictions produces lruvecs with
    empty and occupied generation lists of both types. At each step
    try_to_inc_min_seq (what eviction calls, spec §4.2) runs with a swappiness from
    0/1/60/200 and must give what spec §4.6 computes from the per-pfn list occupancy:
    each evictable type skips only empty lists, only lists of seq <= max_seq - 2 can
    be skipped (so at least 2 generations remain), and with both types evictable
    upstream caps the leader at max_seq - 2 while the other lags below it; v6.10
    instead keeps anon <= file (§8.4).
    """
    k = new_kernel(preset)
    a = child(k)
    lv = k.lruvec(a)
    independent = k.cfg.independent_min_seq
    f = k.open_file("f", 2000 * PAGE)
    reader = k.spawn(memcg="/a")
    tasks: list = []
    offset = [0]

    def write_task(npages: int) -> None:
        q = k.spawn(memcg="/a")
        addr = q.mmap(npages * PAGE)
        q.access(addr, npages * PAGE, write=True)
        tasks.append(q)

    def read(npages: int) -> None:
        reader.read(f, offset[0] * PAGE, npages * PAGE)
        offset[0] += npages

    # exits empty generation lists without an eviction pass (which would advance
    # min_seq itself); reads fill the oldest file generation; agings open new ones
    steps = [lambda: read(50), lambda: write_task(100), lambda: age(k, a.id, 60),
             lambda: write_task(80), lambda: age(k, a.id, 0), lambda: k.exit_task(tasks[0]),
             lambda: read(40), lambda: age(k, a.id, 200), lambda: write_task(60),
             lambda: k.exit_task(tasks[1]), lambda: age(k, a.id, 60),
             lambda: evict(k, a.id, lv.min_seq[1], 0, 64), lambda: age(k, a.id, 60),
             lambda: k.exit_task(tasks[2]), lambda: write_task(50), lambda: age(k, a.id, 60),
             lambda: evict(k, a.id, min(lv.min_seq), 0), lambda: read(30),
             lambda: age(k, a.id, 60), lambda: k.exit_task(tasks[3])]
    swps = (60, 0, 1, 200)
    capped = moved = 0
    for i, step in enumerate(steps):
        step()
        for swp in swps[i % 4:] + swps[:i % 4]:
            mins, max_seq = list(lv.min_seq), lv.max_seq
            occ = [_occupied(k, a, 0), _occupied(k, a, 1)]
            want = _expected_min_seq(mins, max_seq, occ, swp, independent)
            got = try_to_inc_min_seq(k, lv, swp)
            assert list(lv.min_seq) == want, (i, swp, mins, max_seq, occ)
            assert got == (want != mins)
            assert all(max_seq - m + 1 >= 2 for m in lv.min_seq)
            moved += want != mins
            if independent and 0 < swp <= 200:
                s = max_seq - 2
                capped += (want[0] == s and want[1] < s) or (want[1] == s and want[0] < s)
    assert moved >= 2, "the script must exercise advancing"
    if independent:
        assert capped, "the script must exercise the cross-type cap"
    audit(k)


@pytest.mark.parametrize("preset", BOTH)
def test_fc24_kept_folios_can_be_evicted_once_cold(preset: str) -> None:
    """Spec §9 item 24, continued: a folio rejected once is not rejected forever.

    64 cold anon pages in the oldest generation are read again, so one `-` batch
    finds them referenced and keeps them all. v6.10 look-around marks the isolated
    neighbours PG_referenced and shrink_folio_list keeps them for it; its put-back
    then makes every rejected mapped folio active with LRU_REFS_FLAGS cleared (the
    pre-v6.14 evict_folios), so no PG_referenced survives. After aging them back into
    the oldest generation untouched, the next `-` must swap all 64 out.
    """
    k = new_kernel(preset)
    a = child(k)
    p = k.spawn(memcg="/a")
    addr = cold_anon(k, a, p, 64)
    p.access(addr, 64 * PAGE)
    evict(k, a.id, 3, 200)
    pfns = ptes(p, addr, 64)[0]
    assert resident_mask(p, addr, 64).all()
    if not k.cfg.two_step_promotion:
        assert not (k.mem.flags[pfns] & PG_referenced).any()
    for _ in range(3):
        age(k, a.id, 200)
    mins, _ = min_max_seq(k, a.id)
    assert (gen_field(k, pfns) == mins[0] % 4).all(), "back in the oldest generation"
    evict(k, a.id, mins[0], 200)
    assert swapped_mask(p, addr, 64).all()
    audit(k)
