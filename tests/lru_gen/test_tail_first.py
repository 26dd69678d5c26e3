"""tail_first (one compiled pass, then a sort of the order keys) against numpy masks and
a sort: the same folios in the same order."""

from __future__ import annotations

import numpy as np
import pytest

from mglru import SimKernel
from mglru.lru_gen import lists
from mglru.lru_gen._tail_kernel import list_members
from mglru.lru_gen.lists import LRU_LIST_SHIFT, ORDER_MASK
from mglru.mm.page import PAGE_SIZE, PG_swapbacked, PG_tail


def _reference(mem, lv, gen: int, type_: int) -> np.ndarray:
    node = mem.nodes[lv.nid]
    lo, hi = node.start_pfn, node.fresh
    lru = mem.lru[lo:hi]
    flags = mem.flags[lo:hi]
    sel = ((lru >> LRU_LIST_SHIFT) == gen + 1) & (mem.memcg[lo:hi] == lv.memcg.id)
    sel &= ((flags & PG_tail) == 0) & (((flags & PG_swapbacked) == 0) == bool(type_))
    pfns = np.nonzero(sel)[0].astype(np.int64)
    return pfns[np.argsort(lru[pfns] & ORDER_MASK, kind="stable")] + lo


@pytest.mark.parametrize("config", ["v6.1", "v6.14"])
def test_tail_first_is_the_list_order(config):
    k = SimKernel(config, seed=2, node_bytes=(64 << 20,))
    k.mkdir("/sys/fs/cgroup/a")
    k.mkdir("/sys/fs/cgroup/b")
    rng = np.random.default_rng(0)
    for cg in ("/a", "/b", "/a"):
        p = k.spawn(memcg=cg)
        a = p.mmap(2 << 20)
        for i in rng.permutation(512)[:400]:  # scattered first touches: mixed list order
            p.access(a + int(i) * PAGE_SIZE, PAGE_SIZE, write=bool(i % 3))
        f = k.open_file(f"f{cg[1:]}{len(k.procs)}", 64 * PAGE_SIZE)
        p.mmap(64 * PAGE_SIZE, file=f)
        p.access(p.mm.vmas[-1].start, 64 * PAGE_SIZE)
    lv = k.lruvec("/a")
    k.write("/sys/kernel/debug/lru_gen", f"+ {lv.memcg.id} 0 {lv.max_seq} 1 1")
    lists.renumber(k.mem)  # keys handed out again as one range
    seen = 0
    for path in ("/a", "/b"):
        lv = k.lruvec(path)
        for gen in range(4):
            for t in (0, 1):
                got = lists.tail_first(k.mem, lv, gen, t)
                want = _reference(k.mem, lv, gen, t)
                assert got.dtype == np.int64
                assert np.array_equal(got, want)
                seen += len(want)
    assert seen > 900  # every page of the three tasks, on some list


@pytest.mark.parametrize("order", ["sequential", "scattered"])
def test_both_sorts_give_the_list_order(order):
    """Keys in long sorted runs take numpy's stable sort, keys in no order its
    quicksort (chosen by the descents list_members counts): both give the order."""
    k = SimKernel("v6.14", seed=2, node_bytes=(64 << 20,))
    k.mkdir("/sys/fs/cgroup/a")
    if order == "scattered":  # reclaim frees pages that later faults take in another order
        k.write("/sys/fs/cgroup/a/memory.max", str(6 << 20))
    p = k.spawn(memcg="/a")
    a = p.mmap(16 << 20)
    idx = np.arange(2048) if order == "sequential" else \
        np.random.default_rng(1).integers(0, 4096, 6000)
    for i in idx:
        p.access(a + int(i) * PAGE_SIZE, PAGE_SIZE, write=True)
    lv = k.lruvec("/a")
    mem = k.mem
    node = mem.nodes[lv.nid]
    gens = {int(g) for g in (mem.lru[node.start_pfn:node.fresh] >> LRU_LIST_SHIFT) if g}
    checked = 0
    for gen in (g - 1 for g in gens):
        packed, descents = list_members(mem.lru, mem.memcg, mem.flags, node.start_pfn,
                                        node.fresh, gen, lv.memcg.id, False)
        if len(packed) < 200:
            continue
        # pfns come in pfn order; the keys' order is the faults' order
        stable = descents * 64 < len(packed)
        assert stable == (order == "sequential")
        assert np.array_equal(lists.tail_first(mem, lv, gen, 0), _reference(mem, lv, gen, 0))
        checked += 1
    assert checked
