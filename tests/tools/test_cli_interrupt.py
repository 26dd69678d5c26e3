"""Ctrl-C ends a CLI command promptly with exit 130 and no traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")
ENTRY = "import sys; from mglru.cli import main; sys.exit(main(sys.argv[1:]))"
#: a command that interrupts itself, then swallows (or lets through) the KeyboardInterrupt
SELF_INTERRUPT = """
import os, signal, sys, time, click
import mglru.cli as c
@click.command("selfint")
@click.argument("swallow", type=int)
def selfint(swallow):
    try:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(1)
    except KeyboardInterrupt:
        if not swallow:
            raise
    time.sleep(5)  # a library ate the interrupt and goes on
    print("finished")
c.cli.add_command(selfint)
sys.exit(c.main(["selfint", sys.argv[1]]))
"""


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=SRC, PYTHONUNBUFFERED="1")


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("swallow", [0, 1])
def test_ctrl_c_exits_130_even_if_swallowed(swallow: int) -> None:
    """KeyboardInterrupt reaching click (which would print "Aborted!" and exit 1) or
    swallowed by a library (the run would finish and exit 0): exit 130, promptly."""
    t = time.monotonic()
    p = subprocess.run([sys.executable, "-c", SELF_INTERRUPT, str(swallow)], env=_env(),
                       capture_output=True, text=True, timeout=120, preexec_fn=_default_sigint)
    assert p.returncode == 130, p.stdout + p.stderr
    assert "finished" not in p.stdout and "Traceback" not in p.stderr
    assert time.monotonic() - t < 60  # generous: it includes the import of mglru.cli


def test_ctrl_c_mid_run_exits_130() -> None:
    """SIGINT during a selftest run: exit 130, no traceback; the bound is generous for a
    loaded machine (the unwind waits for the current numpy/numba call, then 0.5 s)."""
    p = subprocess.Popen([sys.executable, "-c", ENTRY, "access-tracking-perf-test", "-b", "1G",
                          "-v", "2"], env=_env(), text=True, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, preexec_fn=_default_sigint)
    assert p.stdout is not None
    out = []
    for line in p.stdout:
        out.append(line)
        if "guest physical test memory" in line:
            break
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    rest, _ = p.communicate(timeout=60)
    text = "".join(out) + rest
    assert p.returncode == 130, text[-2000:]
    assert "Traceback" not in text
    assert time.monotonic() - t < 15
