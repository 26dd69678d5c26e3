"""Memcgs and tasks: migration, exit and rmdir as the aging sees them (spec §2.1, §3.3)."""

from __future__ import annotations

import pytest
from kernel_checks import (
    CGROOT,
    LRU_GEN,
    age,
    check_invariants,
    folio_seq,
    mm_stats,
    parse_lru_gen,
    pte_of,
)

from mglru import SimKernel
from mglru.mm.page import PTE_YOUNG, PG_active

PAGE = 4096


def kernel(preset: str = "v6.14") -> SimKernel:
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/b")
    return k


def totals(k: SimKernel) -> dict[int, int]:
    out = {}
    for m in parse_lru_gen(k.read(LRU_GEN)).values():
        n = sum(g.anon + g.file for nb in m.nodes.values() for g in nb.gens)
        if n:
            out[m.id] = n
    return out


def test_migration_moves_the_mm_not_the_charges() -> None:
    """Writing a pid to cgroup.procs moves the task and its mm to the new memcg's mm list
    (lru_gen_migrate_mm): the new memcg's aging walks it, the old one's no longer does.
    Pages already charged stay with the old memcg (cgroup v2 does not move charges);
    new faults are charged to the new one."""
    k = kernel()
    p = k.spawn(memcg="/a")
    old = p.mmap(8 * PAGE)
    p.access(old, 8 * PAGE, write=True)
    k.write(CGROOT + "/b/cgroup.procs", str(p.pid))
    new = p.mmap(4 * PAGE)
    p.access(new, 4 * PAGE, write=True)
    assert totals(k) == {2: 8, 3: 4}
    assert k.read(CGROOT + "/a/memory.current") == f"{8 * PAGE}\n"
    assert k.read(CGROOT + "/b/memory.current") == f"{4 * PAGE}\n"
    age(k, 2)
    assert mm_stats(k, 2)["T"] == 0  # /a has no mm left to walk
    assert pte_of(p, old)[1] & PTE_YOUNG
    age(k, 3)
    assert mm_stats(k, 3)["T"] == 12  # both VMAs' slots, only /b's pages harvested
    assert mm_stats(k, 3)["Y"] == 4
    assert pte_of(p, old)[1] & PTE_YOUNG and not pte_of(p, new)[1] & PTE_YOUNG
    check_invariants(k)


def test_exit_tears_down_the_mm_and_stops_walks() -> None:
    """An exited task's mm leaves the mm list (lru_gen_del_mm) and is torn down
    (exit_mmap): aging no longer walks it, its anonymous folios are freed and uncharged
    (removal is the one thing besides eviction that reduces the counts, §9 item 6),
    its file folios stay in the page cache, charged and on the generations."""
    k = kernel()
    p = k.spawn(memcg="/a")
    a = p.mmap(8 * PAGE)
    p.access(a, 8 * PAGE, write=True)
    f = k.open_file("f", 4 * PAGE)
    fm = p.mmap(4 * PAGE, file=f)
    p.access(fm, 4 * PAGE)
    age(k, 2)
    assert totals(k) == {2: 12}
    k.exit_task(p)
    assert k.read(CGROOT + "/a/cgroup.procs") == ""
    assert totals(k) == {2: 4}
    assert k.read(CGROOT + "/a/memory.current") == f"{4 * PAGE}\n"
    before = mm_stats(k, 2)["T"]
    age(k, 2)
    assert mm_stats(k, 2)["T"] == before
    check_invariants(k)


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_rmdir_reparents_pages_by_placement_rules(preset: str) -> None:
    """rmdir of a memcg with charged pages moves them to the parent (the model's decision,
    docs/architecture.md): they leave the child's generations as lru_gen_del_folio does
    (PG_active for the two youngest gens) and enter the parent's like any added folio:
    on v6.14 (lru_gen_folio_seq()) formerly active folios in max_seq - 1 (max_seq with
    PG_workingset), inactive file folios in max_seq - 3; before (lru_gen_add_folio(),
    include/linux/mm_inline.h 6.1-6.13) active ones in max_seq, inactive file ones in
    min_seq + 1 (four generations). Totals and memory.current move with them."""
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/a/b")
    p = k.spawn(memcg="/a/b")
    a = p.mmap(8 * PAGE)
    p.access(a, 8 * PAGE, write=True)  # active: max_seq - 1 (v6.14) or max_seq
    f = k.open_file("f", 4 * PAGE)
    p.read(f, 0, 4 * PAGE)  # inactive: seq 0 (v6.14) or 1; the child never ages
    age(k, 2)
    age(k, 2)  # the parent is now at max_seq 5
    k.write(CGROOT + "/cgroup.procs", str(p.pid))
    k.rmdir(CGROOT + "/a/b")
    parent = k.lruvec("/a")
    assert totals(k) == {2: 12}
    assert k.read(CGROOT + "/a/memory.current") == f"{12 * PAGE}\n"
    anon_pfn = pte_of(p, a)[0]
    upstream = preset == "v6.14"
    assert (parent.max_seq, parent.min_seq) == (5, [2, 2])
    assert folio_seq(parent, k.mem.gen[anon_pfn], 0) == (4 if upstream else 5)
    assert not k.mem.flags[anon_pfn] & PG_active
    for pfn in f.pages:
        assert folio_seq(parent, k.mem.gen[pfn], 1) == (2 if upstream else 3)
    check_invariants(k)


def test_charges_are_hierarchical_and_a_parent_limit_binds_its_children():
    """page_counter: a child's pages count in every ancestor's memory.current and memory.max."""
    from mglru import SimKernel

    k = SimKernel(config="v6.14", seed=0)
    cg = "/sys/fs/cgroup"
    k.mkdir(f"{cg}/p")
    k.mkdir(f"{cg}/p/c")
    k.write(f"{cg}/p/memory.max", str(4 << 20))
    child = k.spawn(memcg="/p/c")
    addr = child.mmap(8 << 20)
    child.access(addr, 8 << 20, write=True)
    parent_current = int(k.read(f"{cg}/p/memory.current"))
    child_current = int(k.read(f"{cg}/p/c/memory.current"))
    assert parent_current == child_current <= 4 << 20
    assert int(k.read("/proc/vmstat").split("pswpout ")[1].split()[0]) >= (4 << 20) // 4096
    assert int(k.read(f"{cg}/p/memory.events").split("max ")[1].split()[0]) > 0
