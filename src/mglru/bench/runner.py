"""Benchmark records: one per fresh interpreter (so peak RSS is the run's own), as JSON.

Each benchmark module is runnable (`python -m MODULE ARGS...`) and prints one JSON
record; `run_fresh` runs it and parses the record; `write_json` saves records.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["peak_rss_mib", "run_fresh", "write_json"]


def peak_rss_mib() -> float:
    """This process's peak resident set size in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(path: str, records: Any) -> None:
    """Write `records` to `path` as indented JSON with a final newline."""
    with open(path, "w") as f:
        json.dump(records, f, indent=2)
        f.write("\n")


def run_fresh(module: str, runs: list[list[str]], label: Callable[[list[str]], str],
              progress: Callable[[dict], None] | None = None) -> list[dict[str, Any]]:
    """`python -m module *args` for each args list; returns their JSON records in order.

    Raises:
        RuntimeError: a run failed (the message names it and its last error line).
    """
    out = []
    for args in runs:
        proc = subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                              text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark of {label(args)} failed: "
                               f"{proc.stderr.strip().splitlines()[-1:]}")
        rec = json.loads(proc.stdout)
        out.append(rec)
        if progress:
            progress(rec)
    return out
