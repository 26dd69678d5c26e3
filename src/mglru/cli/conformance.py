"""`mglru conformance`: the differential suite, real kernels in QEMU against their presets.

    mglru conformance [--kernel 6.1|6.12]... [--scenario NAME|FILE]... [--json FILE]

Prints one table row per scenario and kernel, then every difference. Exit
codes: 0 every scenario matches (or differs only where a known difference is
written down), 1 a new difference or an error (one line: QEMU missing, a guest
that does not boot, a step the backend cannot do), 2 a usage error.
"""

from __future__ import annotations

import json
import os
import sys

import click

from mglru.abi.kernel import BackendError
from mglru.conformance import (
    KERNEL_PRESETS,
    TOLERANCE_FRACTION,
    TOLERANCE_PAGES,
    ScenarioError,
    UnsupportedStep,
    builtin_scenarios,
    load_scenario,
    run_suite,
)

__all__ = ["conformance"]


def _scenarios(names: tuple[str, ...]):
    builtin = {s.name: s for s in builtin_scenarios()}
    if not names:
        return list(builtin.values())
    out = []
    for name in names:
        if name in builtin:
            out.append(builtin[name])
        elif os.path.isfile(name):
            with open(name) as f:
                out.append(load_scenario(os.path.basename(name).removesuffix(".toml"), f.read()))
        else:
            raise click.BadParameter(f"{name!r} is neither a scenario ({', '.join(builtin)}) "
                                     "nor a file", param_hint="--scenario")
    return out


@click.command("conformance")
@click.option("--kernel", "kernels", type=click.Choice(list(KERNEL_PRESETS)), multiple=True,
              help="real kernel to test (repeatable) [default: all]")
@click.option("--scenario", "names", multiple=True, metavar="NAME|FILE",
              help="a built-in scenario or a TOML file (repeatable) [default: all built-in]")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, allow_dash=True),
              default=None, help="write the results as a JSON list ('-': stdout)")
def conformance(kernels: tuple[str, ...], names: tuple[str, ...], json_file: str | None) -> None:
    """Run scenarios on stock kernels in QEMU and on the matching presets; compare."""
    ctx = click.get_current_context()
    try:
        scenarios = _scenarios(names)
        results = run_suite(kernels or list(KERNEL_PRESETS), scenarios,
                            progress=lambda line: click.echo(line, err=True))
    except (BackendError, UnsupportedStep, ScenarioError) as e:
        click.echo(f"Error: {e}", err=True)
        ctx.exit(1)
    except OSError as e:
        click.echo(f"Error: {str(e.filename) + ': ' if e.filename else ''}{e.strerror or e}",
                   err=True)
        ctx.exit(1)
    click.echo(f"{'scenario':<16} {'kernel':<7} {'preset':<7} {'match':<6} differences")
    for r in results:
        note = " (known)" if r.known else ""
        click.echo(f"{r.scenario:<16} {r.kernel:<7} {r.preset:<7} {str(r.match).lower():<6} "
                   f"{len(r.differences)}{note}")
    click.echo(f"tolerance: pages per generation and type, memory.stat counters: "
               f"max({TOLERANCE_PAGES}, {TOLERANCE_FRACTION:.0%} of the memcg's pages)")
    for r in results:
        if r.differences:
            click.echo(f"\n{r.scenario} on {r.kernel} vs {r.preset}:")
            for d in r.differences:
                click.echo(f"  {d}")
            if r.known:
                click.echo(f"  known: {r.known}")
    if json_file:
        text = json.dumps([r.to_dict() for r in results], indent=2) + "\n"
        if json_file == "-":
            sys.stdout.write(text)
        else:
            with open(json_file, "w") as f:
                f.write(text)
    ctx.exit(0 if all(r.match or r.known for r in results) else 1)
