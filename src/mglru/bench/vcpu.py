"""The vCPU side of the `-p` scenario: the fault loop and its progress.

A vCPU faults its region in (`vcpu_fault_region`), one `Batch` of `batch_pages`
faults (`mglru.bench.fault.fault_body`) per step. Given a `FaultLoad`
(`mglru.bench.load`), each step's memory-bound work is slowed by the other
vCPUs' load and the step's duty goes back into it. `FaultProgress` says how far
each vCPU has got at a simulated time, its running step pro rata.

Future optimizations:
1. a whole vCPU region as one batch when no aging thread runs.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mglru.bench.fault import PTRS_PER_PTE, VmLocks, fault_body
from mglru.timing.locks import QRWLock
from mglru.timing.steps import Batch, Segment, Work

if TYPE_CHECKING:
    from mglru.bench.load import FaultLoad
    from mglru.timing.sim import TimingSim

__all__ = ["FaultProgress", "vcpu_fault_region"]


@dataclass(slots=True)
class FaultProgress:
    """Pages faulted so far per vCPU and finish times.

    `pages_done` is updated when a step ends; `pages_at(now)` also counts the
    running step's faults pro rata (aggregated mode: over the batch's planned
    span; exact mode: at the rate of the vCPU's previous steps), so that coarse
    steps do not make aging passes see stale page counts.
    """

    pages_done: list[int]
    finished_at: list[int | None]
    #: per vCPU: (start of the running step, its pages, ns per page so far, thread)
    running: list[tuple] = field(default_factory=list)

    @classmethod
    def create(cls, nr_vcpus: int) -> FaultProgress:
        """Progress of `nr_vcpus` vCPUs at zero."""
        return cls([0] * nr_vcpus, [None] * nr_vcpus, [(0, 0, 0.0, None)] * nr_vcpus)

    def vcpu_pages_at(self, now: int) -> list[int]:
        """Pages faulted by each vCPU at `now`, its running step pro rata.

        This is what a pass starting at `now` should find populated in the
        functional model (fault it in up to these counts, then walk).
        """
        return [self.vcpu_pages(i, now) for i in range(len(self.pages_done))]

    def vcpu_pages(self, i: int, now: int) -> int:
        """Pages faulted by vCPU `i` at `now`, its running step pro rata."""
        done = self.pages_done[i]
        start, n, ns_per_page, th = self.running[i]
        if n:
            b0, b1 = th.batch_span if th is not None else (0, 0)
            if b0 == start and b1 > b0:
                done += min(n, n * (now - start) // (b1 - b0))
            elif ns_per_page > 0:
                done += min(n, int((now - start) / ns_per_page))
        return done

    def pages_at(self, now: int) -> int:
        """Pages faulted by all vCPUs at `now` (see `vcpu_pages_at`)."""
        return sum(self.vcpu_pages_at(now))

    def all_done(self) -> bool:
        """Every vCPU has finished its region."""
        return all(t is not None for t in self.finished_at)

    @property
    def total(self) -> int:
        """Pages faulted by all vCPUs."""
        return sum(self.pages_done)


def vcpu_fault_region(sim: TimingSim, vm: VmLocks, pages: int, *, batch_pages: int = PTRS_PER_PTE,
                      progress: FaultProgress | None = None, index: int = 0,
                      load: FaultLoad | None = None, node: int = 0) -> Generator:
    """vCPU `index` faulting in `pages` pages, one Batch of `batch_pages` faults per step.

    Args:
        sim: the event loop (for costs and the clock).
        vm: the VM's shared objects.
        pages: pages in the vCPU's region.
        batch_pages: faults per step (512 = one PTE table).
        progress: updated after every step, and with the finish time.
        index: this vCPU's index in `progress` and `load`.
        load: the memory-system load of the vCPUs: each step's memory-bound
            work is slowed by the others' load, and the step's duty goes back
            into it; None runs every fault at its cost.
        node: the NUMA node the vCPU runs on (its pages, zone->lock and lru_lock).
    """
    c = sim.costs
    rwlock = isinstance(vm.mmu_lock, QRWLock)
    bodies: dict[tuple[float, float] | None, tuple[Segment, ...]] = {}
    done, t0 = 0, sim.now
    while done < pages:
        n = min(batch_pages, pages - done)
        level = load.others(index) if load is not None else None
        body = bodies.get(level)
        if body is None:
            body = bodies[level] = fault_body(c if load is None else load.fault_costs(level), vm,
                                              node)
        if progress is not None:
            rate = (sim.now - t0) / done if done else float(sum(
                seg.ns for seg in body if isinstance(seg, Work)))
            progress.running[index] = (sim.now, n, rate, sim.active)
        t_step = sim.now
        th = sim.active
        w0 = th.lock_wait_ns.get(vm.mmu_lock, 0.0) if rwlock else 0.0
        yield Batch(n, body, offset=done)
        done += n
        if progress is not None:
            progress.pages_done[index] = done
        if load is not None:
            # mmu_lock's readers wait only behind a writer (see FaultLoad.step_done)
            blocked = (th.lock_wait_ns.get(vm.mmu_lock, 0.0) - w0) / n if rwlock else 0.0
            load.step_done(index, level, (sim.now - t_step) / n, blocked)
    if progress is not None:
        progress.running[index] = (sim.now, 0, 0.0, None)
        progress.finished_at[index] = sim.now
    if load is not None:
        load.finish(index)
