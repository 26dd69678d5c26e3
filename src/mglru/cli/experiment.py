"""`mglru experiment ...`: run a study's grid of simulated points, resume it, report it.

    mglru experiment list
    mglru experiment run NAME|SPEC.toml [--quick|--size S] [--out RESULTS] [--json FILE]
    mglru experiment sweep NAME|SPEC.toml --out RESULTS [--size S] [--workers N] [--dask ADDR]
    mglru experiment report RESULTS [--out DIR]

`run` prints the key metrics of every point; `sweep` is the long form that
only writes the results file. Both skip the points whose rows the results file
already has, so running the same command again after Ctrl-C (or a crash)
finishes the sweep. Exit codes: 0 every point ran, 1 a point failed (its error
row is in the results file and on stderr) or the run could not start, 2 a usage
error (an unknown study, a bad spec, an output that cannot be written), 130
Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
from typing import Any

import click

from mglru.cli.output import (
    OutputPath,
    configuration,
    document,
    human,
    json_option,
    write_json,
)
from mglru.experiment.columns import cell

__all__ = ["experiment"]

log = logging.getLogger("mglru")

SPEC_ARG = "NAME|SPEC.toml"


@click.group("experiment")
def experiment() -> None:
    """Sweep a study's grid of simulated runs (locally or on Dask) and report the results."""


# ---------------------------------------------------------------------------------------------
# checks before work
# ---------------------------------------------------------------------------------------------

def _spec(name: str) -> Any:
    """The spec of NAME|SPEC.toml, or a usage error saying what is wrong."""
    from mglru.experiment.spec import load_spec

    try:
        return load_spec(name)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint=f"'{SPEC_ARG}'") from None


def _points(spec: Any, quick: bool, size: str | None) -> tuple[str, list[dict]]:
    """The size asked for (--quick or --size) and the spec's points at it."""
    from mglru.experiment.spec import DEFAULT_SIZE, QUICK_SIZE, expand

    if quick and size is not None:
        raise click.UsageError("give --quick or --size, not both")
    size = QUICK_SIZE if quick else size or DEFAULT_SIZE
    try:
        return size, expand(spec, size)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--quick" if quick else "--size") from None


def _results_path(out: str | None) -> None:
    """A .parquet output needs pyarrow: say so before the first point runs."""
    if out is not None and out.endswith(".parquet"):
        from mglru.experiment.sweep import require_parquet

        try:
            require_parquet()
        except ImportError as e:
            raise click.UsageError(str(e)) from None


def _dask_available(address: str | None) -> None:
    """--dask needs dask.distributed: a usage error before work if missing."""
    if address is None:
        return
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise click.UsageError("--dask needs dask.distributed: pip install 'mglru[experiment]'")


def _runner(dotted: str, points: list[dict]) -> str:
    """Resolve the runner here, and let its module check every point before any runs.

    A runner module may define `check_point(point)`, raising ValueError for a point it
    cannot run (an unknown key, a bad value): a spec typo is then a usage error, not one
    error row per point.
    """
    from mglru.experiment.sweep import resolve_runner

    try:
        fn = resolve_runner(dotted)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    check = getattr(sys.modules.get(getattr(fn, "__module__", ""), None), "check_point", None)
    if callable(check):
        for p in points:
            try:
                check(p)
            except ValueError as e:
                raise click.BadParameter(f"point {p['run_id']}: {e}",
                                         param_hint=f"'{SPEC_ARG}'") from None
    return dotted


def _sweep_options(f):  # noqa: ANN001, ANN202 - a click decorator
    """The options `run` and `sweep` share."""
    from mglru.experiment.sweep import DEFAULT_RUNNER

    f = click.option("--runner", default=DEFAULT_RUNNER, hidden=True,
                     help="module:function that runs one point (for tests)")(f)
    f = click.option("-q", "--quiet", is_flag=True, help="no progress on stderr (as `mglru -q`)")(f)
    f = click.option("--dask", "dask_address", metavar="ADDR", default=None,
                     help="run the points on a Dask cluster, e.g. tcp://10.0.0.1:8786 "
                          "(needs pip install 'mglru[experiment]')")(f)
    f = click.option("--workers", type=click.IntRange(min=1), default=None,
                     help="local worker processes [default: min(CPUs, points); 1: in this "
                          "process]")(f)
    f = click.option("--size", default=None, metavar="SIZE",
                     help="a size of the spec ([sizes.SIZE]) [default: full]")(f)
    return click.option("--quick", is_flag=True,
                        help="the spec's quick size (under a minute in all)")(f)


def _sweep(spec: Any, points: list[dict], size: str, out: str | None, workers: int | None,
           dask_address: str | None, quiet: bool, runner: str) -> Any:
    """Run the points; one-line errors for what can only fail once the run starts."""
    from mglru.experiment.sweep import run_sweep

    where = f"on {dask_address}" if dask_address else (
        "in this process" if workers == 1 else f"in {workers or 'up to ' + str(os.cpu_count())} "
                                               "processes")
    log.info("%s (%s): %d points %s%s", spec.name, size, len(points), where,
             f", results in {out}" if out else "")
    try:
        result = run_sweep(points, out, runner=runner, workers=workers, dask=dask_address,
                           progress=not quiet)
    except (ValueError, ImportError) as e:
        raise click.ClickException(str(e)) from None
    except (OSError, TimeoutError) as e:
        if dask_address:
            raise click.ClickException(f"cannot use the Dask scheduler at {dask_address}: "
                                       f"{e}") from None
        raise click.ClickException(f"{getattr(e, 'filename', None) or out}: "
                                   f"{e.strerror or e}") from None
    by_id = {p["run_id"]: p for p in points}
    varying = _varying(points)
    for err in result.errors:
        p = by_id.get(err["run_id"], {})
        where = " ".join(f"{k}={p[k]}" for k in varying if k in p)
        log.error("point %s%s failed: %s", err["run_id"], f" ({where})" if where else "",
                  err["error"])
    return result


def _varying(points: list[dict]) -> list[str]:
    """The parameters whose value differs between points, in the points' key order."""
    return [k for k in (points[0] if points else {})
            if k not in ("run_id", "study", "size")
            and len({repr(p.get(k)) for p in points}) > 1]


def _summary(spec: Any, size: str, points: list[dict], result: Any, out: str | None) -> str:
    """The last line: points, how many ran, were already there, failed."""
    kept = f", {result.skipped} already in {out}" if result.skipped else ""
    failed = f", {len(result.errors)} failed" if result.errors else ""
    return (f"{spec.name} ({size}): {len(points)} points, {result.ran} ran{kept}{failed}"
            f"{f'; results in {out}' if out else ''}")


def _table(rows: list[dict], points: list[dict]) -> list[str]:
    """The key metrics of each row, one line per point, the varying parameters first."""
    from mglru.experiment.report import KEY_METRICS

    varying = _varying(points)
    metrics = [m for m in KEY_METRICS if any(m in r for r in rows)]
    cols = ["run_id", *varying, *metrics]
    cells = [[cell(r.get(c)) for c in cols] for r in rows]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(cols)]
    lines = ["  ".join(f"{c:<{w}}" if i <= len(varying) else f"{c:>{w}}"
                       for i, (c, w) in enumerate(zip(cols, widths, strict=True)))]
    for row in cells:
        lines.append("  ".join(f"{c:<{w}}" if i <= len(varying) else f"{c:>{w}}"
                               for i, (c, w) in enumerate(zip(row, widths, strict=True))))
    return lines


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------

@experiment.command("list")
def list_studies() -> None:
    """The packaged studies and what each asks."""
    from mglru.experiment.spec import load_spec, study_names

    names = study_names()
    if not names:
        human("no packaged studies")
        return
    width = max(len(n) for n in names)
    for name in names:
        try:
            spec = load_spec(name)
        except ValueError as e:
            raise click.ClickException(str(e)) from None
        first = spec.description.split(". ")[0].rstrip(".")
        text = f"{first}. (sizes: {', '.join(spec.size_names())})".lstrip(". ")
        human(textwrap.fill(text, width=100, initial_indent=f"{name:<{width}}  ",
                            subsequent_indent=" " * (width + 2)))


def _prepare(name: str, quick: bool, size: str | None, out: str | None,
             dask_address: str | None, runner: str) -> tuple[Any, str, list[dict], Any]:
    """Everything checked before the first point runs: spec, size, points, paths, runner."""
    spec = _spec(name)
    size, points = _points(spec, quick, size)
    if out == "-":
        raise click.BadParameter("the results file must be a file, not '-'",
                                 param_hint="--out")
    _results_path(out)
    _dask_available(dask_address)
    return spec, size, points, _runner(runner, points)


@experiment.command("run")
@click.argument("name", metavar=SPEC_ARG)
@_sweep_options
@click.option("--out", type=OutputPath(), default=None, metavar="RESULTS",
              help="append the rows to RESULTS (.jsonl, or .parquet with pyarrow); points "
                   "already there are skipped")
@json_option()
def run(name: str, quick: bool, size: str | None, workers: int | None,
        dask_address: str | None, quiet: bool, runner: str, out: str | None,
        json_path: str | None) -> None:
    """Run a study (a packaged name or a spec file) and print every point's key metrics."""
    ctx = click.get_current_context()
    spec, size, points, runner = _prepare(name, quick, size, out, dask_address, runner)
    result = _sweep(spec, points, size, out, workers, dask_address, quiet, runner)
    for line in _table(result.rows, points):
        human(line, json_path)
    human(_summary(spec, size, points, result, out), json_path)
    if json_path:
        cfg = configuration("experiment run", study=spec.name, spec=spec.source, size=size,
                            points=len(points), workers=workers, dask=dask_address, out=out)
        write_json(json_path, document("mglru.experiment/1", cfg, rows=result.rows,
                                       errors=result.errors))
    ctx.exit(0 if result.ok else 1)


@experiment.command("sweep")
@click.argument("name", metavar=SPEC_ARG)
@_sweep_options
@click.option("--out", type=OutputPath(), required=True, metavar="RESULTS",
              help="the results file (.jsonl, or .parquet with pyarrow); run the same command "
                   "again to finish an interrupted sweep")
def sweep(name: str, quick: bool, size: str | None, workers: int | None,
          dask_address: str | None, quiet: bool, runner: str, out: str) -> None:
    """Run a study's points into a results file, skipping those already there (resumable)."""
    ctx = click.get_current_context()
    spec, size, points, runner = _prepare(name, quick, size, out, dask_address, runner)
    result = _sweep(spec, points, size, out, workers, dask_address, quiet, runner)
    human(_summary(spec, size, points, result, out))
    ctx.exit(0 if result.ok else 1)


@experiment.command("report")
@click.argument("results", metavar="RESULTS")
@click.option("--out", "out_dir", default=None, metavar="DIR",
              help="where the PNGs and report.html go [default: RESULTS without its "
                   "extension, plus -report]")
@click.option("--spec", "spec_name", default=None, metavar=SPEC_ARG,
              help="the spec of a study that is not packaged (its description and plot "
                   "hints)")
def report(results: str, out_dir: str | None, spec_name: str | None) -> None:
    """Plots (PNG) and one self-contained report.html from a results file."""
    import importlib.util

    from mglru.experiment.sweep import journal_path

    if not os.path.exists(results) and not os.path.exists(journal_path(results)):
        raise click.BadParameter(f"{results!r}: no such file", param_hint="'RESULTS'")
    if importlib.util.find_spec("matplotlib") is None:
        raise click.UsageError("the report needs matplotlib: pip install 'mglru[experiment]'")
    specs = [_spec(spec_name)] if spec_name else []
    out_dir = out_dir or os.path.splitext(results)[0] + "-report"
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise click.BadParameter(f"{out_dir!r} is not a directory", param_hint="--out")
    from mglru.experiment.report import report as write_report

    try:
        path = write_report(results, out_dir, specs=specs)
    except (ValueError, ImportError) as e:
        raise click.ClickException(str(e)) from None
    except OSError as e:
        raise click.ClickException(f"{e.filename or out_dir}: {e.strerror or e}") from None
    human(path)
