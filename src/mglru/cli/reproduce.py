"""`mglru reproduce ...`: the seed's published numbers, reproduced by the timing model.

`mglru reproduce seed-table` runs the simulated `access_tracking_perf_test -p
-l -b 1G -v N` (mglru.bench.seed.seed_benchmark) for "no aging", "no
opt" and "opt" at each vCPU count and prints the cover letter's table: the
model's vCPU wall time and average aging pass, the cover letter's values
beside them where the seed gives them (1-16 vCPUs) and the relative error.
Rows without cover-letter values (32, 64, 112) are the model's predictions.

`--also PRESET,...` adds one row per preset (aging on that kernel) to each vCPU
count, and `--arch` runs the VM on another arch's KVM model: one design variable
at a time against the cover letter's three (whose values are x86's, so other
arches get no error column).

Future optimizations:
1. run the vCPU counts in parallel processes when the machine has the cores.
"""

from __future__ import annotations

import click

from mglru.cli.output import (
    OutputPath,
    configuration,
    document,
    human,
    json_option,
    rounded,
    write_json,
)
from mglru.progress import progress_reporter

__all__ = ["reproduce", "format_seed_table"]

DEFAULT_VCPUS = "1,2,4,8,16,32,64,112"


@click.group("reproduce")
def reproduce() -> None:
    """Reproduce the seed's published numbers with the simulated kernel."""


def _vcpus(text: str) -> list[int]:
    try:
        vcpus = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected a comma-separated list of vCPU counts, got {text!r}") \
            from None
    if not vcpus or any(n < 1 or n > 512 for n in vcpus):
        raise click.BadParameter(f"vCPU counts must be 1..512, got {text!r}")
    return vcpus


def _err(model: float | None, ref: float | None) -> str:
    if model is None or ref is None:
        return ""
    return f"{(model / ref - 1) * 100:+.1f}%"


def format_seed_table(rows: list[dict], arch: str = "x86") -> str:
    """The cover letter's layout, its values (1-16 vCPUs, x86) and the relative errors beside."""
    from mglru.bench.seed import COVER_LETTER

    reference = COVER_LETTER if arch == "x86" else {}
    w = max([14] + [len(f"{r['vcpus']} ({r['config']})") + 1 for r in rows])
    head = (f"{'num_vcpus':<{w}}{'vcpu wall time':>15}{'cover letter':>14}{'error':>8}"
            f"{'aging avg pass time':>21}{'cover letter':>14}{'error':>8}{'passes':>8}")
    where = "" if arch == "x86" else f", {arch} KVM model"
    lines = ["./access_tracking_perf_test -p -l -b 1G -v $N_VCPUS "
             f"# 1G per vCPU (simulated{where})", "", head]
    last = None
    for r in rows:
        if last is not None and r["vcpus"] != last:
            lines.append("")
        last = r["vcpus"]
        ref_wall, ref_pass = reference.get(r["vcpus"], {}).get(r["config"], (None, None))
        label = f"{r['vcpus']} ({r['config']})"
        a = r["aging_pass_s"]
        ref_w = "" if ref_wall is None else f"{ref_wall:.9f}"
        model_a = "n/a" if a is None else f"{a:.9f}"
        ref_a = "n/a" if r["config"] == "no aging" and reference else (
            "" if ref_pass is None else f"{ref_pass:.9f}")
        passes = "" if r["passes"] is None else r["passes"]
        lines.append(f"{label:<{w}}{r['vcpu_wall_s']:>15.9f}{ref_w:>14}"
                     f"{_err(r['vcpu_wall_s'], ref_wall):>8}{model_a:>21}{ref_a:>14}"
                     f"{_err(a, ref_pass):>8}{passes:>8}")
    lines.append("")
    if reference:
        lines.append("Cover letter values exist for 1-16 vCPUs (the calibration rows); "
                     "32-112 are predictions.")
    else:
        lines.append(f"The cover letter measured x86; on {arch} every row is a prediction.")
    return "\n".join(lines)


def _plot(rows: list[dict], path: str, arch: str = "x86") -> None:
    from mglru.plots import pyplot

    try:
        plt = pyplot("plot")
    except ImportError as e:
        raise click.ClickException(f"--plot: {e}") from None
    from matplotlib.ticker import ScalarFormatter

    from mglru.bench.seed import COVER_LETTER

    colors = {"no aging": "tab:gray", "no opt": "tab:red", "opt": "tab:blue"}
    configs = list(dict.fromkeys(r["config"] for r in rows))
    extra = iter(["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive",
                  "tab:cyan"] * 4)
    for config in configs:
        colors.setdefault(config, next(extra))
    reference = COVER_LETTER if arch == "x86" else {}
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for config in configs:
        pts = [r for r in rows if r["config"] == config]
        xs = [r["vcpus"] for r in pts]
        # panel, model value, index of the cover letter's value
        for ax, key, col in ((ax1, "vcpu_wall_s", 0), (ax2, "aging_pass_s", 1)):
            if all(r[key] is None for r in pts):
                continue
            ax.plot(xs, [r[key] for r in pts], "-o", color=colors[config], ms=4,
                    label=f"model: {config}")
            ref = [(n, reference[n][config][col]) for n in xs if config in reference.get(n, {})]
            if ref:
                ax.plot(*zip(*ref, strict=True), "x", color=colors[config], ms=8,
                        label=f"cover letter: {config}")
    ax1.set(xscale="log", xlabel="vCPUs (1 GiB each)", ylabel="vCPU wall time (s)",
            title="vCPU wall time")
    ax2.set(xscale="log", yscale="log", xlabel="vCPUs (1 GiB each)",
            ylabel="average aging pass (s)", title="MGLRU aging pass")
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_xticks(sorted({r["vcpus"] for r in rows}))
        ax.get_xaxis().set_major_formatter(ScalarFormatter())
    where = "x86 TDP MMU" if arch == "x86" else f"{arch} KVM model"
    fig.suptitle(f"access_tracking_perf_test -p -l (simulated, {where}): "
                 + ("x = cover letter, calibration rows 1-16" if reference else "predictions"))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _require_matplotlib() -> None:
    """--plot's dependency, checked before the first simulated step."""
    import importlib.util

    if importlib.util.find_spec("matplotlib") is None:
        raise click.UsageError("--plot needs matplotlib: pip install 'mglru[plot]'")


def _costs_identity(path: str | None) -> dict:
    """Which cost file produced the numbers: its path and content hash."""
    import hashlib
    from importlib.resources import files

    if path is None:
        data = files("mglru.timing").joinpath("costs.toml").read_bytes()
        return {"path": "(packaged) mglru/timing/costs.toml",
                "sha256": hashlib.sha256(data).hexdigest()}
    with open(path, "rb") as f:
        return {"path": path, "sha256": hashlib.sha256(f.read()).hexdigest()}


@reproduce.command("seed-table")
@click.option("--vcpus", default=DEFAULT_VCPUS, show_default=True,
              help="comma-separated vCPU counts (1 GiB of memory each)")
@json_option()
@click.option("--plot", "plot_path", type=OutputPath(), metavar="FILE",
              help="write a PNG plot to FILE (needs matplotlib: pip install 'mglru[plot]')")
@click.option("--costs", "costs_path", type=click.Path(dir_okay=False, exists=True),
              help="a cost file in the format of the packaged costs.toml")
@click.option("--granularity", default="auto", show_default=True,
              type=click.Choice(["auto", "exact", "aggregated"]), help="timing granularity")
@click.option("--scale", default=1, show_default=True, type=click.IntRange(1, 64),
              help="quick look: 1 GiB / SCALE per vCPU, times x SCALE. An approximation: "
                   "measured against full size (1-112 vCPUs), wall times are within 5 %, "
                   "the 'opt' pass within 27 %, the 'no opt' pass up to 1.9x (SCALE 4) or "
                   "4.6x (SCALE 16) too short")
@click.option("--also", default="", metavar="PRESET,...",
              help="more rows: aging on these presets (see `mglru presets`)")
@click.option("--arch", default="x86", show_default=True,
              type=click.Choice(["x86", "arm64", "riscv", "loongarch", "mips", "powerpc"]),
              help="the VM's KVM model (the cover letter's values are x86's)")
@click.option("--quiet", is_flag=True, help="no progress on stderr (as `mglru -q`)")
def seed_table(vcpus: str, json_path: str | None, plot_path: str | None, costs_path: str | None,
               granularity: str, scale: int, also: str, arch: str, quiet: bool) -> None:
    """The cover letter's table: no aging / no opt / opt at 1 GiB per vCPU."""
    from mglru.bench.seed import CONFIGS
    from mglru.bench.seed_table import seed_table_rows
    from mglru.presets import PRESETS
    from mglru.timing.costs import load_costs

    counts = _vcpus(vcpus)
    extra = tuple(p.strip() for p in also.split(",") if p.strip())
    unknown = [p for p in extra if p not in PRESETS]
    if unknown:
        raise click.BadParameter(f"unknown preset(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(PRESETS)}", param_hint="--also")
    if plot_path:
        _require_matplotlib()
    try:
        costs = load_costs(costs_path)
    except (KeyError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    cells = len(counts) * (len(CONFIGS) + len(extra))
    with progress_reporter(cells, "seed table", quiet=quiet) as report:
        def progress(done, total, n, config, rec, seconds):
            a = rec["aging_pass_s"]
            more = "" if a is None else f", pass {a * 1e3:.1f} ms x {rec['passes']}"
            report(f"{n:>3} vCPUs {config:<8}: wall {rec['vcpu_wall_s']:.3f} s{more}  "
                   f"({seconds:.1f} s, peak RSS {rec['peak_rss_mib']:.0f} MiB)")

        rows = seed_table_rows(counts, scale=scale, costs=costs, granularity=granularity,
                               progress=progress, also=extra, arch=arch)
    human(format_seed_table(rows, arch), json_path)
    if json_path:
        config = configuration("reproduce seed-table", vcpus=counts, gib_per_vcpu=1 / scale,
                               scale=scale, granularity=granularity,
                               configs=[*CONFIGS, *extra], arch=arch,
                               costs=_costs_identity(costs_path))
        write_json(json_path, document(
            "mglru.seed-table/1", config,
            rows=[{"vcpus": r["vcpus"], "config": r["config"],
                   "vcpu_wall_s": rounded(r["vcpu_wall_s"], 9),
                   "aging_pass_s": rounded(r["aging_pass_s"], 9), "passes": r["passes"]}
                  for r in rows]))
    if plot_path:
        _plot(rows, plot_path, arch)
