"""Check before work: output paths, optional dependencies and names fail in one line, first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from mglru.cli import cli

EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE

SRC = Path(__file__).resolve().parents[2] / "src"


def invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args))


def one_line_usage_error(r) -> str:  # noqa: ANN001
    assert r.exit_code == 2, r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception,
                                                                             SystemExit)
    errors = [s for s in r.stderr.splitlines() if s.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.mark.parametrize("args", [
    ("reproduce", "seed-table", "--json", "/nonexistent/t.json"),
    ("reproduce", "seed-table", "--plot", "/nonexistent/t.png"),
    ("access-tracking-perf-test", "-l", "--json", "/nonexistent/r.json"),
    ("bench", "aging", "--sizes", "16M", "--json", "/nonexistent/b.json"),
    ("presets", "--json", "/nonexistent/p.json"),
    ("lru-gen", "caps", "--kernel", "sim", "--json", "/nonexistent/c.json"),
])
def test_unwritable_output_fails_before_work(args: tuple[str, ...]) -> None:
    """A path that cannot be written: a usage error naming it, before any simulated step."""
    t0 = time.perf_counter()
    r = invoke(*args)
    line = one_line_usage_error(r)
    assert "/nonexistent" in line and "does not exist" in line
    assert time.perf_counter() - t0 < 5  # the full table takes ~40 s; nothing ran
    assert "[ 1/" not in r.stderr and "Populating" not in r.output


def test_directory_as_output_is_refused(tmp_path: Path) -> None:
    """--json DIR: a usage error, not an IsADirectoryError after the run."""
    r = invoke("presets", "--json", str(tmp_path))
    assert "is a directory" in one_line_usage_error(r)


def test_unknown_names_are_usage_errors() -> None:
    """Presets and arches are checked with the list of valid ones."""
    assert "v9.99" in one_line_usage_error(invoke("reproduce", "seed-table", "--also", "v9.99"))
    line = one_line_usage_error(invoke("reproduce", "seed-table", "--arch", "sparc"))
    assert "arm64" in line
    line = one_line_usage_error(invoke("bench", "aging", "--config", "v9.99"))
    assert "seed-v4" in line


def test_closed_pipe_is_quiet() -> None:
    """`mglru presets | head -1`: no "Broken pipe" message, exit 141 (128 + SIGPIPE)."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.Popen([sys.executable, "-m", "mglru", "presets"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first line (python starts slower)
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, EXIT_BROKEN_PIPE)  # 0 if it all fit in the pipe
    assert err == ""


def test_bench_vm_runs_the_preset_asked_for() -> None:
    """`bench aging --vm --config v6.14` runs v6.14 (it used to run seed-v4 silently)."""
    r = invoke("bench", "aging", "--vm", "--config", "v6.14", "--sizes", "16M", "--json", "-")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["configuration"]["config"] == "v6.14"
    assert [x["config"] for x in doc["records"]] == ["v6.14"]
    r = invoke("bench", "aging", "--vm", "--sizes", "16M", "--json", "-")
    assert json.loads(r.stdout)["records"][0]["config"] == "seed-v4"  # the documented default


def test_sizes_are_one_parser_everywhere() -> None:
    """64M/1G in bench as in the selftest's -b; a bad size names the letter in both."""
    r = invoke("bench", "aging", "--sizes", "64M,1G,12X")
    assert "Unknown size letter X" in one_line_usage_error(r)
    r = invoke("access-tracking-perf-test", "-b", "12X")
    assert "Unknown size letter X" in one_line_usage_error(r)
    from mglru.sizes import parse_sizes

    assert parse_sizes("64M,1G") == [64 << 20, 1 << 30]


def test_quiet_and_verbose_on_the_top_level() -> None:
    """-q silences the progress lines; -v is accepted; both come before the subcommand."""
    args = ("reproduce", "seed-table", "--vcpus", "1", "--scale", "64")
    r = invoke(*args)
    assert r.exit_code == 0 and "[ 3/3]" in r.stderr
    r = invoke("-q", *args)
    assert r.exit_code == 0 and r.stderr == ""
    r = invoke("-v", "presets")
    assert r.exit_code == 0
