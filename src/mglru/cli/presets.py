"""`mglru presets`: list the kernel presets and what each changes."""

from __future__ import annotations

import dataclasses

import click

from mglru.cli.output import configuration, document, human, json_option, write_json
from mglru.presets import PRESETS, KernelConfig

__all__ = ["presets"]


@click.command("presets")
@json_option(optional_value=True)
def presets(json_path: str | None) -> None:
    """List the kernel presets (versions and what-ifs) and their differences.

    A bare `--json` (no FILE) still prints the JSON document on stdout.
    """
    base = {f.name: getattr(KernelConfig(), f.name) for f in dataclasses.fields(KernelConfig)}
    if json_path:
        out = {name: {k: v for k, v in dataclasses.asdict(cfg).items() if k != "notes"}
               | {"notes": cfg.notes} for name, cfg in PRESETS.items()}
        write_json(json_path, document("mglru.presets/1", configuration("presets"),
                                       presets=out))
        if json_path == "-":
            return
    for name, cfg in PRESETS.items():
        diff = {k: v for k, v in dataclasses.asdict(cfg).items()
                if k not in ("name", "notes") and base[k] != v}
        human(f"{name}")
        human(f"  {cfg.notes}")
        if diff:
            human("  " + ", ".join(f"{k}={v}" for k, v in diff.items()))
