"""`mglru bench ...`: scale benchmarks of the simulated kernel."""

from __future__ import annotations

from typing import Any

import click

from mglru.cli.output import (
    configuration,
    document,
    human,
    json_option,
    rounded,
    significant,
    write_json,
)
from mglru.presets import PRESETS
from mglru.sizes import parse_size, parse_sizes

__all__ = ["bench"]

GIB = 1 << 30


@click.group("bench")
def bench() -> None:
    """Scale benchmarks (figures go to benchmarks/results when recorded)."""


def _gib_list(sizes: str | None, gib: str | None, default: str) -> list[float]:
    """Sizes in GiB from `--sizes 64M,1G` (or the older `--gib 0.5,1`), checked before work."""
    if sizes is not None and gib is not None:
        raise click.UsageError("give --sizes or --gib, not both")
    if gib is not None:
        try:
            out = [float(s) for s in gib.split(",") if s.strip()]
        except ValueError:
            raise click.BadParameter(f"expected a comma-separated list of GiB, got {gib!r}",
                                     param_hint="--gib") from None
        if not out or any(s <= 0 for s in out):
            raise click.BadParameter(f"sizes must be positive, got {gib!r}", param_hint="--gib")
        return out
    try:
        out_bytes = parse_sizes(sizes if sizes is not None else default)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--sizes") from None
    if any(b < 1 << 20 for b in out_bytes):
        raise click.BadParameter(f"sizes must be at least 1M, got {sizes!r}",
                                 param_hint="--sizes")
    return [b / GIB for b in out_bytes]


def _sizes_options(default: str):  # noqa: ANN202 - a click decorator
    def deco(f):  # noqa: ANN001, ANN202
        f = click.option("--gib", default=None, hidden=True,
                         help="comma-separated sizes in GiB (older spelling of --sizes)")(f)
        return click.option("--sizes", default=None, metavar="SIZE,...",
                            help=f"comma-separated sizes such as 64M,1G [default: {default}]")(f)
    return deco


def _clean(r: dict[str, Any]) -> dict[str, Any]:
    """A record with its host measurements rounded to what they resolve."""
    out = dict(r)
    for k in ("seconds", "populate_s", "cpu_seconds"):
        if k in out:
            out[k] = rounded(out[k], 6)  # perf_counter on a loaded host: microseconds
    if "pages_per_s" in out:
        out["pages_per_s"] = significant(out["pages_per_s"], 4)
    if "peak_rss_mib" in out:
        out["peak_rss_mib"] = rounded(out["peak_rss_mib"], 1)
    return out


@bench.command("aging")
@_sizes_options("1G,16G")
@click.option("--config", default=None, type=click.Choice(list(PRESETS)),
              help="kernel preset [default: v6.14; seed-v4 with --vm]")
@click.option("--vm", is_flag=True,
              help="populate through the guest of an x86 TDP VM (the preset's KVM aging)")
@json_option()
def aging(sizes: str | None, gib: str | None, config: str | None, vm: bool,
          json_path: str | None) -> None:
    """Populate one process per size and time one force_scan aging pass."""
    from mglru.bench.aging import run_sizes

    gibs = _gib_list(sizes, gib, "1G,16G")
    config = config or ("seed-v4" if vm else "v6.14")

    def show(r: dict) -> None:
        human(f"{r['gib']:>6g} GiB {r['pages']:>10d} pages  populate {r['populate_s']:7.3f} s  "
              f"aging {r['seconds']:8.4f} s  {r['pages_per_s'] / 1e6:8.1f} M pages/s  "
              f"peak RSS {r['peak_rss_mib']:8.1f} MiB  state {r['state_bytes_per_page']} B/page",
              json_path)

    try:
        records = run_sizes(gibs, config, vm, progress=show)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if json_path:
        cfg = configuration("bench aging", sizes_gib=gibs, config=config, vm=vm)
        write_json(json_path, document("mglru.bench.aging/1", cfg, records=[
            _clean({k: r[k] for k in ("gib", "pages", "seconds", "pages_per_s", "peak_rss_mib",
                                      "populate_s", "state_bytes_per_page", "config", "vm")})
            for r in records]))


@bench.command("reclaim")
@_sizes_options("4G")
@click.option("--cold", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="GiB left cold in the oldest generation, and reclaimed")
@click.option("--config", default="v6.14", show_default=True, type=click.Choice(list(PRESETS)),
              help="kernel preset")
@json_option()
def reclaim(sizes: str | None, gib: str | None, cold: float, config: str,
            json_path: str | None) -> None:
    """Age a process so its cold part is oldest, then time memory.reclaim of that part."""
    from mglru.bench.reclaim import run_sizes

    gibs = _gib_list(sizes, gib, "4G")

    def show(r: dict) -> None:
        human(f"{r['gib']:>6g} GiB  cold {r['cold_gib']:g} GiB  "
              f"populate {r['populate_s']:7.2f} s  "
              f"reclaim {r['seconds']:8.3f} s  {r['pages']:>9d} pages  "
              f"{r['pages_per_s'] / 1e3:9.1f} K pages/s  hot evicted {r['hot_evicted']}  "
              f"peak RSS {r['peak_rss_mib']:8.1f} MiB", json_path)

    try:
        records = run_sizes(gibs, cold, config, progress=show)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if json_path:
        cfg = configuration("bench reclaim", sizes_gib=gibs, cold_gib=cold, config=config)
        write_json(json_path, document("mglru.bench.reclaim/1", cfg,
                                       records=[_clean(r) for r in records]))


@bench.command("access")
@_sizes_options("1G,16G")
@click.option("--memory", default=None, metavar="SIZE",
              help="memory.max of the task's memcg, such as 512M (default: none, the working "
                   "set fits)")
@click.option("--pattern", default="uniform", show_default=True,
              type=click.Choice(["uniform", "zipf", "hotcold", "seq", "kv"]), help="access pattern")
@click.option("--accesses", default=20_000_000, show_default=True,
              type=click.IntRange(min=1), help="accesses timed per size")
@click.option("--config", default="v6.10", show_default=True, type=click.Choice(list(PRESETS)),
              help="kernel preset")
@click.option("--vm", is_flag=True, help="access from a VM guest's vCPU (TLB, SPTE bits)")
@click.option("--truth/--no-truth", default=True, show_default=True,
              help="keep each page's last access time (the engine's ground truth)")
@json_option()
def access(sizes: str | None, gib: str | None, memory: str | None, pattern: str, accesses: int,
           config: str, vm: bool, truth: bool, json_path: str | None) -> None:
    """Time an access stream over one process (or guest) per size."""
    from mglru.bench.access import run_sizes

    gibs = _gib_list(sizes, gib, "1G,16G")
    try:
        memory_gib = None if memory is None else parse_size(memory) / GIB
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--memory") from None

    def show(r: dict) -> None:
        human(f"{r['gib']:>6g} GiB  {r['pattern']:<8} {'vm' if r['vm'] else 'host':<4} "
              f"{r['accesses']:>10d} accesses {r['seconds']:8.3f} s  "
              f"{r['accesses_per_s'] / 1e6:8.2f} M/s  faults {r['faults']}  "
              f"evictions {r['evictions']}  refaults {r['refaults']}  "
              f"peak RSS {r['peak_rss_mib']:8.1f} MiB"
              f"{'' if r['truth'] else '  (no ground truth)'}", json_path)

    try:
        records = run_sizes(gibs, memory_gib, pattern, vm, accesses, config, progress=show,
                            truth=truth)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if json_path:
        cfg = configuration("bench access", sizes_gib=gibs, memory_gib=memory_gib,
                            pattern=pattern, accesses=accesses, config=config, vm=vm,
                            truth=truth)
        for r in records:
            r["accesses_per_s"] = significant(r["accesses_per_s"], 4)
        write_json(json_path, document("mglru.bench.access/1", cfg,
                                       records=[_clean(r) for r in records]))
