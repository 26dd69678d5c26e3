"""End-to-end: fault, age, read lru_gen."""

from __future__ import annotations

from mglru import SimKernel


def test_faulted_pages_move_to_the_walk_generation_when_young() -> None:
    """Pages faulted in (into max_seq before v6.14), aged once so that they sit in
    max_seq - 1, and accessed again sit in the walk's gen after aging."""
    k = SimKernel("v6.10", node_bytes=(1 << 30,), debug=True)
    k.mkdir("/sys/fs/cgroup/t")
    p = k.spawn(memcg="/t")
    a = p.mmap(8 << 20)
    p.access(a, 8 << 20, write=True)
    lv = k.lruvec("/t")
    assert lv.nr_pages_of_seq(3, 0) == 2048
    k.write("/sys/kernel/debug/lru_gen", "+ 2 0 3 1 1")
    assert lv.max_seq == 4 and lv.nr_pages_of_seq(3, 0) == 2048
    p.access(a, 8 << 20)
    k.write("/sys/kernel/debug/lru_gen", "+ 2 0 4 1 1")
    assert lv.max_seq == 5
    assert lv.nr_pages_of_seq(4, 0) == 2048 and lv.nr_pages_of_seq(3, 0) == 0
    assert "memcg     2 /t\n node     0\n" in k.read("/sys/kernel/debug/lru_gen")
