"""`mglru lru-gen --kernel host` against host trees: output, and missing features in one line."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from mglru.abi import HostKernel
from mglru.cli import cli, main
from mglru.cli.lru_gen import EXIT_UNAVAILABLE


def run(*args: str):
    """Invoke `mglru lru-gen ARGS`."""
    return CliRunner().invoke(cli, ["lru-gen", *args], catch_exceptions=False)


def one_error_line(result) -> str:
    """The single stderr line of a failed run (and no traceback)."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.output
    return lines[0]


def test_show_host_json(host_tree):
    """The host's lru_gen (the 2-node sample) parsed: four memcgs, two nodes each."""
    r = run("show", "--root", str(host_tree()), "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert [m["id"] for m in out["memcgs"]] == [1, 7, 42, 51]
    assert all(len(m["nodes"]) == 2 for m in out["memcgs"])


def test_show_host_full_one_memcg(host_tree):
    """--full reads lru_gen_full from the host tree."""
    r = run("show", "/access_tracking_perf_test", "--full", "--root", str(host_tree()))
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines()[-1] == ("memcg 42 /access_tracking_perf_test: 262159 pages; "
                                         "by seq: 6=12 7=262147 8=0 9=0")


def test_age_host_writes_one_command_per_node(host_tree, monkeypatch):
    """age on the host: `+ 42 <node> 8 1 1` per node, one write each."""
    writes = []
    monkeypatch.setattr(HostKernel, "write",
                        lambda self, path, text: writes.append((path, text)) or len(text))
    r = run("age", "access_tracking_perf_test", "--root", str(host_tree()))
    assert r.exit_code == 0, r.output
    assert writes == [("/sys/kernel/debug/lru_gen", "+ 42 0 8 1 1\n"),
                      ("/sys/kernel/debug/lru_gen", "+ 42 1 8 1 1\n")]
    assert r.stdout.splitlines()[:2] == ["+ 42 0 8 1 1", "+ 42 1 8 1 1"]


def test_caps_host(host_tree):
    """A v6.x host (0x0007): upstream rules usable, v4 not, and --rules v4 exits 4."""
    root = str(host_tree(enabled="0x0007\n"))
    r = run("caps", "--root", root)
    assert r.exit_code == 0, r.output
    assert "/sys/kernel/debug/lru_gen: read-write" in r.stdout.splitlines()
    assert "selftest (upstream rules): uses MGLRU" in r.stdout.splitlines()
    r = run("caps", "--root", root, "--rules", "v4")
    assert r.exit_code == EXIT_UNAVAILABLE
    assert "lru_gen does not support SECONDARY_MMU_WALK" in one_error_line(r)


@pytest.mark.parametrize("command", [("show",), ("show", "--full"), ("caps",), ("age", "/"),
                                     ("evict", "/")])
def test_no_lru_gen_is_one_line_and_exit_4(host_tree, command):
    """A kernel without CONFIG_LRU_GEN: every subcommand says so in one line."""
    r = run(*command, "--root", str(host_tree(lru_gen=False)))
    assert r.exit_code == EXIT_UNAVAILABLE
    line = one_error_line(r)
    assert "lru_gen is not available: /sys/kernel/mm/lru_gen does not exist" in line
    assert "CONFIG_LRU_GEN=y" in line


def test_no_debugfs_is_one_line_and_exit_4(host_tree):
    """debugfs not mounted: the line says so and how to mount it."""
    r = run("show", "--root", str(host_tree(debugfs=False)))
    assert r.exit_code == EXIT_UNAVAILABLE
    assert one_error_line(r) == ("Error: debugfs is not mounted at /sys/kernel/debug; "
                                 "mount it with: mount -t debugfs none /sys/kernel/debug")


def test_main_returns_the_exit_code(host_tree, capsys):
    """Through the console entry point: exit 4, no traceback."""
    assert main(["lru-gen", "caps", "--root", str(host_tree(lru_gen=False))]) == EXIT_UNAVAILABLE
    assert "Traceback" not in capsys.readouterr().err


def test_this_machine_answers_without_a_traceback():
    """On the real host: either the caps, or one line saying what is missing."""
    r = run("caps")
    assert r.exit_code in (0, EXIT_UNAVAILABLE), r.output
    if r.exit_code:
        one_error_line(r)
