"""`mglru lru-gen` on the simulated kernel and on captured files (CliRunner)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lru_gen_fixtures import GOLDEN

from mglru.cli import cli
from mglru.cli.lru_gen import EXIT_ERROR, EXIT_UNAVAILABLE


def run(*args: str):
    """Invoke `mglru lru-gen ARGS` and return the result (stdout/stderr apart)."""
    return CliRunner().invoke(cli, ["lru-gen", *args], catch_exceptions=False)


def one_error_line(result) -> str:
    """The single stderr line of a failed run (and no traceback)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    assert "Traceback" not in result.output
    return lines[0]


def test_show_sim_json():
    """A fresh simulated kernel lists the root memcg with 4 generations on its node."""
    r = run("show", "--kernel", "sim", "--config", "v6.10", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["full"] is False
    (root,) = out["memcgs"]
    assert (root["id"], root["path"], root["nr_pages"]) == (1, "/", 0)
    assert [g["seq"] for g in root["nodes"][0]["generations"]] == [0, 1, 2, 3]


def test_show_full_sim_has_tiers():
    """--full reads lru_gen_full; tiers and mm_stats appear in JSON."""
    r = run("show", "/", "--full", "--kernel", "sim", "--json")
    assert r.exit_code == 0, r.output
    gen = json.loads(r.stdout)["memcgs"][0]["nodes"][0]["generations"][-1]
    assert [t["tier"] for t in gen["tiers"]] == [0, 1, 2, 3]
    assert [m for _, m in gen["mm_stats"]] == list("TOYDFA")  # seed-v4: 6 stats


def test_show_captured_file_text():
    """--input parses a captured file; text output is the kernel's format plus a summary."""
    r = run("show", "access_tracking_perf_test", "--input", str(GOLDEN / "lru_gen_v6.8_2nodes.txt"))
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0] == "memcg    42 /access_tracking_perf_test"
    assert "          7       4120     262144           3 " in lines
    assert lines[-1] == ("memcg 42 /access_tracking_perf_test: 262159 pages; "
                         "by seq: 6=12 7=262147 8=0")


def test_show_captured_full_json_by_id():
    """MEMCG given as an id; the v6.6 sample's 6 lower-case mm_stats come through."""
    r = run("show", "3", "--json", "--input", str(GOLDEN / "lru_gen_full_v6.6_stats.txt"))
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["full"] is True
    (m,) = out["memcgs"]
    assert m["path"] == "/machine.slice"
    assert m["nodes"][0]["generations"][0]["mm_stats"][0] == [1024, "t"]


def test_malformed_input_is_one_line_naming_the_line(tmp_path):
    """A bad file: exit 1, one stderr line with the file, line number and text."""
    bad = tmp_path / "lru_gen"
    bad.write_text("memcg     1 /\n node     0\n          1 2 three 4\n")
    r = run("show", "--input", str(bad))
    assert r.exit_code == EXIT_ERROR
    line = one_error_line(r)
    assert f"{bad} line 3: expected a generation line" in line
    assert line.endswith("got '          1 2 three 4'")


def test_age_sim_prints_commands_and_summary():
    """age on the root memcg of a fresh kernel: one command, then the new generation."""
    r = run("age", "/", "--kernel", "sim", "--config", "v6.10")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["+ 1 0 3 1 1", "memcg 1 /: 0 pages; by seq: 1=0 2=0 3=0 4=0"]


def test_age_sim_json():
    """--json gives the commands and the memcg afterwards."""
    r = run("age", "1", "--kernel", "sim", "--swappiness", "0", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["commands"] == ["+ 1 0 3 0 1"]
    assert out["memcg"]["nodes"][0]["generations"][-1]["seq"] == 4


def test_rejected_command_is_one_line_with_errno():
    """The kernel's errno is reported with the command; exit 1."""
    r = run("age", "/", "--kernel", "sim", "--config", "v6.10", "--no-force-scan")
    assert r.exit_code == EXIT_ERROR
    line = one_error_line(r)
    assert "command '+ 1 0 3 1 0' failed: Numerical result out of range (ERANGE)" in line


def test_evict_too_young_is_one_line():
    """EINVAL for seq + 2 > max_seq, with the limit in the message."""
    r = run("evict", "/", "--seq", "3", "--kernel", "sim")
    assert r.exit_code == EXIT_ERROR
    assert "eviction needs seq <= max_seq - 2 = 1 on node 0" in one_error_line(r)


def test_unknown_memcg_is_one_line():
    """An unknown memcg: exit 1 and the memcgs that exist."""
    r = run("age", "nope", "--kernel", "sim")
    assert r.exit_code == EXIT_ERROR
    assert "no memcg 'nope' in lru_gen (memcgs listed: 1 /)" in one_error_line(r)


def test_caps_sim_text_and_json():
    """caps shows the bits and both verdicts; seed-v4 satisfies both rules."""
    r = run("caps", "--kernel", "sim")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[0] == "/sys/kernel/mm/lru_gen/enabled: 0x000f"
    assert "  0x0008 SECONDARY_MMU_WALK   on" in r.stdout.splitlines()
    r = run("caps", "--kernel", "sim", "--config", "v6.12", "--json")
    out = json.loads(r.stdout)
    assert (out["enabled"], out["bits"]["SECONDARY_MMU_WALK"]) == ("0x0007", False)
    assert out["usable"]["upstream"] == {"usable": True, "reason": None, "hint": None}
    assert out["usable"]["v4"]["reason"] == "lru_gen does not support SECONDARY_MMU_WALK"


def test_caps_rules_v4_on_v6_10_exits_skip():
    """--rules v4 without cap 0x8: the report, then one line and the skip code."""
    r = run("caps", "--kernel", "sim", "--config", "v6.10", "--rules", "v4")
    assert r.exit_code == EXIT_UNAVAILABLE
    assert one_error_line(r).startswith("Error: lru_gen does not support SECONDARY_MMU_WALK; ")
    assert run("caps", "--kernel", "sim", "--config", "v6.10", "--rules", "upstream").exit_code == 0


@pytest.mark.parametrize(("args", "message"), [
    (("show", "--kernel", "host", "--config", "v6.10"), "--config applies to --kernel sim only"),
    (("show", "--kernel", "sim", "--root", "/tmp"), "--root applies to --kernel host only"),
    (("age", "/", "--kernel", "sim", "--swappiness", "high"), "expected a non-negative integer"),
    (("show", "--kernel", "qemu"), "'qemu' is not one of"),
    (("show", "--input", "-", "--root", "/"), "--config and --root do not apply"),
])
def test_usage_errors_exit_2(args, message):
    """Misused options are usage errors (exit 2) that say what is wrong."""
    r = run(*args)
    assert r.exit_code == 2
    assert message in r.stderr
