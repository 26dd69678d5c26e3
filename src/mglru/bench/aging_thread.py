"""The aging side of the `-p` scenario: the aging thread and the driver that feeds it.

Mechanism. The aging thread runs passes back to back until the vCPUs are done,
as `run_benchmark` in access_tracking_perf_test does (seed v4 7/7). A pass pays
`aging_pass_fixed`, then parks (`park()`): what the pass walks is not known to
the timing layer. The driver (`drive_aging`) calls a pass function, which
charges each chunk of the walk as it happens (`charge`: unpark the thread with
("chunk", ChunkWork) and run the simulation until it has paid for it and parked
again, so the clock moves and the vCPUs fault meanwhile), and returns how many
folios `inc_min_seq` moves up; the thread pays those under lru_lock, in
MAX_LRU_BATCH holds, and the pass ends.

The scenario's pass function runs the functional pass through the kernel's ABI
(`mglru.bench.lru_gen_bench`); tests hand made-up chunks to the same thread.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mglru.bench.chunks import ChunkWork, chunk_steps
from mglru.lru_gen.helpers import MAX_LRU_BATCH
from mglru.timing.steps import WRITE, Batch, Locked, cost, park

if TYPE_CHECKING:
    from mglru.bench.fault import VmLocks
    from mglru.timing.costs import CostModel
    from mglru.timing.sim import TimingSim
    from mglru.timing.threads import Thread

__all__ = ["AgingRecord", "aging_thread", "charge", "drive_aging"]


@dataclass(slots=True)
class AgingRecord:
    """What the aging thread measured, as the selftest reports it.

    Attributes:
        started_at: when the loop started.
        finished_at: when the last pass ended.
        pass_ns: each pass's duration.
        pass_walked: per pass, present PTEs the walk examined.
        pass_faulted: per pass, pages the vCPUs had faulted when it started
            (empty unless the thread is given `pages_at`).
    """

    started_at: int | None = None
    finished_at: int | None = None
    pass_ns: list[int] = field(default_factory=list)
    pass_walked: list[int] = field(default_factory=list)
    pass_faulted: list[int] = field(default_factory=list)

    @property
    def passes(self) -> int:
        """Passes completed."""
        return len(self.pass_ns)

    @property
    def avg_pass_ns(self) -> float | None:
        """Total aging time / passes (the selftest's "avg pass duration")."""
        if not self.pass_ns or self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) / len(self.pass_ns)


def aging_thread(sim: TimingSim, locks: VmLocks, record: AgingRecord, done: Callable[[], bool],
                 *, costs: Callable[[], CostModel] | None = None,
                 pages_at: Callable[[int], int] | None = None) -> Generator:
    """Aging passes until `done()` holds at a pass boundary (see the module docstring).

    Args:
        sim: the event loop.
        locks: the VM's shared objects.
        record: filled with the start, end and per-pass numbers.
        done: checked before each pass (e.g. `FaultProgress.all_done`).
        costs: the costs of the moment, asked for each chunk (e.g.
            `FaultLoad.aging_costs`: the walk slowed by the faulting vCPUs);
            default `sim.costs`.
        pages_at: pages faulted at a time, recorded at each pass's start.
    """
    costs_now = costs if costs is not None else (lambda: sim.costs)
    cache: dict = {}
    record.started_at = sim.now
    while not done():
        t0 = sim.now
        if pages_at is not None:
            record.pass_faulted.append(pages_at(sim.now))
        record.pass_walked.append(0)
        yield cost(sim.costs.aging_pass_fixed)
        work = yield park()
        while work[0] == "chunk":
            record.pass_walked[-1] += work[1].ptes
            yield from chunk_steps(costs_now(), locks, work[1], cache)
            work = yield park()
        moved = work[1]
        c = costs_now()
        if moved:
            # inc_max_seq -> inc_min_seq: MAX_LRU_BATCH folios per lru_lock hold
            full, rest = divmod(moved, MAX_LRU_BATCH)
            if full:
                yield Batch(full, (Locked(locks.lru_lock, WRITE,
                                          MAX_LRU_BATCH * c.inc_min_seq_folio),))
            if rest:
                yield Batch(1, (Locked(locks.lru_lock, WRITE, rest * c.inc_min_seq_folio),))
        record.pass_ns.append(sim.now - t0)
    record.finished_at = sim.now


def charge(sim: TimingSim, th: Thread, work: ChunkWork) -> None:
    """Hand the parked aging thread one chunk and run the simulation until it parks again.

    Raises:
        RuntimeError: the thread ended instead (it was not in a pass).
    """
    sim.unpark(th, ("chunk", work))
    sim.run(stop=lambda: th.parked)
    if not th.parked:
        raise RuntimeError("the aging thread ended in the middle of a pass")


def drive_aging(sim: TimingSim, th: Thread, one_pass: Callable[[], int]) -> None:
    """Run the simulation to its end, calling `one_pass()` at each pass's walk.

    `one_pass` charges the pass's chunks (`charge`) and returns the folios
    inc_min_seq moves up at its end.
    """
    while True:
        sim.run(stop=lambda: th.parked)
        if not th.parked:
            break
        sim.unpark(th, ("end", one_pass()))
