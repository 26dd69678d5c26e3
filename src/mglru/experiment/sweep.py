"""Run a study's points in processes or on a Dask cluster; append rows as they finish; resume.

The runner is `mglru.experiment.scenario.run_point(point) -> row` unless told
otherwise (a callable, or its dotted name `module:function`, resolved where it
runs). Where the points run:

    workers=1           in this process, one after the other
    workers=N (default) a ProcessPoolExecutor of N processes (N = min(CPUs, points));
                        workers ignore SIGINT, this process stops them
    dask="tcp://..."    a dask.distributed Client on that scheduler: submit, as_completed
                        (its workers need mglru installed, the same version)

The results file is JSON lines, one row per finished point, appended and
flushed as each point finishes, so an interrupted sweep loses only the points
that were running. A point that raises leaves an error row `{"run_id",
"error"}` and the sweep goes on. On the next run, the points whose run_id has
a row (not an error row) are skipped; a truncated last line (the process was
killed mid-write) is ignored.

A path ending in `.parquet` is written at the end, from every row, with
pyarrow; while the sweep runs, rows go to the journal `PATH.jsonl` beside it,
which is removed once the Parquet file holds them (error rows stay in it).

Future optimizations:
1. batch several short points per task on Dask, where a task's overhead shows.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["run_sweep", "read_results", "resolve_runner", "SweepResult", "DEFAULT_RUNNER",
           "journal_path", "require_parquet"]

log = logging.getLogger("mglru")

#: the runner when none is given (mglru.experiment.scenario documents the point keys)
DEFAULT_RUNNER = "mglru.experiment.scenario:run_point"

Row = dict[str, Any]
Runner = Callable[[dict[str, Any]], Row]


@dataclass
class SweepResult:
    """What a sweep produced: rows in point order, the errors, and what ran."""

    #: one row per point that has one (from this run or a previous one), in point order
    rows: list[Row] = field(default_factory=list)
    #: `{"run_id", "error"}` for the points that failed in this run
    errors: list[Row] = field(default_factory=list)
    #: points run now, and points skipped because the results file had their row
    ran: int = 0
    skipped: int = 0

    @property
    def ok(self) -> bool:
        """No point failed."""
        return not self.errors


# ---------------------------------------------------------------------------------------------
# the runner
# ---------------------------------------------------------------------------------------------

def resolve_runner(runner: str | Runner) -> Runner:
    """The runner function from `module:function` (or `module.function`); callables pass.

    Raises:
        ValueError: the module or the function does not exist.
    """
    if callable(runner):
        return runner
    module, sep, attr = runner.partition(":")
    if not sep:
        module, _, attr = runner.rpartition(".")
    if not module or not attr:
        raise ValueError(f"runner {runner!r} is not 'module:function'")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        raise ValueError(f"runner {runner!r}: no module {e.name!r}") from None
    fn = getattr(mod, attr, None)
    if not callable(fn):
        raise ValueError(f"runner {runner!r}: module {module!r} has no function {attr!r}")
    return fn


def _run_one(runner: str | Runner, point: dict[str, Any]) -> tuple[str, Row | None, str | None,
                                                                   float]:
    """Run one point where it lands: (run_id, row or None, error or None, host seconds).

    Exceptions become the error string here, so no traceback object has to travel
    back from a worker process or a Dask worker.
    """
    t0 = time.perf_counter()
    rid = point["run_id"]
    try:
        row = resolve_runner(runner)(dict(point))
        if not isinstance(row, dict):
            raise TypeError(f"the runner returned {type(row).__name__}, not a dict")
        row = {"run_id": rid, **row}
        if row["run_id"] != rid:
            raise ValueError(f"the row's run_id {row['run_id']!r} is not the point's {rid!r}")
        json.dumps(row)  # a row that cannot be written is the point's error, not the sweep's
    except Exception as e:  # noqa: BLE001 - any failure of one point is recorded, not raised
        return rid, None, f"{type(e).__name__}: {e}", time.perf_counter() - t0
    return rid, row, None, time.perf_counter() - t0


def _ignore_sigint() -> None:
    """Worker processes leave Ctrl-C to the parent, which stops them (no traceback per worker)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ---------------------------------------------------------------------------------------------
# the results file
# ---------------------------------------------------------------------------------------------

def journal_path(out: str) -> str:
    """Where rows go while a sweep runs: `out` itself, or `out + ".jsonl"` for Parquet."""
    return out + ".jsonl" if out.endswith(".parquet") else out


def require_parquet() -> None:
    """pyarrow, which .parquet files need; ImportError naming the extra otherwise."""
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ModuleNotFoundError:
        raise ImportError("a .parquet results file needs pyarrow: pip install pyarrow "
                          "(or write .jsonl)") from None


def _read_jsonl(path: str) -> Iterator[Row]:
    """The rows of a JSON-lines file; a cut last line is skipped with a warning."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            if i == last:  # killed mid-write: the point runs again
                log.warning("%s: ignoring a truncated last line", path)
                continue
            raise ValueError(f"{path}, line {i + 1}: not a JSON row") from None
        if not isinstance(row, dict) or "run_id" not in row:
            raise ValueError(f"{path}, line {i + 1}: not a result row (no run_id)")
        yield row


def _read_any(path: str) -> list[Row]:
    """The rows (error rows included) of one file, by its extension."""
    if path.endswith(".parquet"):
        require_parquet()
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    if path.endswith(".json"):  # the --json envelope
        with open(path) as f:
            try:
                doc = json.load(f)
            except ValueError as e:
                raise ValueError(f"{path}: not JSON: {e}") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("rows"), list):
            raise ValueError(f"{path}: not an mglru.experiment document (no \"rows\" list)")
        return list(doc["rows"]) + list(doc.get("errors", []))
    return list(_read_jsonl(path))


def read_results(path: str) -> tuple[list[Row], list[Row]]:
    """The rows and the error rows of a results file (JSON lines, Parquet or --json document).

    A point that failed and then succeeded keeps only its row; a point with two rows
    keeps the last. For Parquet, the journal beside it (`journal_path`) is read too.

    Raises:
        FileNotFoundError: no such file (nor journal).
        ValueError: a line that is not a row, or a document that is not one of ours.
        ImportError: a .parquet file without pyarrow.
    """
    paths = [p for p in dict.fromkeys([path, journal_path(path)]) if os.path.exists(p)]
    if not paths:
        raise FileNotFoundError(f"{path}: no such file")
    rows: dict[str, Row] = {}
    errors: dict[str, Row] = {}
    for p in paths:
        for row in _read_any(p):
            rid = row["run_id"]
            if row.get("error") is not None:
                errors[rid] = row
            else:
                rows.pop(rid, None)  # the last row wins, in file order
                rows[rid] = row
    return list(rows.values()), [e for rid, e in errors.items() if rid not in rows]


def _trim_cut_line(path: str) -> None:
    """A last line cut by a kill (no newline, not JSON) is removed; a whole one is ended."""
    with open(path, "r+b") as f:
        data = f.read()
        if not data or data.endswith(b"\n"):
            return
        start = data.rfind(b"\n") + 1
        try:
            json.loads(data[start:])
        except ValueError:
            f.truncate(start)
            return
        f.write(b"\n")


class _Journal:
    """The append-only JSON-lines file: one line per finished point, flushed at once."""

    def __init__(self, path: str | None) -> None:
        """Open `path` for appending (None: write nothing)."""
        self.f = None
        if path is None:
            return
        if os.path.exists(path):
            _trim_cut_line(path)
        self.f = open(path, "ab")  # noqa: SIM115 - closed in close()

    def write(self, row: Row) -> None:
        """Append one row and flush it to the disk."""
        if self.f is None:
            return
        self.f.write(json.dumps(row).encode() + b"\n")
        self.f.flush()
        os.fsync(self.f.fileno())

    def close(self) -> None:
        """Close the file (the rows are already on disk)."""
        if self.f is not None:
            self.f.close()


def _write_parquet(out: str, rows: list[Row], errors: list[Row]) -> None:
    """Every row into `out` (rewritten whole); the journal keeps only the error rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    tmp = out + ".tmp"
    # every key of every row (from_pylist would keep only the first row's)
    keys = list(dict.fromkeys(k for r in rows for k in r))
    pq.write_table(pa.Table.from_pydict({k: [r.get(k) for r in rows] for k in keys}), tmp)
    os.replace(tmp, out)
    journal = journal_path(out)
    if errors:
        with open(journal, "w") as f:
            f.writelines(json.dumps(e) + "\n" for e in errors)
    elif os.path.exists(journal):
        os.remove(journal)


# ---------------------------------------------------------------------------------------------
# executors: each yields (run_id, row, error, seconds) as points finish
# ---------------------------------------------------------------------------------------------

Outcome = tuple[str, Row | None, str | None, float]


def _in_process(runner: str | Runner, points: list[dict]) -> Iterator[Outcome]:
    """Run the points here, one after the other (workers=1)."""
    fn = resolve_runner(runner)
    for point in points:
        yield _run_one(fn, point)


def _processes(runner: str | Runner, points: list[dict], workers: int) -> Iterator[Outcome]:
    """Run the points in `workers` spawned processes; stop them on the way out."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: the parent may hold numba's and Dask's threads, which fork would copy mid-state
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_sigint,
                               mp_context=multiprocessing.get_context("spawn"))
    futures = {pool.submit(_run_one, runner, p): p["run_id"] for p in points}
    try:
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as e:  # noqa: BLE001 - a worker died (BrokenProcessPool)
                yield futures[fut], None, f"{type(e).__name__}: {e}", 0.0
    except BaseException:
        # Ctrl-C (or the consumer stopped): running points are lost, the rest never start.
        # NOTE: the pool has no public way to stop a running task; its processes are ended.
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        # its manager thread closes the pool's wake-up pipe once it sees the processes
        # gone; waiting for that keeps the interpreter's exit hook off a closing pipe
        manager = getattr(pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=1)
        raise
    pool.shutdown(wait=True)


def _dask(runner: str | Runner, points: list[dict], address: Any) -> Iterator[Outcome]:
    """Run the points on a Dask cluster; cancel them on the way out."""
    from dask.distributed import Client, as_completed

    own = not isinstance(address, Client)
    client = Client(address, set_as_default=False) if own else address
    futures = {}
    try:
        for p in points:
            fut = client.submit(_run_one, runner, p, pure=False, key=f"mglru-{p['run_id']}")
            futures[fut] = p["run_id"]
        for fut in as_completed(list(futures), loop=client.loop):
            try:
                yield fut.result()
            except Exception as e:  # noqa: BLE001 - the worker died (KilledWorker) or was lost
                yield futures[fut], None, f"{type(e).__name__}: {e}", 0.0
    except BaseException:
        client.cancel(list(futures), force=True)
        raise
    finally:
        if own:
            client.close(timeout=2)


# ---------------------------------------------------------------------------------------------
# the sweep
# ---------------------------------------------------------------------------------------------

def _label(point: dict[str, Any], varying: list[str]) -> str:
    """The point's varying parameters, for progress lines."""
    return " ".join(f"{k}={point[k]}" for k in varying if k in point) or point["run_id"]


def run_sweep(points: Iterable[dict[str, Any]], out: str | None = None, *,
              runner: str | Runner = DEFAULT_RUNNER, workers: int | None = None,
              dask: Any = None, progress: bool | Callable[[str], None] = True,
              on_row: Callable[[Row], None] | None = None) -> SweepResult:
    """Run the points that have no row in `out` yet; append each row to `out` as it finishes.

    Args:
        points: from `mglru.experiment.spec.expand` (each has a unique `run_id`).
        out: the results file (.jsonl, or .parquet); None keeps the rows in memory only.
        runner: `run_point(point) -> row`, or its dotted name (resolved in each worker).
        workers: processes; 1 runs in this process; None: min(CPUs, points to run).
        dask: a scheduler address (`tcp://host:8786`) or a dask.distributed Client;
            the points then run on its workers and `workers` is ignored.
        progress: True: a bar (or a log line per point) on stderr; False: none;
            a callable: called with one line per finished point.
        on_row: called with each row or error row as it is written.

    Returns:
        The rows of all the points (earlier ones included), this run's errors, and counts.

    Raises:
        KeyboardInterrupt: Ctrl-C; the workers are stopped first, the rows finished so
            far are in `out`.
        ValueError: two points with the same run_id, a results file that is not ours,
            or a runner that does not exist.
        ImportError: .parquet without pyarrow, dask without dask.distributed.
    """
    points = list(points)
    ids = [p["run_id"] for p in points]
    if len(set(ids)) != len(ids):
        raise ValueError("two points have the same run_id")
    if out is not None and out.endswith(".parquet"):
        require_parquet()
    if dask is not None:
        importlib.import_module("dask.distributed")  # ImportError before any work
    if isinstance(runner, str) and (workers == 1 and dask is None):
        runner = resolve_runner(runner)
    elif isinstance(runner, str):
        resolve_runner(runner)  # a typo fails here, not once per point in the workers

    done: dict[str, Row] = {}
    if out is not None and (os.path.exists(out) or os.path.exists(journal_path(out))):
        done_rows, _ = read_results(out)
        done = {r["run_id"]: r for r in done_rows}
    todo = [p for p in points if p["run_id"] not in done]
    result = SweepResult(skipped=len(points) - len(todo))
    varying = [k for k in (points[0] if points else {})
               if k not in ("run_id", "study", "size")
               and len({json.dumps(p.get(k)) for p in points}) > 1]
    by_id = {p["run_id"]: p for p in points}

    if todo and dask is not None:
        outcomes = _dask(runner, todo, dask)
    elif todo and (workers == 1 or len(todo) == 1 and workers is None):
        outcomes = _in_process(runner, todo)
    elif todo:
        n = workers or min(os.cpu_count() or 1, len(todo))
        outcomes = _processes(runner, todo, max(1, min(n, len(todo))))
    else:
        outcomes = iter(())

    journal = _Journal(journal_path(out) if out is not None else None)
    new: dict[str, Row] = {}
    try:
        with _reporter(progress, len(todo)) as tick:
            for rid, row, error, seconds in outcomes:
                label = _label(by_id[rid], varying)
                if row is None:
                    row = {"run_id": rid, "error": error}
                    result.errors.append(row)
                    tick(f"{label}: FAILED {error}")
                else:
                    new[rid] = row
                    tick(f"{label} ({seconds:.1f} s)")
                journal.write(row)
                result.ran += 1
                if on_row:
                    on_row(row)
    finally:  # Ctrl-C included: the workers stop, the rows written so far stay
        close = getattr(outcomes, "close", None)
        if close is not None:
            close()
        journal.close()
    rows = {**done, **new}
    result.rows = [rows[i] for i in ids if i in rows]
    if out is not None and out.endswith(".parquet"):
        all_rows, errors = read_results(out)
        _write_parquet(out, all_rows, errors)
    return result


@contextmanager
def _reporter(progress: bool | Callable[[str], None],
              total: int) -> Iterator[Callable[[str], None]]:
    """Yield `tick(text)` per the `progress` argument of run_sweep."""
    if callable(progress):
        yield progress
        return
    from mglru.progress import progress_reporter

    with progress_reporter(total, "experiment", quiet=not progress) as tick:
        yield tick
