"""An exited task and its mm leave no reference cycle: they are freed at once.

A cycle (task -> mm -> task) would wait for the garbage collector's oldest
generation, with the mm's arrays, and a long-running loop of spawns and exits
would see its RSS creep between collections.
"""

from __future__ import annotations

import gc
import weakref

import pytest

from mglru import SimKernel
from mglru.mm.page import PAGE_SIZE


@pytest.mark.parametrize("thp", [False, True])
def test_exited_task_is_freed_without_the_collector(thp):
    k = SimKernel("v6.12", node_bytes=(64 << 20,))
    k.mkdir("/sys/fs/cgroup/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(8 << 20, thp=thp)
    p.access(a, 8 << 20, write=True)
    p.mmap(4 * PAGE_SIZE, shared=True)
    lv = k.lruvec("/a")
    k.write("/sys/kernel/debug/lru_gen", f"+ {lv.memcg.id} 0 {lv.max_seq} 60 1")
    k.exit_task(p)
    task, mm = weakref.ref(p), weakref.ref(p.mm)
    gc.disable()
    try:
        del p
        assert task() is None and mm() is None
    finally:
        gc.enable()


def test_removed_memcg_is_freed_without_the_collector():
    k = SimKernel("v6.12", node_bytes=(64 << 20,))
    k.mkdir("/sys/fs/cgroup/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(1 << 20)
    p.access(a, 1 << 20, write=True)
    lv = k.lruvec("/a")
    k.write("/sys/kernel/debug/lru_gen", f"+ {lv.memcg.id} 0 {lv.max_seq} 60 1")
    k.exit_task(p)
    memcg, lruvec = weakref.ref(lv.memcg), weakref.ref(lv)
    del lv, p
    gc.disable()
    try:
        k.rmdir("/sys/fs/cgroup/a")
        assert memcg() is None and lruvec() is None
    finally:
        gc.enable()
