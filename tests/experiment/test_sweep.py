"""Sweeps: in process, in worker processes, on a local Dask cluster; resume; error rows.

Mirrors mglru/experiment/sweep.py. The runner is a fake (exp_runners.py) so the
harness is tested apart from the simulation.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import exp_runners
import pytest

from mglru.experiment.spec import expand, parse_spec
from mglru.experiment.sweep import read_results, resolve_runner, run_sweep

RUNNER = "exp_runners:run_point"


def points(n: int = 6, **base: object) -> list[dict]:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in base.items())
    text = f'[experiment]\nname = "toy"\n[base]\n{extra}[grid]\nx = {list(range(1, n + 1))}\n'
    return expand(parse_spec(text))


def lines(path: Path) -> list[dict]:
    return [json.loads(s) for s in path.read_text().splitlines() if s.strip()]


def test_in_process_rows_in_point_order_and_appended(tmp_path: Path) -> None:
    """workers=1: every point runs here; the file has one line per point; rows in point order."""
    out = tmp_path / "r.jsonl"
    pts = points(4)
    res = run_sweep(pts, str(out), runner=RUNNER, workers=1, progress=False)
    assert res.ok and res.ran == 4 and res.skipped == 0
    assert [r["run_id"] for r in res.rows] == [p["run_id"] for p in pts]
    assert [r["x"] for r in res.rows] == [1, 2, 3, 4]
    assert res.rows[0]["combined_cost_ms"] == exp_runners.run_point(pts[0])["combined_cost_ms"]
    assert sorted(r["run_id"] for r in lines(out)) == sorted(p["run_id"] for p in pts)


def test_resume_skips_rows_already_there(tmp_path: Path) -> None:
    """A second run of the same points runs none; a bigger grid runs only the new points."""
    out = tmp_path / "r.jsonl"
    run_sweep(points(3), str(out), runner=RUNNER, workers=1, progress=False)
    seen = []
    res = run_sweep(points(3), str(out), runner=RUNNER, workers=1, progress=False,
                    on_row=seen.append)
    assert (res.ran, res.skipped, seen) == (0, 3, [])
    assert len(res.rows) == 3
    res = run_sweep(points(5), str(out), runner=RUNNER, workers=1, progress=False,
                    on_row=seen.append)
    assert (res.ran, res.skipped) == (2, 3) and [r["x"] for r in seen] == [4, 5]
    assert [r["x"] for r in res.rows] == [1, 2, 3, 4, 5]
    assert len(lines(out)) == 5


def test_interrupted_sweep_keeps_its_rows_and_resumes(tmp_path: Path) -> None:
    """Ctrl-C at the 4th point: 3 rows kept; the next run does only the rest, each id once."""
    out = tmp_path / "r.jsonl"
    pts = points(6)
    pts[3]["stop"] = True  # run_ids stay as expanded: the runner sees the flag, the id is fixed
    with pytest.raises(KeyboardInterrupt):
        run_sweep(pts, str(out), runner="exp_runners:interrupting_run_point", workers=1,
                  progress=False)
    assert [r["x"] for r in lines(out)] == [1, 2, 3]
    ran = []
    res = run_sweep(points(6), str(out), runner=RUNNER, workers=1, progress=False,
                    on_row=ran.append)
    assert [r["x"] for r in ran] == [4, 5, 6] and res.skipped == 3
    ids = [r["run_id"] for r in lines(out)]
    assert sorted(ids) == sorted(p["run_id"] for p in points(6)) and len(set(ids)) == 6


def test_interrupt_in_a_worker_process_stops_the_pool(tmp_path: Path) -> None:
    """With worker processes, an interrupt stops the sweep; the finished rows stay; resume."""
    out = tmp_path / "r.jsonl"
    pts = points(6)
    pts[0]["stop"] = True
    with pytest.raises(KeyboardInterrupt):
        run_sweep(pts, str(out), runner="exp_runners:interrupting_run_point", workers=2,
                  progress=False)
    before = {r["run_id"] for r in lines(out)} if out.exists() else set()
    assert pts[0]["run_id"] not in before and len(before) < 6
    res = run_sweep(points(6), str(out), runner=RUNNER, workers=2, progress=False)
    assert res.ok and res.ran == 6 - len(before)
    ids = [r["run_id"] for r in lines(out)]
    assert len(ids) == len(set(ids)) == 6


def test_worker_processes_run_the_points(tmp_path: Path) -> None:
    """workers=2: the points run in other processes; the rows are those of the points."""
    res = run_sweep(points(4), str(tmp_path / "r.jsonl"), runner="exp_runners:pid_run_point",
                    workers=2, progress=False)
    assert res.ok and [r["x"] for r in res.rows] == [1, 2, 3, 4]
    assert os.getpid() not in {r["pid"] for r in res.rows}


def test_a_failing_point_is_an_error_row_and_reruns(tmp_path: Path) -> None:
    """x=13 raises: its error row names it, the others run; a rerun tries it again."""
    out = tmp_path / "r.jsonl"
    pts = points(14)[10:]  # x = 11..14
    res = run_sweep(pts, str(out), runner=RUNNER, workers=1, progress=False)
    assert not res.ok and res.ran == 4 and len(res.rows) == 3
    (err,) = res.errors
    bad = next(p for p in pts if p["x"] == 13)
    assert err == {"run_id": bad["run_id"], "error": "RuntimeError: x=13 fails on purpose"}
    assert err in lines(out)
    ok, errors = read_results(str(out))
    assert len(ok) == 3 and errors == [err]
    res = run_sweep(pts, str(out), runner=RUNNER, workers=1, progress=False)
    assert (res.ran, res.skipped, len(res.errors)) == (1, 3, 1)


def test_an_error_row_is_superseded_by_a_later_row(tmp_path: Path) -> None:
    """A point that failed once and then ran has its row and no error in read_results."""
    out = tmp_path / "r.jsonl"
    pts = points(2)
    out.write_text(json.dumps({"run_id": pts[0]["run_id"], "error": "boom"}) + "\n")
    res = run_sweep(pts, str(out), runner=RUNNER, workers=1, progress=False)
    assert res.ran == 2 and res.ok
    ok, errors = read_results(str(out))
    assert [r["x"] for r in ok] == [1, 2] and errors == []


def test_a_truncated_last_line_is_rerun(tmp_path: Path) -> None:
    """Killed mid-write: the cut line is ignored, its point runs again on its own line."""
    out = tmp_path / "r.jsonl"
    pts = points(3)
    run_sweep(pts[:2], str(out), runner=RUNNER, workers=1, progress=False)
    text = out.read_text()
    out.write_text(text[: len(text) - 20])  # the second row loses its end (and newline)
    res = run_sweep(pts, str(out), runner=RUNNER, workers=1, progress=False)
    assert res.ran == 2 and res.skipped == 1
    ok, _ = read_results(str(out))
    assert sorted(r["x"] for r in ok) == [1, 2, 3]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n" + json.dumps(ok[0]) + "\n")
    with pytest.raises(ValueError, match="line 1: not a JSON row"):
        read_results(str(bad))


def test_broken_runners(tmp_path: Path) -> None:
    """A runner returning a non-dict is each point's error; an unknown runner fails first."""
    res = run_sweep(points(2), None, runner="exp_runners:not_a_dict", workers=1, progress=False)
    assert [e["error"] for e in res.errors] == ["TypeError: the runner returned list, not a "
                                                "dict"] * 2
    with pytest.raises(ValueError, match="no function 'nope'"):
        run_sweep(points(2), None, runner="exp_runners:nope", workers=2, progress=False)
    with pytest.raises(ValueError, match="no module 'no_such_module'"):
        resolve_runner("no_such_module.run_point")
    assert resolve_runner("exp_runners.run_point") is exp_runners.run_point


def test_progress_callable_gets_one_line_per_point() -> None:
    """progress=callable: one line per finished point, naming the varying parameter."""
    got: list[str] = []
    run_sweep(points(3), None, runner=RUNNER, workers=1, progress=got.append)
    assert len(got) == 3 and got[0].startswith("x=1 (")


def test_parquet_is_written_at_the_end_and_resumes(tmp_path: Path) -> None:
    """A .parquet results file: every row at the end; the journal beside it is gone."""
    pytest.importorskip("pyarrow")
    out = tmp_path / "r.parquet"
    run_sweep(points(3), str(out), runner=RUNNER, workers=1, progress=False)
    assert out.exists() and not (tmp_path / "r.parquet.jsonl").exists()
    res = run_sweep(points(4), str(out), runner=RUNNER, workers=1, progress=False)
    assert (res.ran, res.skipped) == (1, 3)
    ok, _ = read_results(str(out))
    assert sorted(r["x"] for r in ok) == [1, 2, 3, 4]


def test_parquet_without_pyarrow_fails_first(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    """No pyarrow: an ImportError naming it, before any point runs."""
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)
    seen: list = []
    with pytest.raises(ImportError, match="needs pyarrow"):
        run_sweep(points(2), str(tmp_path / "r.parquet"), runner=RUNNER, workers=1,
                  progress=False, on_row=seen.append)
    assert seen == [] and list(tmp_path.iterdir()) == []


@pytest.mark.timeout(120)
def test_sweep_on_a_local_dask_cluster(tmp_path: Path) -> None:
    """dask=ADDRESS: the points run on the cluster's workers; resume works the same."""
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "r.jsonl"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        pts = points(14)[10:]
        res = run_sweep(pts, str(out), runner=RUNNER, dask=cluster.scheduler_address,
                        progress=False)
        assert [r["x"] for r in res.rows] == [11, 12, 14]
        assert [e["run_id"] for e in res.errors] == [pts[2]["run_id"]]
        assert "x=13 fails on purpose" in res.errors[0]["error"]
        res = run_sweep(points(15)[10:], str(out), runner=RUNNER,
                        dask=cluster.scheduler_address, progress=False)
        assert (res.ran, res.skipped) == (2, 3)  # 13 again (fails again) and 15
    ok, errors = read_results(str(out))
    assert sorted(r["x"] for r in ok) == [11, 12, 14, 15] and len(errors) == 1


def test_read_results_of_a_json_envelope(tmp_path: Path) -> None:
    """The --json document is a results file too: its rows and its errors."""
    doc = {"mglru_version": "0.1.0", "schema": "mglru.experiment/1", "configuration": {},
           "rows": [{"run_id": "a", "x": 1}], "errors": [{"run_id": "b", "error": "boom"}]}
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    assert read_results(str(path)) == ([{"run_id": "a", "x": 1}],
                                       [{"run_id": "b", "error": "boom"}])
    path.write_text(json.dumps({"schema": "mglru.presets/1"}))
    with pytest.raises(ValueError, match="not an mglru.experiment document"):
        read_results(str(path))
    with pytest.raises(FileNotFoundError):
        read_results(str(tmp_path / "none.jsonl"))


def test_parquet_interrupted_keeps_the_journal_then_merges(tmp_path: Path) -> None:
    """Ctrl-C on a .parquet sweep: rows in the journal; the next run writes them all."""
    pytest.importorskip("pyarrow")
    out = tmp_path / "r.parquet"
    journal = tmp_path / "r.parquet.jsonl"
    pts = points(4)
    pts[2]["stop"] = True
    with pytest.raises(KeyboardInterrupt):
        run_sweep(pts, str(out), runner="exp_runners:interrupting_run_point", workers=1,
                  progress=False)
    assert not out.exists() and [r["x"] for r in lines(journal)] == [1, 2]
    more = [{**p, "extra": 1} for p in points(4)[2:]]  # a column the first rows lack
    res = run_sweep(points(4)[:2] + more, str(out), runner=RUNNER, workers=1, progress=False)
    assert (res.ran, res.skipped) == (2, 2) and not journal.exists()
    ok, _ = read_results(str(out))
    assert [(r["x"], r.get("extra")) for r in ok] == [(1, None), (2, None), (3, 1), (4, 1)]
