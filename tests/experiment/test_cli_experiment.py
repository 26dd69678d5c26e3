"""`mglru experiment list|run|sweep|report`. Mirrors mglru/cli/experiment.py.

The points run the fake runner of exp_runners.py (the hidden --runner option),
so these tests need no simulation.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import mglru.experiment.spec as spec_module
from mglru.cli import cli

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
RUNNER = ("--runner", "exp_runners:run_point")

SPEC = """
[experiment]
name = "toy"
description = "A toy study. It has two sentences."
[base]
workload = "zipf"
[grid]
preset = ["v6.10", "seed-v4"]
x = [1, 2]
[sizes.quick]
guest_mib = 64
[sizes.full]
guest_mib = 1024
"""


def invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args))


def one_line_error(r, code: int = 2) -> str:  # noqa: ANN001
    """The command failed with `code` and said why in exactly one line, no traceback."""
    assert r.exit_code == code, r.output
    assert "Traceback" not in r.output
    assert r.exception is None or isinstance(r.exception, SystemExit)
    errors = [s for s in r.stderr.splitlines() if s.startswith("Error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "toy.toml"
    path.write_text(SPEC)
    return str(path)


@pytest.fixture
def packaged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A studies folder holding toy.toml, in place of the packaged one."""
    folder = tmp_path / "studies"
    folder.mkdir()
    (folder / "toy.toml").write_text(SPEC)
    monkeypatch.setattr(spec_module, "_studies_dir", lambda: folder)
    return folder


def test_list_names_each_study_with_its_first_sentence(packaged: Path) -> None:
    """`experiment list`: per packaged study its name, first sentence and sizes, wrapped."""
    r = invoke("experiment", "list")
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == ["toy  A toy study. (sizes: quick, full)"]
    long = " ".join(["word"] * 40)
    (packaged / "a-long-one.toml").write_text(f'[experiment]\ndescription = "{long}. More."\n')
    lines = invoke("experiment", "list").stdout.splitlines()
    assert lines[0].startswith("a-long-one  word word") and len(lines) == 4
    assert all(len(s) <= 100 for s in lines) and lines[1].startswith(" " * 12 + "word")
    assert lines[2].endswith("word. (sizes: full)") and lines[3].startswith("toy         A toy")


def test_run_a_packaged_study_quick_prints_the_table_and_json(packaged: Path,
                                                              tmp_path: Path) -> None:
    """`run NAME --quick --json F`: a line per point, the summary, the envelope with rows."""
    out = tmp_path / "r.json"
    r = invoke("experiment", "run", "toy", "--quick", "--workers", "1", "--json", str(out),
               *RUNNER)
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["run_id", "preset", "x"]
    assert "combined_cost_ms" in lines[0] and len(lines) == 6
    assert lines[-1] == "toy (quick): 4 points, 4 ran"
    doc = json.loads(out.read_text())
    assert list(doc)[:3] == ["mglru_version", "schema", "configuration"]
    assert doc["schema"] == "mglru.experiment/1"
    cfg = doc["configuration"]
    assert cfg["command"] == "experiment run" and cfg["study"] == "toy"
    assert cfg["size"] == "quick" and cfg["points"] == 4
    assert cfg["spec"] == "(packaged) mglru/experiment/studies/toy.toml"
    assert [(x["preset"], x["x"], x["guest_mib"]) for x in doc["rows"]] == [
        ("v6.10", 1, 64), ("v6.10", 2, 64), ("seed-v4", 1, 64), ("seed-v4", 2, 64)]
    assert doc["errors"] == []


def test_run_json_to_stdout_leaves_the_table_to_stderr(spec_file: str) -> None:
    """--json -: stdout is the document alone."""
    r = invoke("experiment", "run", spec_file, "--size", "full", "--workers", "1",
               "--json", "-", "-q", *RUNNER)
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert {x["guest_mib"] for x in doc["rows"]} == {1024}
    assert "toy (full): 4 points, 4 ran" in r.stderr


def test_failing_point_exit_1_error_row_and_line(tmp_path: Path) -> None:
    """A point that raises: exit 1, an error line naming it, its error row; the rest ran."""
    path = tmp_path / "f.toml"
    path.write_text('[experiment]\nname = "f"\n[grid]\nx = [12, 13]\n')
    out = tmp_path / "r.jsonl"
    r = invoke("experiment", "run", str(path), "--workers", "1", "--out", str(out), *RUNNER)
    assert r.exit_code == 1, r.output
    assert "error: point " in r.stderr
    assert " (x=13) failed: RuntimeError: x=13 fails on purpose" in r.stderr
    assert r.stdout.splitlines()[-1] == f"f (full): 2 points, 2 ran, 1 failed; results in {out}"
    rows = [json.loads(s) for s in out.read_text().splitlines()]
    assert sorted("error" in x for x in rows) == [False, True]


def test_sweep_resumes_where_the_results_file_stops(spec_file: str, tmp_path: Path) -> None:
    """`sweep --out F` twice: the second run finds every row and runs nothing."""
    out = tmp_path / "r.jsonl"
    args = ("experiment", "sweep", spec_file, "--out", str(out), "--quick", *RUNNER)
    r = invoke(*args, "--workers", "1")
    assert r.exit_code == 0, r.output
    assert r.stdout == f"toy (quick): 4 points, 4 ran; results in {out}\n"
    r = invoke(*args, "--workers", "2")
    assert r.exit_code == 0, r.output
    assert r.stdout == f"toy (quick): 4 points, 0 ran, 4 already in {out}; results in {out}\n"
    assert len(out.read_text().splitlines()) == 4


@pytest.mark.timeout(120)
def test_sweep_on_dask(spec_file: str, tmp_path: Path) -> None:
    """--dask ADDR: the same rows from a local cluster's worker."""
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "r.jsonl"
    with distributed.LocalCluster(n_workers=1, processes=False,
                                  dashboard_address=None) as cluster:
        r = invoke("experiment", "sweep", spec_file, "--out", str(out), "--quick",
                   "--dask", cluster.scheduler_address, *RUNNER)
    assert r.exit_code == 0, r.output
    assert len(out.read_text().splitlines()) == 4


@pytest.mark.parametrize(("args", "words"), [
    (("run", "no-such-study"), ["'no-such-study' is neither a study", "nor a file"]),
    (("sweep", "no-such-study", "--out", "r.jsonl"), ["is neither a study"]),
    (("run", "SPEC", "--size", "huge"), ["unknown size 'huge'", "quick, full"]),
    (("run", "SPEC", "--quick", "--size", "full"), ["give --quick or --size, not both"]),
    (("run", "SPEC", "--out", "/nonexistent/r.jsonl"), ["/nonexistent", "does not exist"]),
    (("run", "SPEC", "--json", "/nonexistent/r.json"), ["/nonexistent", "does not exist"]),
    (("run", "SPEC", "--out", "-"), ["must be a file"]),
    (("sweep", "SPEC"), ["Missing option '--out'"]),
    (("run", "SPEC", "--workers", "0"), ["--workers"]),
    (("report", "/nonexistent/r.jsonl"), ["no such file"]),
])
def test_usage_errors_are_one_line(spec_file: str, args: tuple[str, ...],
                                   words: list[str]) -> None:
    """Unknown study, unknown size, unwritable output: exit 2, one line, before any point."""
    args = tuple(spec_file if a == "SPEC" else a for a in args)
    line = one_line_error(invoke("experiment", *args))
    for w in words:
        assert w in line


def test_bad_spec_is_one_line(tmp_path: Path) -> None:
    """A spec with an unknown table or a scalar grid: exit 2, one line naming the problem."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[experiment]\nname = "b"\n[grid]\npreset = "v6.10"\n')
    line = one_line_error(invoke("experiment", "run", str(bad), *RUNNER))
    assert "grid.preset must be a list" in line and str(bad) in line
    bad.write_text('[experiment]\nname = "b"\n[gird]\npreset = ["v6.10"]\n')
    line = one_line_error(invoke("experiment", "sweep", str(bad), "--out",
                                 str(tmp_path / "r.jsonl"), *RUNNER))
    assert "unknown table(s) 'gird'" in line
    bad.write_bytes(b"\xff\xfe")
    assert "not a text (TOML) file" in one_line_error(invoke("experiment", "run", str(bad)))


def test_runner_check_point_rejects_points_before_work(tmp_path: Path) -> None:
    """The runner module's check_point: an unknown key is a usage error, nothing runs."""
    spec = tmp_path / "k.toml"
    spec.write_text('[experiment]\nname = "k"\n[base]\nbogus = 1\n[grid]\nx = [1, 2]\n')
    out = tmp_path / "r.jsonl"
    line = one_line_error(invoke("experiment", "run", str(spec), "--out", str(out), *RUNNER))
    assert "unknown point key(s) bogus" in line
    assert not out.exists()


def test_missing_runner_is_one_line(spec_file: str) -> None:
    """A runner that does not exist: exit 1, one line naming it."""
    line = one_line_error(invoke("experiment", "run", spec_file, "--runner", "exp_runners:nope"),
                          code=1)
    assert "no function 'nope'" in line


def test_optional_dependencies_fail_first(spec_file: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No pyarrow for .parquet, no distributed for --dask, no matplotlib: one line, exit 2."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    line = one_line_error(invoke("experiment", "run", spec_file, "--out",
                                 str(tmp_path / "r.parquet"), *RUNNER))
    assert "needs pyarrow" in line and not (tmp_path / "r.parquet").exists()
    monkeypatch.setitem(sys.modules, "distributed", None)
    line = one_line_error(invoke("experiment", "run", spec_file, "--dask", "tcp://x:1", *RUNNER))
    assert "pip install 'mglru[experiment]'" in line
    results = tmp_path / "r.jsonl"
    results.write_text("")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    line = one_line_error(invoke("experiment", "report", str(results)))
    assert "needs matplotlib" in line


def test_report_writes_the_page(spec_file: str, tmp_path: Path) -> None:
    """`report RESULTS`: report.html beside the results by default; its path on stdout."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.jsonl"
    assert invoke("experiment", "sweep", spec_file, "--out", str(out), "--quick", "--workers",
                  "1", *RUNNER).exit_code == 0
    r = invoke("experiment", "report", str(out), "--spec", spec_file)
    assert r.exit_code == 0, r.output
    page = tmp_path / "r-report" / "report.html"
    assert r.stdout == f"{page}\n"
    assert "A toy study. It has two sentences." in page.read_text()
    notes = tmp_path / "notes.txt"
    notes.write_text("not json\n")  # a cut last line is ignored: no rows are left
    line = one_line_error(invoke("experiment", "report", str(notes)), 1)
    assert "no rows to report" in line


@pytest.mark.timeout(120)
def test_ctrl_c_stops_the_workers_within_a_second_and_keeps_the_rows(tmp_path: Path) -> None:
    """SIGINT during a sweep: exit 130 within a second, workers gone, finished rows kept."""
    spec = tmp_path / "s.toml"
    spec.write_text('[experiment]\nname = "s"\n[grid]\nx = [1, 2, 3]\n')
    out = tmp_path / "r.jsonl"
    pids = tmp_path / "pids"
    pids.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), str(HERE)]),
           "EXP_RUNNERS_PIDS": str(pids)}
    code = ("import sys; from mglru.cli import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, "experiment", "sweep", str(spec),
                             "--out", str(out), "--workers", "3", "--runner",
                             "exp_runners:slow_run_point"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _interrupt_and_check(proc, pids, out)
    finally:  # a failed check leaves nothing running
        for pid in [proc.pid, *(int(p.name) for p in pids.iterdir())]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(timeout=30)


def _interrupt_and_check(proc: subprocess.Popen, pids: Path, out: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and (len(list(pids.iterdir())) < 2
                                           or not out.exists() or not out.read_text()):
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2  # x=2 and x=3 are sleeping
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 1.5, stderr
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert [json.loads(s)["x"] for s in out.read_text().splitlines()] == [1]
    time.sleep(0.5)
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_list_and_help_import_nothing_heavy() -> None:
    """`experiment list` and `--help` load neither numpy, matplotlib nor dask."""
    code = ("import sys; from mglru.cli import main\n"
            "main(['experiment', 'list']); main(['experiment', 'run', '--help'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('numpy', 'numba', 'matplotlib', 'dask', 'distributed', 'pyarrow')))")
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == "[]"


def test_the_documented_example_row_has_every_metric() -> None:
    """docs/json.md's mglru.experiment/1 example: the envelope, and a row with every metric."""
    import re

    from mglru.experiment.report import METRICS
    from mglru.experiment.spec import run_id_of

    text = (HERE.parents[1] / "docs" / "json.md").read_text()
    docs = [json.loads(m) for m in re.findall(r"```json\n(.*?)```", text, re.S)]
    (doc,) = [d for d in docs if d["schema"] == "mglru.experiment/1"]
    assert set(doc["configuration"]) == {"command", "study", "spec", "size", "points",
                                         "workers", "dask", "out"}
    row = doc["rows"][0]
    assert set(METRICS) <= set(row) and {"run_id", "study", "size", "seed"} <= set(row)
    assert re.fullmatch(r"[0-9a-f]{16}", row["run_id"])
    assert row["run_id"] != run_id_of(row)  # the id is the point's, not the row's
    assert row["combined_cost_ms"] == pytest.approx(row["overhead_ms"] + row["refault_cost_ms"],
                                                    rel=1e-4)
    assert row["overhead_ms"] == pytest.approx(row["aging_cpu_ms"] + row["eviction_cpu_ms"]
                                               + row["vcpu_stall_ms"], rel=1e-4)


def test_progress_lines_on_stderr_unless_quiet(spec_file: str, tmp_path: Path) -> None:
    """Not a terminal: one log line per finished point on stderr; -q (or mglru -q): none."""
    r = invoke("experiment", "run", spec_file, "--workers", "1", *RUNNER)
    assert r.exit_code == 0, r.output
    progress = [s for s in r.stderr.splitlines() if s.startswith("[")]
    assert len(progress) == 4 and progress[0].startswith("[ 1/4] preset=v6.10 x=1 (")
    assert r.stderr.splitlines()[0] == "toy (full): 4 points in this process"
    r = invoke("experiment", "run", spec_file, "--workers", "1", "-q", *RUNNER)
    assert r.exit_code == 0 and "[ 1/4]" not in r.stderr
    r = invoke("-q", "experiment", "run", spec_file, "--workers", "1", *RUNNER)
    assert r.exit_code == 0 and r.stderr == ""
