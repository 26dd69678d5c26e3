"""`mglru access-tracking-perf-test`: flags, exit codes, --json, the host backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from selftest_helpers import run

from mglru.abi import HostKernel
from mglru.cli import cli
from mglru.tools.access_tracking import HOST_UNSUPPORTED, KSFT_SKIP, parse_size


def _invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["access-tracking-perf-test", *args])


def test_cli_pass_writes_json(tmp_path: Path) -> None:
    """Exit 0 on a pass; --json FILE has the phases, generations and result."""
    out = tmp_path / "r.json"
    r = _invoke("-l", "-v", "2", "-b", "16M", "--json", str(out))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["result"] == "pass" and doc["exit_code"] == 0
    assert (doc["config"], doc["rules"], doc["mmu"], doc["mode"]) == \
        ("seed-v4", "v4", "x86_tdp", "lru_gen")
    assert doc["nr_vcpus"] == 2 and doc["vcpu_memory_bytes"] == 16 << 20
    assert doc["clock"] == "host" and len(doc["generations"]) == 5
    assert [p["description"] for p in doc["phases"]][:3] == [
        "Populating memory", "Writing to populated memory", "Reading from populated memory"]
    assert all(isinstance(p["ns"], int) for p in doc["phases"])
    assert doc["memcg_removed"] is True


def test_cli_fail_and_skip_codes(tmp_path: Path) -> None:
    """Exit 1 on an assertion (the hidden cap hook), 4 on a skip; --json records both."""
    out = tmp_path / "f.json"
    r = _invoke("-l", "-b", "16M", "--test-clear-caps", "8", "--json", str(out))
    assert r.exit_code == 1
    assert "pages did not get younger" in r.output
    assert json.loads(out.read_text())["result"] == "fail"
    r = _invoke("-l", "--config", "v6.10", "--rules", "v4", "--json", "-")
    assert r.exit_code == KSFT_SKIP
    assert r.output.startswith("1..0 # SKIP - lru_gen does not support SECONDARY_MMU_WALK\n")
    doc = json.loads(r.output[r.output.index("{"):])
    assert doc["result"] == "skip" and "0x8" not in doc["message"]


def test_cli_p_without_l() -> None:
    """-p without -l: "-p specified without -l", exit 1."""
    r = _invoke("-p", "-b", "4M")
    assert r.exit_code == 1 and "-p specified without -l" in r.output


def test_cli_c_help_and_usage_errors() -> None:
    """-h prints the C test's help (exit 0); malformed sizes are usage errors (exit 2)."""
    r = _invoke("-h")
    assert r.exit_code == 0
    assert "usage: access_tracking_perf_test [-h] [-m mode] [-b vcpu_bytes]" in r.output
    assert "9:    PA-bits:ANY, VA-bits:48,  4K pages (supported)" in r.output
    assert " -l: Use MGLRU aging instead of idle page tracking" in r.output
    r = _invoke("-b", "12X")
    assert r.exit_code == 2 and "Unknown size letter X" in r.output


def test_cli_upstream_defaults_off_the_seed_presets() -> None:
    """--config v6.16 defaults to the upstream rules, which print "Using lru_gen for aging"."""
    r = _invoke("-l", "-b", "64M", "--config", "v6.16")
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Using lru_gen for aging\n")


def test_cli_host_never_tracebacks() -> None:
    """--kernel host: a skip (missing feature or no KVM guest from Python), no traceback."""
    for args in (["--kernel", "host", "-l"], ["--kernel", "host"],
                 ["--kernel", "host", "-l", "--rules", "v4"]):
        r = _invoke(*args)
        assert r.exit_code == KSFT_SKIP, r.output
        assert "1..0 # SKIP - " in r.output
        assert r.exception is None or isinstance(r.exception, SystemExit)


def _host_tree(root: Path, enabled: str) -> Path:
    for path, text in (("sys/kernel/mm/lru_gen/enabled", enabled),
                       ("sys/kernel/debug/lru_gen", ""),
                       ("sys/kernel/mm/page_idle/bitmap", ""),
                       ("sys/fs/cgroup/cgroup.controllers", "memory\n")):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(text)
    return root


@pytest.mark.parametrize(("enabled", "rules", "message"), [
    ("0x0007\n", "upstream", HOST_UNSUPPORTED),
    ("0x0007\n", "v4", "lru_gen does not support SECONDARY_MMU_WALK"),
    ("0x000f\n", "v4", HOST_UNSUPPORTED),
])
def test_host_checks_features_then_skips(tmp_path: Path, enabled: str, rules: str,
                                         message: str) -> None:
    """On a host tree the feature checks run through HostKernel; then the KVM part skips."""
    host = HostKernel(root=str(_host_tree(tmp_path, enabled)))
    r = run(host, lru_gen=True, kernel="host", rules=rules)
    assert r.code == KSFT_SKIP
    assert f"\n1..0 # SKIP - {message}" in "\n" + r.out
    assert not (tmp_path / "sys/fs/cgroup/access_tracking_perf_test").exists()
    r = run(host, kernel="host", rules=rules)  # page_idle mode: the bitmap is there
    assert r.code == KSFT_SKIP and HOST_UNSUPPORTED in r.out


def test_parse_size() -> None:
    """parse_size(): C number prefixes and b/k/m/g/t suffixes, case-insensitive."""
    assert [parse_size(s) for s in ("4096", "4k", "16M", "1G", "1g", "2T", "0x10k", "010")] == \
        [4096, 4096, 16 << 20, 1 << 30, 1 << 30, 2 << 40, 16 << 10, 8]
    for bad, msg in (("", "Need at least one digit"), ("M", "Need at least one digit"),
                     ("3q", "Unknown size letter q")):
        with pytest.raises(ValueError, match=msg):
            parse_size(bad)
