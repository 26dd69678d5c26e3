"""Fake `run_point`s for the harness tests: importable by name from worker processes.

Each returns a row with every metric of the result row, computed from the point's
parameters, so a test can tell which point a row came from.
"""

from __future__ import annotations

import os
import time
from typing import Any

from mglru.experiment.report import METRICS

#: run_point raises for points with this `x` (error rows)
FAIL_X = 13


def _metrics(point: dict[str, Any]) -> dict[str, Any]:
    x = float(point.get("x", point.get("locality", 1)))
    preset = str(point.get("preset", ""))
    row = {m: round(x + len(m) / 10, 3) for m in METRICS}
    # thread-question-like: the seed preset's aging costs overhead, saves refault cost
    seeded = preset.startswith("seed")
    row["refault_cost_ms"] = round(100.0 / x + (0 if seeded else 50.0), 3)
    row["overhead_ms"] = round(5.0 * x + (20.0 if seeded else 0.0), 3)
    row["combined_cost_ms"] = round(row["refault_cost_ms"] + row["overhead_ms"], 3)
    row["wss_error"] = 0.1 if point.get("cap_0x8") else 0.3
    row["refaults"] = int(x) * 10
    return row


def run_point(point: dict[str, Any]) -> dict[str, Any]:
    """A row: the point, plus metrics; raises for x == FAIL_X."""
    if point.get("x") == FAIL_X:
        raise RuntimeError(f"x={FAIL_X} fails on purpose")
    return {**point, **_metrics(point)}


def interrupting_run_point(point: dict[str, Any]) -> dict[str, Any]:
    """As run_point, but Ctrl-C (KeyboardInterrupt) on the point with `stop = true`."""
    if point.get("stop"):
        raise KeyboardInterrupt
    return run_point(point)


def slow_run_point(point: dict[str, Any]) -> dict[str, Any]:
    """As run_point, but the points with x > 1 sleep for a minute (to be interrupted).

    Each sleeper writes its process id into $EXP_RUNNERS_PIDS/ first.
    """
    if point.get("x", 0) > 1:
        folder = os.environ.get("EXP_RUNNERS_PIDS")
        if folder:
            with open(os.path.join(folder, f"{os.getpid()}"), "w") as f:
                f.write(point["run_id"])
        time.sleep(60)
    return run_point(point)


def pid_run_point(point: dict[str, Any]) -> dict[str, Any]:
    """As run_point, with the worker's process id in the row."""
    return {**run_point(point), "pid": os.getpid()}


def not_a_dict(point: dict[str, Any]) -> list:
    """A broken runner: returns a list."""
    return [point]


def check_point(point: dict[str, Any]) -> None:
    """The runner module's check before work: `bogus` is not a known key."""
    if "bogus" in point:
        raise ValueError("unknown point key(s) bogus")
