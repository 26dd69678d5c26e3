"""Checklist items 40-42 (spec §9) through the access_tracking_perf_test port."""

from __future__ import annotations

import errno

import pytest
from selftest_helpers import MEMCG, NINETY, run

from mglru import SimKernel
from mglru.tools.access_tracking import KSFT_FAIL, KSFT_PASS, KSFT_SKIP


@pytest.mark.parametrize(("config", "rules", "enabled", "mglru"), [
    ("seed-v4", "v4", "0x000f", True),
    ("seed-v4", "upstream", "0x000f", True),
    ("v6.12", "upstream", "0x0007", True),
    ("v6.10", "v4", "0x0007", False),
])
def test_fc40_lru_gen_usable_caps(config: str, rules: str, enabled: str, mglru: bool) -> None:
    """40. `lru_gen_usable` requires bits 0x1|0x2 (upstream) or additionally 0x8 (v4) — a model
    kernel must print `0x0007` (or `0x000f` for the v4 variant) for the test to enter MGLRU mode.
    """
    k = SimKernel(config)
    assert k.read("/sys/kernel/mm/lru_gen/enabled") == enabled + "\n"
    r = run(k, lru_gen=True, rules=rules, nr_vcpus=1,
            vcpu_memory_bytes=NINETY if rules == "upstream" else 16 << 20)
    if mglru:
        assert r.code == KSFT_PASS, r
        assert r.result.record["caps"] == enabled
    else:
        assert r.code == KSFT_SKIP, r
        assert r.out.splitlines()[0] == "1..0 # SKIP - lru_gen does not support SECONDARY_MMU_WALK"
        assert not k.exists(MEMCG)  # skipped before creating anything


@pytest.mark.parametrize("bits", [0x1, 0x2])
def test_fc40_missing_core_caps_skip_under_both_rules(bits: int) -> None:
    """40. ... without 0x1 or 0x2 neither rule set enters MGLRU mode (each with its message)."""
    for rules, message in (("v4", "lru_gen is not enabled" if bits == 1 else
                            "lru_gen does not support MM_WALK"),
                           ("upstream", "lru_gen: missing features")):
        k = SimKernel("seed-v4")
        k.write("/sys/kernel/mm/lru_gen/enabled", f"0x{0xf & ~bits:x}")
        if bits == 1:  # clearing the core key turns MGLRU off entirely
            k.write("/sys/kernel/mm/lru_gen/enabled", "n")
        r = run(k, lru_gen=True, rules=rules)
        assert r.code == KSFT_SKIP and message in r.out, r


def test_fc41_do_aging_writes_max_listed_gen_per_node(monkeypatch: pytest.MonkeyPatch) -> None:
    """41. `lru_gen_do_aging` issues `+ <id> <node> <max listed gen> 1 1` per node and fails on
    any write error; the model must accept a seq equal to the printed max gen."""
    k = SimKernel("seed-v4", node_bytes=(1 << 30, 1 << 30))
    written: list[str] = []
    write = k.write

    def spy(path: str, text: str) -> int:
        if path == "/sys/kernel/debug/lru_gen":
            written.append(text)
        return write(path, text)

    monkeypatch.setattr(k, "write", spy)
    r = run(k, lru_gen=True, nr_vcpus=1)
    assert r.code == KSFT_PASS, r
    # five aging passes, each one write per node, at the max listed gen (memcg id 2)
    assert written == [f"+ 2 {nid} {seq} 1 1\n" for seq in range(3, 8) for nid in (0, 1)]


def test_fc41_aging_write_error_fails_the_test(seed_v4: SimKernel,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """41. ... and fails on any write error (the memcg is still removed)."""
    write = seed_v4.write

    def failing(path: str, text: str) -> int:
        if path == "/sys/kernel/debug/lru_gen":
            raise OSError(errno.EINVAL, "Invalid argument", path)
        return write(path, text)

    monkeypatch.setattr(seed_v4, "write", failing)
    r = run(seed_v4, lru_gen=True, nr_vcpus=1)
    assert r.code == KSFT_FAIL, r
    assert "writing aging command + 2 0 3 1 1 to /sys/kernel/debug/lru_gen failed" in r.err
    assert not seed_v4.exists(MEMCG)


@pytest.mark.parametrize("config", ["v6.12", "v6.16"])
def test_fc42_upstream_each_mark_idle_moves_90_percent_newer(config: str) -> None:
    """42. After the initial pass + re-populate, each "mark idle" aging must move ≥90% of
    `test_pages` into a gen strictly newer than the previous one (else fail/warn)."""
    r = run(SimKernel(config), lru_gen=True, nr_vcpus=1, vcpu_memory_bytes=NINETY)
    assert r.code == KSFT_PASS, r
    gens = r.result.record["generations"]
    assert len(gens) == 3 and gens[0] < gens[1] < gens[2]
    test_pages = r.result.record["test_pages"]
    for entry in r.result.record["lru_gen"][1:]:
        assert entry["pages_by_seq"][str(entry["gen"])] > test_pages * 9 // 10
    assert r.out.count("Mark memory idle (lru_gen)    : ") == 2


def test_fc42_upstream_not_younger_fails_or_warns() -> None:
    """42. ... (else fail/warn): with pages that do not move, warn-only turns the failure into
    warnings and the 50 % fallback."""
    k = SimKernel("v6.12")
    r = run(k, lru_gen=True, nr_vcpus=1, vcpu_memory_bytes=NINETY,
            clear_caps_after_check=0x2)  # MM_WALK off: guest-only accesses go unseen
    assert r.code == KSFT_FAIL and "Too many pages still idle" in r.err, r
    r = run(SimKernel("v6.12"), lru_gen=True, nr_vcpus=1, vcpu_memory_bytes=NINETY,
            clear_caps_after_check=0x2, warn_only=1)
    assert r.code == KSFT_PASS, r
    assert "WARNING: Too many pages still idle (16384 out of 16384)" in r.out


def test_fc42_v4_five_generations() -> None:
    """42. ... the v4 variant additionally requires unchanged gens after an access-free aging
    and uses the >50%, max-excluded search."""
    r = run(SimKernel("seed-v4"), lru_gen=True, nr_vcpus=2)
    assert r.code == KSFT_PASS, r
    g = r.result.record["generations"]
    assert g[1] == g[0] < g[2] == g[3] < g[4]
    # max-excluded: after each pass the newest generation is empty and never chosen
    for entry in r.result.record["lru_gen"]:
        newest = max(int(s) for s in entry["pages_by_seq"])
        assert entry["gen"] < newest and entry["pages_by_seq"][str(newest)] == 0
