"""Conformance scenarios on the model alone: parsing, the runner, the comparison (no QEMU)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from mglru.conformance import (
    KERNEL_PRESETS,
    ScenarioError,
    Snapshot,
    Trace,
    UnsupportedStep,
    builtin_scenarios,
    compare_traces,
    load_scenario,
    run_scenario,
)
from mglru.conformance.compare import tolerance
from mglru.conformance.run import tagged
from mglru.conformance.suite import KNOWN_DIFFERENCES, ConformanceResult
from mglru.kernel import SimKernel
from mglru.presets import PRESETS


def sim(preset: str = "v6.12") -> SimKernel:
    return SimKernel(preset, node_bytes=(2 << 30,))


def test_builtin_scenarios_parse_and_cover_the_basics():
    """At least fresh faults, aging, eviction, refault, and stale seqs; each snapshots."""
    names = {s.name for s in builtin_scenarios()}
    assert {"fresh_faults", "aging", "evict_oldest", "refault", "stale_seqs"} <= names
    for s in builtin_scenarios():
        assert any(step.op == "snapshot" for step in s.steps), s.name
        assert s.description


def test_kernel_preset_table():
    """Every real kernel maps to an existing preset."""
    assert set(KERNEL_PRESETS) == {"6.1", "6.12"}
    assert all(p in PRESETS for p in KERNEL_PRESETS.values())
    assert all(k in KERNEL_PRESETS for _, k in KNOWN_DIFFERENCES)


@pytest.mark.parametrize("text, words", [
    ('[[step]]\nop = "fly"\n', "unknown op 'fly'"),
    ('[[step]]\nop = "mkdir"\n', "missing memcg"),
    ('[[step]]\nop = "mkdir"\nmemcg = "/a"\ncolour = 1\n', "unknown field colour"),
    ("[[step]\n", "bad"),
])
def test_bad_scenarios(text, words):
    """Unknown ops and fields, missing fields and bad TOML are one-line ScenarioErrors."""
    with pytest.raises(ScenarioError) as e:
        load_scenario("bad", text)
    assert "\n" not in str(e.value)
    if words != "bad":
        assert words in str(e.value)


def test_model_trace_is_deterministic_and_records_errnos():
    """Two runs on fresh kernels agree; the stale/future seq commands keep their errnos."""
    sc = {s.name: s for s in builtin_scenarios()}["stale_seqs"]
    a, b = run_scenario(sim(), sc), run_scenario(sim(), sc)
    assert compare_traces(a, b) == []
    assert [r[2] for r in a.results] == ["ok", "EINVAL", "EINVAL"]


def test_rmdir_and_write_results_are_recorded():
    """A busy rmdir records EBUSY and the scenario goes on; a memcg file write records ok."""
    sc = {s.name: s for s in builtin_scenarios()}
    assert [r[2] for r in run_scenario(sim(), sc["rmdir_busy"]).results] == ["EBUSY", "ok"]
    t = run_scenario(sim(), sc["memory_reclaim"])
    assert t.results[-1][1:] == ("write: 8M", "ok")
    bad = load_scenario("w", '[[step]]\nop = "write"\ntext = "1"\n')
    with pytest.raises(ScenarioError, match="either path, or memcg and file"):
        run_scenario(sim(), bad)


def test_runner_cleans_up_memcgs():
    """The scenario's memcgs are removed afterwards (the guest runs the next one)."""
    k = sim()
    sc = {s.name: s for s in builtin_scenarios()}["fresh_faults"]
    run_scenario(k, sc)
    assert not k.exists("/sys/fs/cgroup" + tagged("/a", sc.name))


def test_vm_touch_unsupported_on_real_kernels():
    """A KVM guest step on a non-simulated backend is an UnsupportedStep naming the step."""

    class FakeReal:
        kind = "qemu"

        def __init__(self):
            self.inner = sim()

        def __getattr__(self, name):
            return getattr(self.inner, name)

    sc = load_scenario("vm", '[[step]]\nop="mkdir"\nmemcg="/a"\n[[step]]\nop="spawn"\ntask="t"\n'
                             'memcg="/a"\n[[step]]\nop="mmap"\ntask="t"\nregion="r"\nsize="1M"\n'
                             '[[step]]\nop="vm_touch"\nregion="r"\n')
    with pytest.raises(UnsupportedStep, match="vm_touch"):
        run_scenario(FakeReal(), sc)
    run_scenario(sim(), sc)  # the model has KVM


def _trace(pages: int, results=("ok",)) -> Trace:
    return Trace([Snapshot("s", {"/a": [(3, pages, 0), (4, 0, 0)]}, {})],
                 [(1, "age", r) for r in results])


@given(st.integers(0, 1 << 20), st.integers(-300, 300))
def test_tolerance_boundary(pages, delta):
    """A count agrees exactly when it is within max(64 pages, 2 %) of the model's."""
    other = max(0, pages + delta)
    diffs = compare_traces(_trace(other), _trace(pages))
    assert (diffs == []) == (abs(other - pages) <= tolerance(max(pages, other)))


def test_tolerance_values():
    """64 pages up to 3200 pages, then 2 %."""
    assert [tolerance(n) for n in (0, 1, 3200, 3250, 10000)] == [64, 64, 64, 65, 200]


def test_differences_are_readable():
    """Seqs, counts and command results each give one line naming both sides."""
    k = Trace([Snapshot("after", {"/a": [(3, 1000, 0), (4, 0, 0)]}, {"/a": {"pgsteal": 500}})],
              [(2, "age: + 2 0 3 1 1", "EINVAL")])
    m = Trace([Snapshot("after", {"/a": [(2, 0, 0), (3, 0, 0)]}, {"/a": {"pgsteal": 0}})],
              [(2, "age: + 2 0 3 1 1", "ok")])
    diffs = compare_traces(k, m)
    assert diffs == [
        "step 2 age: + 2 0 3 1 1: kernel EINVAL, model ok",
        "after /a: seqs kernel 3..4, model 2..3",
        "after /a: seq 3 anon: kernel 1000, model 0 (tolerance 64)",
        "after /a: memory.stat pgsteal: kernel 500, model 0 (tolerance 64)",
    ]
    r = ConformanceResult("memory_reclaim", "6.12", "v6.12", diffs)
    assert r.to_dict()["match"] is False and r.known
    assert ConformanceResult("x", "6.12", "v6.12").to_dict() == {
        "scenario": "x", "kernel": "6.12", "preset": "v6.12", "match": True, "differences": []}
