"""`mglru bench ...`: scale benchmarks of the simulated kernel."""

from __future__ import annotations

import json

import click

from mglru.presets import PRESETS

__all__ = ["bench"]


@click.group("bench")
def bench() -> None:
    """Scale benchmarks (figures go to benchmarks/results when recorded)."""


def _sizes(text: str) -> list[float]:
    try:
        sizes = [float(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected a comma-separated list of GiB, got {text!r}") from None
    if not sizes or any(s <= 0 for s in sizes):
        raise click.BadParameter(f"sizes must be positive, got {text!r}")
    return sizes


@bench.command("aging")
@click.option("--gib", default="1,16", show_default=True, help="comma-separated sizes in GiB")
@click.option("--config", default="v6.14", show_default=True, type=click.Choice(list(PRESETS)),
              help="kernel preset")
@click.option("--vm", is_flag=True, help="populate through a guest of a seed-v4 x86 TDP VM")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="write the records as JSON to this file")
def aging(gib: str, config: str, vm: bool, json_path: str | None) -> None:
    """Populate one process per size and time one force_scan aging pass."""
    from mglru.bench.aging import run_sizes

    sizes = _sizes(gib)
    if vm and config == "v6.14":
        config = "seed-v4"

    def show(r: dict) -> None:
        click.echo(f"{r['gib']:>6g} GiB {r['pages']:>10d} pages  populate {r['populate_s']:7.3f} s  "
                   f"aging {r['seconds']:8.4f} s  {r['pages_per_s'] / 1e6:8.1f} M pages/s  "
                   f"peak RSS {r['peak_rss_mib']:8.1f} MiB  state {r['state_bytes_per_page']} B/page")

    try:
        records = run_sizes(sizes, config, vm, progress=show)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if json_path:
        with open(json_path, "w") as f:
            json.dump([{k: r[k] for k in ("gib", "pages", "seconds", "pages_per_s", "peak_rss_mib")}
                       | {k: r[k] for k in ("populate_s", "state_bytes_per_page", "config", "vm")}
                       for r in records], f, indent=2)


@bench.command("reclaim")
@click.option("--gib", default="4", show_default=True, help="comma-separated process sizes in GiB")
@click.option("--cold", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="GiB left cold in the oldest generation, and reclaimed")
@click.option("--config", default="v6.14", show_default=True, type=click.Choice(list(PRESETS)),
              help="kernel preset")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="write the records as JSON to this file")
def reclaim(gib: str, cold: float, config: str, json_path: str | None) -> None:
    """Age a process so its cold part is oldest, then time memory.reclaim of that part."""
    from mglru.bench.reclaim import run_sizes

    sizes = _sizes(gib)

    def show(r: dict) -> None:
        click.echo(f"{r['gib']:>6g} GiB  cold {r['cold_gib']:g} GiB  "
                   f"populate {r['populate_s']:7.2f} s  "
                   f"reclaim {r['seconds']:8.3f} s  {r['pages']:>9d} pages  "
                   f"{r['pages_per_s'] / 1e3:9.1f} K pages/s  hot evicted {r['hot_evicted']}  "
                   f"peak RSS {r['peak_rss_mib']:8.1f} MiB")

    try:
        records = run_sizes(sizes, cold, config, progress=show)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if json_path:
        with open(json_path, "w") as f:
            json.dump(records, f, indent=2)


@bench.command("access")
@click.option("--gib", default="1,16", show_default=True, help="comma-separated sizes in GiB")
@click.option("--memory", type=click.FloatRange(min=0, min_open=True),
              help="memory.max in GiB (default: none, the working set fits)")
@click.option("--pattern", default="uniform", show_default=True,
              type=click.Choice(["uniform", "zipf", "hotcold", "seq", "kv"]), help="access pattern")
@click.option("--accesses", default=20_000_000, show_default=True,
              type=click.IntRange(min=1), help="accesses timed per size")
@click.option("--config", default="v6.10", show_default=True, type=click.Choice(list(PRESETS)),
              help="kernel preset")
@click.option("--vm", is_flag=True, help="access from a VM guest's vCPU (TLB, SPTE bits)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, writable=True),
              help="write the records as JSON to this file")
def access(gib: str, memory: float | None, pattern: str, accesses: int, config: str, vm: bool,
           json_path: str | None) -> None:
    """Time an access stream over one process (or guest) per size."""
    from mglru.bench.access import run_sizes

    def show(r: dict) -> None:
        click.echo(f"{r['gib']:>6g} GiB  {r['pattern']:<8} {'vm' if r['vm'] else 'host':<4} "
                   f"{r['accesses']:>10d} accesses {r['seconds']:8.3f} s  "
                   f"{r['accesses_per_s'] / 1e6:8.2f} M/s  faults {r['faults']}  "
                   f"evictions {r['evictions']}  refaults {r['refaults']}  "
                   f"peak RSS {r['peak_rss_mib']:8.1f} MiB")

    try:
        records = run_sizes(_sizes(gib), memory, pattern, vm, accesses, config, progress=show)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    if json_path:
        with open(json_path, "w") as f:
            json.dump(records, f, indent=2)
