"""The `mglru` command line: one entry point, subcommands in sibling modules.

Each subcommand lives in its own module (`presets.py`, `bench.py`, ...) and is
registered here, so the tools stay apart from the kernel model. Errors a user
can cause print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

__all__ = ["main", "cli"]

#: (module, attribute) of each subcommand, in help order
SUBCOMMANDS = (
    ("mglru.cli.presets", "presets"),
    ("mglru.cli.bench", "bench"),
    ("mglru.cli.lru_gen", "lru_gen"),
    ("mglru.cli.access_tracking", "access_tracking_perf_test"),
    ("mglru.cli.reproduce", "reproduce"),
    ("mglru.cli.conformance", "conformance"),
    ("mglru.cli.replay", "replay"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mglru")
def cli() -> None:
    """Executable model of Linux MGLRU with secondary-MMU (KVM) aging, and lru_gen tools."""


for _module, _attr in SUBCOMMANDS:
    try:
        cli.add_command(getattr(importlib.import_module(_module), _attr))
    except ModuleNotFoundError as _e:  # a subcommand module not written yet
        if _e.name != _module:
            raise


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code."""
    try:
        cli.main(args=argv, prog_name="mglru", standalone_mode=True)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
