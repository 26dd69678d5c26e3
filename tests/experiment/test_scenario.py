"""run_point: keys checked, rows complete and deterministic, the knobs reach the kernel."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import pytest

from mglru.experiment.scenario import DEFAULTS, ROW_KEYS, run_point

TINY = {"guest_mib": 1, "duration_ms": 300, "rate": 4000, "tlb_entries": 8,
        "agent_interval_ms": 50, "agent_threshold_ms": 120, "warm_ms": 100, "wss_ms": 60}


def test_unknown_keys_are_named():
    """A misspelt key fails before any work, naming it."""
    with pytest.raises(ValueError, match="unknown point key.*guest_mb"):
        run_point({"guest_mb": 4})


@pytest.mark.parametrize(("key", "value"), [("arch", "x86"), ("workload", "zipfian"),
                                             ("pressure", "disk")])
def test_bad_choices_are_rejected(key, value):
    """Choice keys list what is valid."""
    with pytest.raises(ValueError, match="must be"):
        run_point({**TINY, key: value})


def test_row_is_complete_flat_and_deterministic():
    """Every point key and result key is there, JSON scalars only; same seed, same row."""
    point = {**TINY, "preset": "seed-v4", "seed": 3, "run_id": "abc"}
    a = run_point(point)
    b = run_point(point)
    assert set(DEFAULTS) | set(ROW_KEYS) == set(a)
    assert all(not isinstance(v, dict | list) for v in a.values())
    json.dumps(a)
    a.pop("wall_s"), b.pop("wall_s")
    assert a == b
    assert a["run_id"] == "abc" and a["accesses"] == 1200
    assert a["sim_ms"] == pytest.approx(299.75, abs=0.5)
    assert a["overhead_ms"] == pytest.approx(a["aging_cpu_ms"] + a["eviction_cpu_ms"]
                                             + a["vcpu_stall_ms"], rel=1e-5)
    if a["saved_mib_mean"] > 0:
        assert a["cost_per_saved_mib"] == pytest.approx(
            a["combined_cost_ms"] / a["saved_mib_mean"], rel=1e-5)
    else:
        assert a["cost_per_saved_mib"] is None


def test_nothing_saved_has_no_cost_per_saved_mib():
    """No agent and no limit: nothing is reclaimed, so the ratio is None, not infinite."""
    row = run_point({**TINY, "preset": "seed-v4", "agent": "none"})
    assert row["saved_mib_mean"] == 0 and row["cost_per_saved_mib"] is None


@pytest.mark.parametrize(("cap", "walked"), [(True, True), (False, False)])
def test_cap_0x8_switches_the_secondary_walk(cap, walked):
    """seed-v4 with cap 0x8 cleared ages without asking KVM (no eviction here: the
    threshold is never reached, so every SPTE visit is the walk's)."""
    row = run_point({**TINY, "preset": "seed-v4", "cap_0x8": cap, "agent_threshold_ms": 10**6})
    assert row["reclaimed_pages"] == 0
    assert (row["sptes_walked"] > 0) is walked
    assert row["ptes_walked"] > 0


def test_v6_10_never_asks_kvm_while_aging():
    """v6.10 aging ignores secondary MMUs whatever cap_0x8 says."""
    row = run_point({**TINY, "preset": "v6.10", "agent_threshold_ms": 10**6})
    assert row["sptes_walked"] == 0 and row["notifier_calls"] == 0


def test_mixed_host_reports_both_sides():
    """A VM and a host task (1 MiB each) in 2 MiB of usable memory: kswapd keeps the
    high watermark free, so both lose pages; both sides' columns are filled."""
    row = run_point({**TINY, "host_mib": 1, "agent": "none", "pressure": "node",
                     "memory_mib": 2})
    assert row["reclaimed_pages"] > 0
    assert 0 < row["guest_rss_mib_end"] + row["host_rss_mib_end"] < 2
    assert row["guest_saved_mib_end"] + row["host_saved_mib_end"] > 0
    assert row["agent_errors"] == 0


def test_refault_feedback_agent_runs():
    """The refault-feedback agent reclaims under no limit at all."""
    row = run_point({**TINY, "agent": "refault-feedback", "agent_step_mib": 0.0625,
                     "agent_target_refaults_per_s": 10**6})
    assert row["reclaimed_pages"] > 0
    assert row["saved_mib_end"] > 0


@pytest.mark.parametrize("study", ["thread-question", "cover-letter-claim", "mixed-host"])
def test_packaged_studies_use_only_point_keys(study):
    """Every key a study sets (base, sizes, grid) is one run_point understands."""
    text = resources.files("mglru.experiment").joinpath(f"studies/{study}.toml").read_text()
    spec = tomllib.loads(text)
    assert spec["experiment"]["name"] == study
    keys = set(spec["base"]) | set(spec["grid"])
    for size in spec["sizes"].values():
        keys |= set(size)
    assert keys <= set(DEFAULTS), sorted(keys - set(DEFAULTS))
    assert {"quick", "full"} <= set(spec["sizes"])


def test_locality_matters_to_a_walk_that_keeps_its_bloom_filters():
    """Without force_scan the walk skips PTE tables its Bloom filters dropped: a clustered
    hot set kept in runs of 512 guest frames leaves fewer tables to walk than scattered."""
    point = {"agent_force_scan": False, "guest_mib": 8, "duration_ms": 600, "rate": 8000,
             "tlb_entries": 8, "agent_interval_ms": 100, "agent_threshold_ms": 250,
             "workload": "hotcold", "preset": "seed-v4"}
    runs = {loc: run_point({**point, "locality": loc})["ptes_walked"] for loc in (512, 1)}
    assert runs[512] < runs[1]
