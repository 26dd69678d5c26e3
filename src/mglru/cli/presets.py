"""`mglru presets`: list the kernel presets and what each changes."""

from __future__ import annotations

import dataclasses
import json

import click

from mglru.presets import PRESETS, KernelConfig

__all__ = ["presets"]


@click.command("presets")
@click.option("--json", "as_json", is_flag=True, help="print the presets as JSON")
def presets(as_json: bool) -> None:
    """List the kernel presets (versions and what-ifs) and their differences."""
    base = {f.name: getattr(KernelConfig(), f.name) for f in dataclasses.fields(KernelConfig)}
    if as_json:
        out = {name: {k: v for k, v in dataclasses.asdict(cfg).items() if k != "notes"}
               | {"notes": cfg.notes} for name, cfg in PRESETS.items()}
        click.echo(json.dumps(out, indent=2, default=list))
        return
    for name, cfg in PRESETS.items():
        diff = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in ("name", "notes") and base[k] != v}
        click.echo(f"{name}")
        click.echo(f"  {cfg.notes}")
        if diff:
            click.echo("  " + ", ".join(f"{k}={v}" for k, v in diff.items()))
