"""The Recorder's metrics on small runs whose answers are worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mglru import SimKernel
from mglru.experiment.metrics import Recorder, idle_ms, read_counters
from mglru.mm.page import PAGE_SIZE
from mglru.tools.lru_gen import read_memcg_stats
from mglru.workload import Engine, guest_stream, host_stream

LRU_GEN = "/sys/kernel/debug/lru_gen"


def _age(k, memcg="/a"):
    st = read_memcg_stats(k, memcg)
    k.write(LRU_GEN, f"+ {st.memcg_id} 0 {st.nodes[0].max_seq} 100 1\n")


def _evict_all_but_two_youngest(k, memcg="/a"):
    st = read_memcg_stats(k, memcg)
    k.write(LRU_GEN, f"- {st.memcg_id} 0 {st.nodes[0].max_seq - 2} 100\n")


def _kernel():
    k = SimKernel("v6.12", node_bytes=(64 << 20,), debug=True)
    k.mkdir("/sys/fs/cgroup/a")
    return k


def test_idle_ms_counts_from_the_stamp():
    """Stamp s means an access in ms [s-1, s); idle = floor(now ms) - (s - 1); 0 = never."""
    got = idle_ms(np.array([0, 1, 1001], np.uint32), 1_000_500_000)
    assert got.tolist() == [np.inf, 1000.0, 0.0]


def test_reclaim_hook_sees_every_freed_page():
    """The hook's pages add up to pgsteal (memory.reclaim of 8 of 20 pages)."""
    k = _kernel()
    p = k.spawn(memcg="/a")
    a = p.mmap(20 * PAGE_SIZE)
    p.access(a, 20 * PAGE_SIZE, write=True)
    seen = []
    k.reclaim_hook = lambda kk, heads, nr: seen.extend(zip(heads.tolist(), nr.tolist(),
                                                            strict=True))
    k.write("/sys/fs/cgroup/a/memory.reclaim", str(8 * PAGE_SIZE))
    steal = read_counters(k.read("/proc/vmstat"))
    assert sum(n for _, n in seen) == steal["pgsteal_anon"] > 0
    assert all(k.mem.gen[h] == 0 for h, _ in seen)  # they are off the LRU, freed


def _host_run(warm_ms):
    """Page i of a task is touched at i * 100 ms (i < 10); all evicted at 1000 ms."""
    k = _kernel()
    p = k.spawn(memcg="/a")
    a = p.mmap(10 * PAGE_SIZE)
    eng = Engine(k)
    s = host_stream(p, a, np.arange(10), True, t_ns=np.arange(10) * 100_000_000, start_ns=0)
    rec = Recorder(k, eng, warm_ms=warm_ms)
    rec.watch_tasks("/a", [s])
    rec.start()
    eng.run([s])
    k.clock_ns = 1_000_000_000
    for _ in range(3):  # the walk clears every young bit; two empty generations on top
        _age(k)
    _evict_all_but_two_youngest(k)
    return rec.finish(k.clock_ns)


@pytest.mark.parametrize(("warm_ms", "warm"), [(500, 4), (501, 5), (1, 0), (1001, 10)])
def test_warm_reclaimed_host_pages(warm_ms, warm):
    """Idle at eviction of page i is 1000 - 100 i ms; warm iff idle < warm_ms."""
    m = _host_run(warm_ms)
    assert m["reclaimed_pages"] == 10
    assert m["warm_reclaimed"] == warm
    assert m["warm_reclaimed_frac"] == pytest.approx(warm / 10)


def test_saved_memory_and_scan_ratio_of_the_host_run():
    """All 10 touched pages are gone: 10 pages saved at the end; one sample (the end)."""
    m = _host_run(500)
    assert m["saved_mib_end"] == pytest.approx(10 * PAGE_SIZE / (1 << 20))
    assert m["saved_mib_mean"] == m["saved_mib_end"]
    assert m["scanned"] == 10 and m["scanned_per_reclaimed"] == 1.0
    assert m["refaults"] == 0


def test_warm_reclaimed_guest_pages_map_back_to_gfns():
    """A guest touches gfn 2 i at i * 100 ms (i < 8); evicted at 1000 ms, warm_ms 450:
    idle 1000 - 100 i < 450 for i = 6, 7. The host pfns are found through the rmap."""
    k = _kernel()
    vmm = k.spawn(memcg="/a")
    vm = k.create_vm(vmm, arch="x86", nr_vcpus=1, mem_bytes=16 * PAGE_SIZE, tlb_entries=0)
    eng = Engine(k)
    s = guest_stream(vm, 0, np.arange(8) * 2, True, t_ns=np.arange(8) * 100_000_000,
                     start_ns=0)
    rec = Recorder(k, eng, warm_ms=450)
    rec.watch_vm(vm, "/a")
    rec.start()
    eng.run([s])
    k.clock_ns = 1_000_000_000
    for _ in range(3):
        _age(k)
    _evict_all_but_two_youngest(k)
    m = rec.finish(k.clock_ns)
    assert m["reclaimed_pages"] == 8
    assert m["warm_reclaimed"] == 2
    assert m["evicted_seen"] == 8


def _wss_run(wss_ms):
    """A (10 pages) at 0, B (20) at 1000, C (10) at 2000 ms, aged after each; sample at 2500.

    Generations (see test_agents): A aged 2500, B aged 2500, C aged 1500, an empty one 500.
    True idle: A 2500, B 1500, C 500.
    """
    k = _kernel()
    p = k.spawn(memcg="/a")
    a = p.mmap(40 * PAGE_SIZE)
    eng = Engine(k)
    rec = Recorder(k, eng, warm_ms=100, wss_ms=wss_ms)
    streams = []
    for first, n, wait in ((0, 10, 1000), (10, 20, 1000), (30, 10, 500)):
        s = host_stream(p, a, first + np.arange(n), True, t_ns=np.zeros(n),
                        start_ns=k.clock_ns)
        streams.append(s)
        eng.run([s])
        _age(k)
        k.tick(wait)
    rec.watch_tasks("/a", streams)
    rec.start()
    rec.sample(k.clock_ns)
    return rec


@pytest.mark.parametrize(("wss_ms", "error"), [
    (1500, abs(10 - 30) / 30),   # E: C's generation (1500) and the empty one; T: B and C
    (1499, abs(0 - 10) / 10),    # E: the empty one only; T: C
    (2500, 0.0),                 # everything on both sides
    (499, None),                 # T = 0: the sample is skipped
])
def test_wss_error_at_the_boundaries(wss_ms, error):
    """E = pages of generations aged <= wss_ms, T = resident pages idle <= wss_ms."""
    rec = _wss_run(wss_ms)
    if error is None:
        assert rec.wss_errors == []
    else:
        assert rec.wss_errors == [pytest.approx(error)]


def test_footprint_counts_distinct_pages_of_the_streams():
    """Footprint = 40 distinct pages touched; none reclaimed, so nothing saved."""
    rec = _wss_run(1500)
    g = rec.groups[0]
    assert rec.footprint_pages(g) == 40
    assert rec.saved == [0.0]


def test_recorder_needs_ground_truth():
    """An Engine without truth cannot feed a Recorder."""
    k = _kernel()
    with pytest.raises(ValueError, match="ground truth"):
        Recorder(k, Engine(k, truth=False), warm_ms=1)


def test_guest_major_faults_are_swap_ins_through_kvm():
    """Two of four evicted guest pages touched again: two KVM faults whose GUP swaps in,
    counted as guest major faults and as refaults; nothing else faults."""
    k = _kernel()
    vmm = k.spawn(memcg="/a")
    vm = k.create_vm(vmm, arch="x86", nr_vcpus=1, mem_bytes=4 * PAGE_SIZE, tlb_entries=0)
    vm.vcpu_access(0, 0, 4 * PAGE_SIZE, write=True)
    eng = Engine(k)
    rec = Recorder(k, eng, warm_ms=10)
    rec.watch_vm(vm, "/a", touched_ns=0)
    rec.start()
    k.tick(100)
    for _ in range(3):
        _age(k)
    _evict_all_but_two_youngest(k)
    s = guest_stream(vm, 0, [1, 3], False, rate=1000)
    eng.run([s])
    m = rec.finish(k.clock_ns)
    assert m["reclaimed_pages"] == 4
    assert m["guest_major_faults"] == 2 and m["refaults"] == 2
    assert m["warm_reclaimed"] == 0  # idle 100 ms at eviction, warm_ms 10
    assert m["saved_mib_end"] == pytest.approx(2 * PAGE_SIZE / (1 << 20))
