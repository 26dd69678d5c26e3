"""The `mglru` command line: one entry point, subcommands in sibling modules.

Each subcommand lives in its own module (`presets.py`, `bench.py`, ...) and is
imported only when it runs, so `mglru lru-gen ...` on the host loads neither
numpy nor numba. Errors a user can cause print one line and exit non-zero,
never a traceback. A closed pipe (`mglru presets | head -1`) ends the command
quietly with 141, as a shell reports a process killed by SIGPIPE.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import sys
import threading

import click

__all__ = ["main", "cli", "EXIT_BROKEN_PIPE"]

#: 128 + SIGPIPE: what a shell reports for `yes | head -1`'s `yes`
EXIT_BROKEN_PIPE = 141

#: command name -> (module, attribute), in help order
SUBCOMMANDS = {
    "presets": ("mglru.cli.presets", "presets"),
    "bench": ("mglru.cli.bench", "bench"),
    "lru-gen": ("mglru.cli.lru_gen", "lru_gen"),
    "access-tracking-perf-test": ("mglru.cli.access_tracking", "access_tracking_perf_test"),
    "reproduce": ("mglru.cli.reproduce", "reproduce"),
    "conformance": ("mglru.cli.conformance", "conformance"),
    "replay": ("mglru.cli.replay", "replay"),
    "experiment": ("mglru.cli.experiment", "experiment"),
}
#: `mglru --help`'s one-liners, so listing the commands imports none of them (a test keeps
#: them equal to each command's own first docstring line)
SUMMARIES = {
    "presets": "List the kernel presets (versions and what-ifs) and their differences.",
    "bench": "Scale benchmarks (figures go to benchmarks/results when recorded).",
    "lru-gen": "Read and drive the kernel's lru_gen interface (debugfs), on the host or "
               "simulated.",
    "access-tracking-perf-test": "KVM's access_tracking_perf_test (with the v4 series' "
                                 "-l/-p/-r) on a kernel.",
    "reproduce": "Reproduce the seed's published numbers with the simulated kernel.",
    "conformance": "Run scenarios on stock kernels in QEMU and on the matching presets; "
                   "compare.",
    "replay": "Replay a libCacheSim oracleGeneral or CSV trace (objects mapped onto pages).",
    "experiment": "Sweep a study's grid of simulated runs (locally or on Dask) and report the "
                  "results.",
}


class _LazyGroup(click.Group):
    """A group whose subcommands are imported when asked for (help lists import them all)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(SUBCOMMANDS) + [c for c in self.commands if c not in SUBCOMMANDS]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from SUMMARIES: `mglru --help` imports no subcommand."""
        with formatter.section("Commands"):
            formatter.write_dl(list(SUMMARIES.items()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:  # a command added with add_command()
            return super().get_command(ctx, cmd_name)
        module, attr = SUBCOMMANDS[cmd_name]
        try:
            return getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as e:  # a subcommand module not written yet
            if e.name != module:
                raise
            return None

    def invoke(self, ctx: click.Context):  # noqa: ANN201 - click's signature
        """Run the subcommand; a reader that went away ends it quietly (EXIT_BROKEN_PIPE)."""
        try:
            rv = super().invoke(ctx)
            sys.stdout.flush()
        except BrokenPipeError:
            _quiet_stdout()
            ctx.exit(EXIT_BROKEN_PIPE)
        return rv


class _StderrHandler(logging.StreamHandler):
    """Log records on the current sys.stderr (click's test runner swaps it)."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self):  # noqa: ANN201 - logging's attribute
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:  # noqa: ANN001 - set by StreamHandler.__init__
        pass


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return text if record.levelno < logging.WARNING else \
            f"{record.levelname.lower()}: {text}"


def setup_logging(verbose: int, quiet: int) -> None:
    """The `mglru` logger on stderr: INFO by default, -v DEBUG, -q warnings, -qq errors only."""
    logger = logging.getLogger("mglru")
    for h in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(h)
    handler = _StderrHandler()
    handler.setFormatter(_Format("%(message)s"))
    logger.addHandler(handler)
    logger.propagate = False
    level = logging.INFO + 10 * (quiet - verbose)
    logger.setLevel(min(max(level, logging.DEBUG), logging.CRITICAL))


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]},
             epilog="Shell completion (bash): eval \"$(_MGLRU_COMPLETE=bash_source mglru)\" "
                    "(zsh_source, fish_source for zsh and fish). "
                    "Guide: docs/guide.md in the sources.")
@click.version_option(package_name="mglru")
@click.option("-v", "--verbose", count=True, help="more log lines on stderr (repeatable)")
@click.option("-q", "--quiet", count=True,
              help="fewer log lines on stderr: -q warnings and errors, -qq errors only")
def cli(verbose: int, quiet: int) -> None:
    """Executable model of Linux MGLRU with secondary-MMU (KVM) aging, and lru_gen tools.

    Results go to stdout, or as JSON to `--json FILE` ('-': stdout, and then
    every other line goes to stderr); progress and log lines go to stderr.
    """
    setup_logging(verbose, quiet)


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


#: exit code after Ctrl-C (128 + SIGINT), as shells report it
EXIT_INTERRUPTED = 130
#: seconds a Ctrl-C'd command gets to unwind before the process exits anyway; the
#: compiled kernels are `nogil`, so the timer's thread runs even while one of them does
#: (Python delivers the KeyboardInterrupt only when the kernel returns)
INTERRUPT_GRACE_S = 0.5

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
