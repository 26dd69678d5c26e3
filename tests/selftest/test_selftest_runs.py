"""The port's runs on the simulated kernel: flows, arch models, failures, cleanup."""

from __future__ import annotations

import re

import pytest
from selftest_helpers import MEMCG, NINETY, run

from mglru import SimKernel
from mglru.tools.access_tracking import (
    EXIT_INTERRUPTED,
    KSFT_FAIL,
    KSFT_PASS,
    KSFT_SKIP,
    flows as flows_mod,
)

TIMED = re.compile(r"^(.{30}): (\d+)\.(\d{9})s$")

ARCH_MODELS = [  # (arch, tdp_mmu, the secondary MMU model created)
    ("x86", True, "x86_tdp"),
    ("x86", False, "x86_shadow"),
    ("arm64", True, "arm64"),
]


@pytest.mark.parametrize(("arch", "tdp_mmu", "mmu"), ARCH_MODELS)
def test_lru_gen_passes_on_seed_v4(arch: str, tdp_mmu: bool, mmu: str) -> None:
    """-l passes on seed-v4 (cap 0x8 on) for the x86 TDP, x86 shadow and arm64 models."""
    k = SimKernel("seed-v4")
    r = run(k, lru_gen=True, nr_vcpus=2, arch=arch, tdp_mmu=tdp_mmu)
    assert r.code == KSFT_PASS, r
    assert r.result.record["mmu"] == mmu
    assert r.err == ""
    assert not k.exists(MEMCG)


def test_lru_gen_output_lines_match_the_c_test() -> None:
    """The v4 run prints the C test's lines, timings as `%-30s: %ld.%09lds`, in order."""
    r = run(SimKernel("seed-v4"), lru_gen=True, nr_vcpus=1)
    lines = r.out.splitlines()
    assert lines[:4] == ["Created memcg at /sys/fs/cgroup/access_tracking_perf_test",
                         "Testing guest mode: PA-bits:ANY, VA-bits:48,  4K pages",
                         "guest physical test memory: [0x0, 0x1000000)", ""]
    timed = [TIMED.match(line) for line in lines[4:]]
    assert all(timed), lines
    assert [m.group(1).rstrip() for m in timed] == [
        "Populating memory", "Writing to populated memory", "Reading from populated memory",
        "lru_gen: Aging", "lru_gen: Aging", "Writing to idle memory", "lru_gen: Aging",
        "lru_gen: Aging", "Reading from idle memory", "lru_gen: Aging"]


@pytest.mark.parametrize(("arch", "tdp_mmu", "mmu"), ARCH_MODELS)
def test_cap_0x8_cleared_after_check_fails(arch: str, tdp_mmu: bool, mmu: str) -> None:
    """With cap 0x8 cleared after the feature check, guest-only accesses go unseen by aging:
    "pages did not get younger", exit 1, and the memcg is removed anyway."""
    k = SimKernel("seed-v4")
    r = run(k, lru_gen=True, nr_vcpus=1, arch=arch, tdp_mmu=tdp_mmu,
            clear_caps_after_check=0x8)
    assert r.code == KSFT_FAIL, r
    assert r.result.record["caps"] == "0x000f"
    assert r.result.record["caps_after_hook"] == "0x0007"
    assert r.err.splitlines() == [
        "==== Test Assertion Failure ====",
        "  access_tracking_perf_test: found_gens[2] > found_gens[1]",
        f"  pid={r.result.record['pid']} tid={r.result.record['pid']} errno=0 - Success",
        "  pages did not get younger"]
    assert r.result.record["generations"] == [3, 3, 3]
    assert not k.exists(MEMCG)
    assert r.result.record["memcg_removed"] is True


def test_v6_10_skips_under_v4_rules() -> None:
    """On v6.10 (enabled reads 0x0007) the v4 rules skip with the 0x8 message."""
    r = run(SimKernel("v6.10"), lru_gen=True, rules="v4")
    assert r.code == KSFT_SKIP
    assert r.out.startswith("1..0 # SKIP - lru_gen does not support SECONDARY_MMU_WALK\n")


@pytest.mark.parametrize("config", ["v6.12", "v6.16"])
def test_upstream_flow_passes(config: str) -> None:
    """The upstream flow (the default rules off the seed's presets) passes on v6.12+."""
    r = run(SimKernel(config), lru_gen=True, nr_vcpus=1, vcpu_memory_bytes=NINETY)
    assert r.code == KSFT_PASS, r
    assert r.result.record["rules"] == "upstream"
    assert "Using lru_gen for aging\n" in r.out
    assert "Initial aging pass (lru_gen)\n" in r.out
    assert "Re-populating memory          : " in r.out


def test_upstream_flow_on_v6_10_fails_not_younger() -> None:
    """v6.10 aging ignores secondary MMUs: the upstream checks fail (warn-only off)."""
    r = run(SimKernel("v6.10"), lru_gen=True, nr_vcpus=1)
    assert r.code == KSFT_FAIL
    assert "Too many pages still idle (4096 out of 4096)" in r.err


def test_idle_mode_passes_x86() -> None:
    """Idle page tracking (no -l) passes on x86, where 10 % still idle would fail."""
    k = SimKernel("seed-v4")
    r = run(k, nr_vcpus=1, vcpu_memory_bytes=NINETY)
    assert r.code == KSFT_PASS, r
    assert r.out.count("Mark memory idle              : ") == 2
    idle = r.result.record["idle"]
    assert [e["no_pfn"] for e in idle] == [0, 0]
    assert idle[0]["still_idle"] == 0  # every page was accessed since population
    assert idle[1]["still_idle"] < idle[1]["pages"] // 10
    assert not k.exists(MEMCG)  # no memcg without -l


def test_idle_mode_warns_off_x86() -> None:
    """Off x86 the v4-era test only warns about still-idle pages (here: cached
    translations: 4 MiB per vCPU fits in a 1536-entry guest TLB)."""
    r = run(SimKernel("seed-v4"), nr_vcpus=2, vcpu_memory_bytes=4 << 20, arch="arm64")
    assert r.code == KSFT_PASS, r
    assert "WARNING: vCPU1: Too many pages still idle (1024 out of 1024), this will affect " \
           "performance results." in r.out


def test_idle_mode_overlap_marks_once() -> None:
    """With -o only vCPU 0 marks idle, over the whole shared region."""
    r = run(SimKernel("seed-v4"), nr_vcpus=2, vcpu_memory_bytes=8 << 20, overlap=True,
            warn_only=1)
    assert r.code == KSFT_PASS, r
    assert [(e["vcpu"], e["pages"]) for e in r.result.record["idle"]] == [(0, 4096), (0, 4096)]


def test_stale_memcg_is_removed_first(seed_v4: SimKernel) -> None:
    """A memcg left behind by an earlier run is removed (rmdir) before the mkdir."""
    seed_v4.mkdir(MEMCG)
    r = run(seed_v4, lru_gen=True, nr_vcpus=1)
    assert r.code == KSFT_PASS, r
    assert not seed_v4.exists(MEMCG)


def test_busy_stale_memcg_fails(seed_v4: SimKernel) -> None:
    """A stale memcg that cannot be removed (a task inside) fails like the C test."""
    seed_v4.mkdir(MEMCG)
    squatter = seed_v4.spawn(memcg="/access_tracking_perf_test")
    r = run(seed_v4, lru_gen=True)
    assert r.code == KSFT_FAIL
    assert f"Found existing memcg at {MEMCG}, but rmdir failed" in r.err
    assert seed_v4.read(MEMCG + "/cgroup.procs") == f"{squatter.pid}\n"


def test_memcg_root_elsewhere_fails_to_create() -> None:
    """-r pointing outside the simulated cgroup mount: mkdir fails, the test fails."""
    r = run(SimKernel("seed-v4"), lru_gen=True, cgroup_root="/tmp/cg")
    assert r.code == KSFT_FAIL
    assert "Creating the memcg failed: mkdir(/tmp/cg/access_tracking_perf_test) failed" in r.err


def test_test_process_joins_the_memcg(seed_v4: SimKernel,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The test moves itself into the memcg before creating the VM (its pages charge there)."""
    seen: list[str] = []
    original = flows_mod.run_test_v4

    def spy(ctx):  # noqa: ANN001, ANN202
        seen.append(seed_v4.read(MEMCG + "/cgroup.procs"))
        seen.append(seed_v4.read("/sys/fs/cgroup/cgroup.procs"))
        return original(ctx)

    monkeypatch.setattr("mglru.tools.access_tracking.runner.run_test_v4", spy)
    r = run(seed_v4, lru_gen=True, nr_vcpus=1)
    assert r.code == KSFT_PASS, r
    assert seen == [f"{r.result.record['pid']}\n", ""]


def test_ctrl_c_removes_the_memcg(seed_v4: SimKernel, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C mid-run: the memcg is removed (process moved back first), exit 130."""
    def interrupted(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise KeyboardInterrupt

    monkeypatch.setattr("mglru.tools.access_tracking.flows.do_aging", interrupted)
    r = run(seed_v4, lru_gen=True, nr_vcpus=1)
    assert r.code == EXIT_INTERRUPTED
    assert r.err == "Interrupted\n"
    assert not seed_v4.exists(MEMCG)
    assert seed_v4.procs == {}  # the test process exited too


def test_unsupported_backing_and_mode() -> None:
    """Backing sources and guest modes the model lacks: skip or fail with clear messages."""
    r = run(SimKernel("seed-v4"), backing_src="anonymous_hugetlb_2mb")
    assert r.code == KSFT_SKIP
    assert "backing src type anonymous_hugetlb_2mb is not supported" in r.out
    assert "supported: anonymous, anonymous_thp" in r.out
    r = run(SimKernel("seed-v4"), backing_src="hugepages")
    assert r.code == KSFT_FAIL and "Unknown backing src type: hugepages" in r.err
    k = SimKernel("seed-v4")
    r = run(k, lru_gen=True, modes=[8], arch="arm64")
    assert r.code == KSFT_FAIL
    assert "Guest mode ID 8 (PA-bits:40,  VA-bits:48, 64K pages) not supported." in r.err
    assert not k.exists(MEMCG)


def test_option_checks_come_first() -> None:
    """Bad -v, -m or MMU choices fail before anything is set up, as getopt-time asserts."""
    for kw, message in ((dict(nr_vcpus=0), "Invalid number of vcpus, must be between 1 and 512"),
                        (dict(modes=[16]), "Guest mode ID 16 too big"),
                        (dict(arch="arm64", tdp_mmu=False), "the shadow MMU (--no-tdp-mmu) is "
                                                            "an x86 model; arch is arm64")):
        k = SimKernel("seed-v4")
        r = run(k, lru_gen=True, **kw)
        assert r.code == KSFT_FAIL and r.err.splitlines()[-1] == f"  {message}", r
        assert not k.exists(MEMCG) and k.procs == {}


def test_lru_gen_overlap_passes() -> None:
    """-o: every vCPU sweeps all the memory; the v4 checks hold."""
    r = run(SimKernel("seed-v4"), lru_gen=True, nr_vcpus=2, overlap=True)
    assert r.code == KSFT_PASS, r
    assert r.result.record["test_pages"] == 8192
