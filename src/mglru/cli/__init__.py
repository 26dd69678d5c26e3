"""The `mglru` command line: one entry point, subcommands in sibling modules.

Each subcommand lives in its own module (`presets.py`, `bench.py`, ...) and is
registered here, so the tools stay apart from the kernel model. Errors a user
can cause print one line and exit non-zero, never a traceback.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

import click

__all__ = ["main", "cli"]

#: (module, attribute) of each subcommand, in help order
SUBCOMMANDS = (
    ("mglru.cli.presets", "presets"),
    ("mglru.cli.bench", "bench"),
    ("mglru.cli.lru_gen", "lru_gen"),
    ("mglru.cli.access_tracking", "access_tracking_perf_test"),
    ("mglru.cli.reproduce", "reproduce"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mglru")
def cli() -> None:
    """Executable model of Linux MGLRU with secondary-MMU (KVM) aging, and lru_gen tools."""


#: exit code after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130
#: seconds a Ctrl-C'd command gets to unwind before the process exits anyway
INTERRUPT_GRACE_S = 0.5

for _module, _attr in SUBCOMMANDS:
    try:
        cli.add_command(getattr(importlib.import_module(_module), _attr))
    except ModuleNotFoundError as _e:  # a subcommand module not written yet
        if _e.name != _module:
            raise

_interrupted = threading.Event()
_timers: list[threading.Timer] = []


def _hard_exit() -> None:
    """The command did not unwind in time (or swallowed the interrupt): leave now."""
    sys.stderr.write("Interrupted\n")
    sys.stderr.flush()
    os._exit(EXIT_INTERRUPTED)


def _on_sigint(signum: int, frame: object) -> None:
    """First Ctrl-C: KeyboardInterrupt plus a grace timer; a second one exits at once."""
    if _interrupted.is_set():
        _hard_exit()
    _interrupted.set()
    timer = threading.Timer(INTERRUPT_GRACE_S, _hard_exit)
    timer.daemon = True
    timer.start()
    _timers.append(timer)
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Console entry point; returns the exit code (130 after Ctrl-C)."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, _on_sigint) if in_main else None
    try:
        cli.main(args=argv, prog_name="mglru", standalone_mode=True)
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (1 if e.code else 0)
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
        while _timers:  # unwound in time
            _timers.pop().cancel()
    if _interrupted.is_set():  # click turns KeyboardInterrupt into Abort (exit 1)
        _interrupted.clear()
        return EXIT_INTERRUPTED
    return code


if __name__ == "__main__":
    sys.exit(main())
