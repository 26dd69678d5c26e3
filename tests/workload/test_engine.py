"""The engine's time: clock, interleaving by timestamp, periodic callbacks, ground truth."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mglru import SimKernel
from mglru.cli import main
from mglru.mm.page import PAGE_SIZE
from mglru.workload import Engine, host_stream, stream_times


@pytest.fixture
def k():
    return SimKernel("v6.10", seed=0, node_bytes=(64 << 20,), debug=True)


def test_rate_and_timestamps():
    assert stream_times(4, start_ns=10, rate=1e3).tolist() == [10, 1_000_010, 2_000_010,
                                                               3_000_010]
    assert stream_times(2, start_ns=5, t_ns=[0, 7]).tolist() == [5, 12]
    with pytest.raises(ValueError, match="goes back in time"):
        stream_times(3, t_ns=[0, 5, 4])
    with pytest.raises(ValueError, match="exactly one"):
        stream_times(3)
    with pytest.raises(ValueError, match="positive"):
        stream_times(3, rate=0)


def test_clock_ends_at_the_last_access(k):
    p = k.spawn()
    a = p.mmap(8 * PAGE_SIZE)
    s = host_stream(p, a, [0, 1, 2], True, t_ns=[0, 4_000_000, 9_000_000])
    Engine(k).run([s])
    assert k.clock_ns == 9_000_000 and k.jiffies == 9
    assert (s.hits, s.faults) == (0, 3)


def test_callbacks_see_the_clock_and_interleave(k):
    p = k.spawn()
    a = p.mmap(16 * PAGE_SIZE)
    seen = []

    def agent(kernel, now):
        seen.append((now, kernel.clock_ns, s.pos))

    s = host_stream(p, a, np.arange(10), True, rate=1000)  # one access per ms, from t = 0
    Engine(k).run([s], every_ms=2.5, callback=agent)
    # marks at 2.5, 5 and 7.5 ms; before each, the accesses due earlier have run
    assert seen == [(2_500_000, 2_500_000, 3), (5_000_000, 5_000_000, 5),
                    (7_500_000, 7_500_000, 8)]


def test_exact_interleaving_by_timestamp(k):
    """Two tasks write the same shared file page order: the fault order shows the merge."""
    f = k.open_file("f", 8 * PAGE_SIZE)
    p1, p2 = k.spawn(), k.spawn()
    a1, a2 = p1.mmap(8 * PAGE_SIZE, file=f), p2.mmap(8 * PAGE_SIZE, file=f)
    s1 = host_stream(p1, a1, [0, 2, 4], True, t_ns=[0, 20, 40], record_faults=True)
    s2 = host_stream(p2, a2, [1, 2, 3], True, t_ns=[10, 20, 30], record_faults=True)
    Engine(k).run([s1, s2], quantum_ms=0)
    # page 2 is faulted into the page cache by p1 (first at t=20); p2 then maps it
    assert f.pages[:5].tolist() == sorted(f.pages[:5].tolist())  # cache filled in time order
    assert s1.fault_index.tolist() == [0, 1, 2] and s2.fault_index.tolist() == [0, 1, 2]


def test_quantum_runs_slices(k):
    p1, p2 = k.spawn(), k.spawn()
    a1, a2 = p1.mmap(64 * PAGE_SIZE), p2.mmap(64 * PAGE_SIZE)
    order = []

    s1 = host_stream(p1, a1, np.arange(40), True, rate=10_000)  # 0.1 ms apart
    s2 = host_stream(p2, a2, np.arange(40), True, rate=10_000)
    import mglru.workload.engine as engine_mod

    real = engine_mod.Engine._run_one

    def spy(self, s, stop):
        order.append((s is s1, stop - s.pos))
        real(self, s, stop)

    engine_mod.Engine._run_one = spy
    try:
        Engine(k).run([s1, s2], quantum_ms=1.0)
    finally:
        engine_mod.Engine._run_one = real
    # 1 ms slices of 10 accesses each, alternating; the last stream finishes alone
    assert order[:4] == [(True, 10), (False, 10), (True, 10), (False, 10)]
    assert sum(n for _, n in order) == 80


def test_ground_truth_per_pfn(k):
    p = k.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    eng = Engine(k)
    eng.run([host_stream(p, a, [0, 1, 0, 3], True, t_ns=[0, 5_000_000, 9_000_000, 12_000_000])])
    pfn = p.mm.pt.flat_pfn()[p.mm.find_vma(a).pte_index(np.arange(a >> 12, (a >> 12) + 4))]
    # ms since boot + 1; page 2 never touched (its PTE maps nothing)
    assert eng.last_access_ms[pfn[[0, 1, 3]]].tolist() == [10, 6, 13]
    assert Engine(k, truth=False).last_access_ms is None


def test_unmapped_access_raises_like_the_per_page_path(k):
    p = k.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    s = host_stream(p, a, [0, 1, 1 << 20], True, rate=1e6)
    with pytest.raises(ValueError, match="SIGSEGV"):
        Engine(k).run([s])
    assert s.pos == 2 and s.faults == 2


def test_bench_access_cli(tmp_path):
    out = tmp_path / "b.json"
    assert main(["bench", "access", "--gib", "0.01", "--accesses", "30000", "--pattern", "zipf",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["schema"] == "mglru.bench.access/1"
    (r,) = doc["records"]
    for key in ("pattern", "gib", "memory_gib", "vm", "accesses", "seconds", "accesses_per_s",
                "faults", "evictions", "refaults", "peak_rss_mib"):
        assert key in r
    assert r["accesses"] == 30000 and r["faults"] == 0 and r["pattern"] == "zipf"
    # seconds are rounded to microseconds, rates to 4 significant digits
    assert r["accesses_per_s"] == pytest.approx(30000 / r["seconds"], rel=2e-2)


def test_bench_access_without_truth(tmp_path, monkeypatch):
    """--no-truth runs the engine without ground truth and says so in the record."""
    from mglru.bench.access import _run

    out = tmp_path / "b.json"
    assert main(["bench", "access", "--gib", "0.01", "--accesses", "20000", "--no-truth",
                 "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert r["truth"] is False and r["accesses"] == 20000
    stamped = []
    real = Engine.__init__

    def spy(self, k, *a, **kw):
        real(self, k, *a, **kw)
        stamped.append(self.last_access_ms is not None)

    monkeypatch.setattr(Engine, "__init__", spy)
    for truth in (True, False):
        assert _run(0.01, None, "uniform", False, 5000, "v6.14", 0, truth)["truth"] is truth
    assert stamped == [True, False]


def test_bench_reclaim_cli(tmp_path, capsys):
    """`mglru bench reclaim` prints its line and writes its record."""
    out = tmp_path / "r.json"
    assert main(["bench", "reclaim", "--sizes", "64M", "--cold", "0.03125",
                 "--json", str(out)]) == 0
    (r,) = json.loads(out.read_text())["records"]
    assert r["gib"] == 0.0625 and r["pages"] == 8192
    assert "K pages/s" in capsys.readouterr().out
