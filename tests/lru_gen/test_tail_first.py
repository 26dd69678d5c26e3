"""The compiled tail-first order (small nodes) is the numpy one (large nodes)."""

from __future__ import annotations

import numpy as np
import pytest

from mglru import SimKernel
from mglru.lru_gen import lists
from mglru.mm.page import PAGE_SIZE


@pytest.mark.parametrize("config", ["v6.1", "v6.14"])
def test_compiled_and_numpy_orders_agree(config, monkeypatch):
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
    seen = 0
    for path in ("/a", "/b"):
        lv = k.lruvec(path)
        for gen in range(4):
            for t in (0, 1):
                monkeypatch.setattr(lists, "_COMPILED_RANGE", 1 << 30)
                compiled = lists.tail_first(k.mem, lv, gen, t)
                monkeypatch.setattr(lists, "_COMPILED_RANGE", 0)
                numpy = lists.tail_first(k.mem, lv, gen, t)
                assert compiled.dtype == numpy.dtype == np.int64
                assert np.array_equal(compiled, numpy)
                seen += len(numpy)
    assert seen > 900  # every page of the three tasks, on some list
