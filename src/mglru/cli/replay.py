"""`mglru replay TRACE`: run a cache trace through the model with a memory limit."""

from __future__ import annotations

import time

import click

from mglru.cli.output import configuration, document, human, json_option, significant, write_json
from mglru.presets import PRESETS
from mglru.progress import progress_reporter
from mglru.sizes import parse_size

__all__ = ["replay"]

#: replays this long (in a VM; on the host, which runs about 200 times faster) show
#: their progress, in this many steps
_PROGRESS_VM, _PROGRESS_HOST, _STEPS = 100_000, 20_000_000, 20


def _memory(text: str) -> int:
    try:
        nbytes = parse_size(text.strip())
    except ValueError:
        raise click.BadParameter(f"expected a size like 256M or 2G, got {text!r}",
                                 param_hint="--memory") from None
    if nbytes < 4096:
        raise click.BadParameter(f"memory must be at least one page, got {text!r}")
    return nbytes


@click.command("replay")
@click.argument("trace", type=click.Path(exists=True, dir_okay=False))
@click.option("--memory", required=True, help="memory.max of the replaying memcg (e.g. 256M)")
@click.option("--config", default="v6.10", show_default=True, type=click.Choice(list(PRESETS)),
              help="kernel preset")
@click.option("--vm", is_flag=True, help="replay inside a VM guest (KVM secondary MMU)")
@click.option("--format", "fmt", type=click.Choice(["oracleGeneral", "csv"]),
              help="trace format (default: csv for .csv/.txt, else oracleGeneral)")
@click.option("--unit-pages", is_flag=True, help="every object is one page, whatever its size")
@click.option("--compare", default="", help="also replay through libCacheSim, e.g. lru,clock")
@json_option()
def replay(trace: str, memory: str, config: str, vm: bool, fmt: str | None, unit_pages: bool,
           compare: str, json_path: str | None) -> None:
    """Replay a libCacheSim oracleGeneral or CSV trace (objects mapped onto pages)."""
    from mglru.workload.replay import LIBCACHESIM_ALGOS, compare_libcachesim, replay as run
    from mglru.workload.traces import TraceError, read_trace

    nbytes = _memory(memory)
    algos = [a.strip().lower() for a in compare.split(",") if a.strip()]
    bad = [a for a in algos if a not in LIBCACHESIM_ALGOS]
    if bad:
        raise click.BadParameter(f"unknown algorithm {bad[0]!r}; valid: "
                                 f"{', '.join(LIBCACHESIM_ALGOS)}", param_hint="--compare")
    t_read = time.perf_counter()
    try:
        tr = read_trace(trace, fmt)
    except TraceError as e:
        raise click.ClickException(str(e)) from None
    read_seconds = time.perf_counter() - t_read
    if len(tr) >= (_PROGRESS_VM if vm else _PROGRESS_HOST):
        with progress_reporter(_STEPS, "replay") as step:
            report = run(tr, nbytes, config, vm=vm, unit=unit_pages,
                         progress=(_STEPS, lambda done, n: step(f"{done:,} of {n:,} accesses")))
    else:
        report = run(tr, nbytes, config, vm=vm, unit=unit_pages)
    rows = [{"algorithm": f"mglru ({config}{', vm' if vm else ''})", **report}]
    if algos:
        try:
            rows += compare_libcachesim(tr, nbytes, algos, unit=unit_pages)
        except ImportError:
            raise click.ClickException("--compare needs libCacheSim's Python binding: "
                                       "pip install 'mglru[compare]'") from None
    human(f"{'':<24}{'requests':>10}{'misses':>10}{'miss ratio':>11}{'faults':>10}"
               f"{'refaults':>10}{'evictions':>10}{'seconds':>9}{'req/s':>12}", json_path)
    for r in rows:
        human(f"{r['algorithm']:<24}{r['requests']:>10d}{r['misses']:>10d}"
                   f"{r['miss_ratio']:>11.4f}{r.get('faults', '-'):>10}{r.get('refaults', '-'):>10}"
                   f"{r.get('evictions', '-'):>10}{r['seconds']:>9.3f}{r['requests_per_s']:>12.0f}",
              json_path)
    human(f"(mglru's seconds are the replay alone: the trace was read in {read_seconds:.2f} s "
          f"and set up in {report['setup_seconds']:.2f} s"
          f"{'; libCacheSim reads the trace within its seconds' if algos else ''})", json_path)
    if json_path:
        keys = ("requests", "misses", "miss_ratio", "faults", "refaults", "evictions", "seconds",
                "requests_per_s")
        out = {key: report[key] for key in keys}
        out["seconds"] = round(out["seconds"], 6)
        out["read_seconds"] = round(read_seconds, 6)
        out["setup_seconds"] = round(report["setup_seconds"], 6)
        out["requests_per_s"] = significant(out["requests_per_s"], 4)
        if algos:
            out["compare"] = rows[1:]
        cfg = configuration("replay", trace=trace, memory_bytes=nbytes, config=config, vm=vm,
                            format=fmt, unit_pages=unit_pages, compare=algos)
        write_json(json_path, document("mglru.replay/1", cfg, **out))
