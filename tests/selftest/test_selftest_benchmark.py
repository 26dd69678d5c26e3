"""`-p`: the timing model's contract, and the skip without it."""

from __future__ import annotations

import re
import sys
import types
from dataclasses import dataclass

import pytest
from selftest_helpers import MEMCG, run

from mglru import SimKernel
from mglru.tools.access_tracking import (
    KSFT_FAIL,
    KSFT_PASS,
    KSFT_SKIP,
    TIMING_MODULE,
    load_timing_model,
)


def test_p_skips_when_the_timing_model_is_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without mglru.bench.lru_gen_bench, -p skips (code 4), never a made-up number."""
    monkeypatch.setitem(sys.modules, TIMING_MODULE, None)  # import now raises ImportError
    assert load_timing_model() is None
    k = SimKernel("seed-v4")
    r = run(k, lru_gen=True, benchmark=True)
    assert r.code == KSFT_SKIP
    assert r.out.startswith("1..0 # SKIP - timing model not available")
    assert "vcpu wall time" not in r.out and "benchmark" not in r.result.record
    assert not k.exists(MEMCG)


def test_p_without_l_fails() -> None:
    """-p requires -l: "-p specified without -l", exit 1."""
    r = run(SimKernel("seed-v4"), benchmark=True)
    assert r.code == KSFT_FAIL
    assert r.err.splitlines()[-1] == "  -p specified without -l"


@dataclass
class _Result:
    vcpu_wall_s: float
    aging_pass_s: float
    passes: int
    total_aging_s: float


def test_p_calls_the_timing_model_with_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    """-p hands (k, vm, memcg, regions, aging) to run_lru_gen_benchmark, prints both lines."""
    calls: dict = {}

    def run_lru_gen_benchmark(k, vm, memcg_name, regions, aging=None):  # noqa: ANN001, ANN202
        calls.update(k=k, vm=vm, memcg=memcg_name, regions=regions)
        age = aging
        before = k.read("/sys/kernel/debug/lru_gen")
        for i, (gpa, nbytes) in enumerate(regions):  # fault in half, age, the rest, age
            vm.vcpu_access(i, gpa, nbytes // 2, write=True)
        age()
        for i, (gpa, nbytes) in enumerate(regions):
            vm.vcpu_access(i, gpa + nbytes // 2, nbytes - nbytes // 2, write=True)
        age()
        calls["aged"] = k.read("/sys/kernel/debug/lru_gen") != before
        return _Result(vcpu_wall_s=1.23456789, aging_pass_s=0.01, passes=3,
                       total_aging_s=0.030000001)

    module = types.ModuleType(TIMING_MODULE)
    module.run_lru_gen_benchmark = run_lru_gen_benchmark
    monkeypatch.setitem(sys.modules, TIMING_MODULE, module)
    k = SimKernel("seed-v4")
    r = run(k, lru_gen=True, benchmark=True, nr_vcpus=2, vcpu_memory_bytes=4 << 20)
    assert r.code == KSFT_PASS, r
    assert calls["k"] is k and calls["vm"].mmu.name == "x86_tdp"
    assert calls["regions"] == [(0, 4 << 20), (4 << 20, 4 << 20)]
    assert calls["memcg"] == "access_tracking_perf_test" and calls["aged"]
    lines = r.out.splitlines()
    assert lines[-4:] == [
        "Running lru_gen benchmark...",
        "Populating memory (async)     ",
        "vcpu wall time                : 1.234567890s",
        "lru_gen avg pass duration     : 0.010000000s, (passes:3, total:0.030000001s)"]
    assert r.result.record["benchmark"] == {
        "clock": "timing-model", "vcpu_wall_ns": 1_234_567_890, "passes": 3,
        "aging_total_ns": 30_000_001, "aging_avg_ns": 10_000_000}
    assert not k.exists(MEMCG)


def test_p_runs_the_real_timing_model_if_present() -> None:
    """If the timing model has landed, -p runs it and prints both lines."""
    if load_timing_model() is None:
        pytest.skip("mglru.bench.lru_gen_bench.run_lru_gen_benchmark not available yet")
    r = run(SimKernel("seed-v4"), lru_gen=True, benchmark=True, nr_vcpus=2,
            vcpu_memory_bytes=4 << 20)
    assert r.code == KSFT_PASS, r
    assert re.search(r"^vcpu wall time                : \d+\.\d{9}s$", r.out, re.M)
    assert re.search(r"^lru_gen avg pass duration     : \d+\.\d{9}s, \(passes:\d+, "
                     r"total:\d+\.\d{9}s\)$", r.out, re.M)
