"""Progress of long runs on stderr: a tqdm bar on a terminal, one log line per step elsewhere.

A bar suits a person watching; a log (CI, `2> run.log`, click's test runner)
wants one line per finished step, `[ 3/24] ...`, through the `mglru` logger,
so `mglru -q` silences both.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["progress_reporter"]

log = logging.getLogger("mglru")


@contextmanager
def progress_reporter(total: int, what: str,
                      quiet: bool = False) -> Iterator[Callable[[str], None]]:
    """Yield `report(text)`, to be called once per finished step of `total`."""
    t0 = time.perf_counter()
    done = 0
    enabled = not quiet and log.isEnabledFor(logging.INFO)
    bar = None
    if enabled and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=total, desc=what, unit="step", file=sys.stderr, leave=False,
                   dynamic_ncols=True)

    def report(text: str) -> None:
        nonlocal done
        done += 1
        if not enabled:
            return
        if bar is not None:
            bar.set_postfix_str(text.strip(), refresh=False)
            bar.update(1)
            return
        log.info("[%*d/%d] %s (%.0f s in all)", max(2, len(str(total))), done, total, text,
                 time.perf_counter() - t0)
        for h in log.handlers:
            h.flush()

    try:
        yield report
    finally:
        if bar is not None:
            bar.close()
            log.info("%s: %d steps in %.0f s", what, done, time.perf_counter() - t0)
