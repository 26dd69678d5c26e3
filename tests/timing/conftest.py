"""Helpers for the timing tests: processes that log (who, what, t)."""

from __future__ import annotations

import pytest

from mglru.timing import TimingSim, acquire, cost, zero_costs


class Log(list):
    """A timeline of (who, what, t) entries."""

    def proc(self, sim: TimingSim, name: str, lock, mode: str, start: int, hold: int):
        """A process: wait `start`, take `lock` in `mode`, hold it `hold` ns, release."""
        yield cost(start)
        self.append((name, "req", sim.now))
        with (yield acquire(lock, mode)):
            self.append((name, "got", sim.now))
            yield cost(hold)
        self.append((name, "rel", sim.now))


@pytest.fixture
def log() -> Log:
    """An empty timeline."""
    return Log()


@pytest.fixture
def sim0() -> TimingSim:
    """Four CPUs, every cost zero: times are the processes' own costs."""
    return TimingSim(cpus=4, costs=zero_costs())
