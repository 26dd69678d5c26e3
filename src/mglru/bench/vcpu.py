"""The vCPU side of the `-p` scenario: the VM's shared kernel objects and the fault loop.

Mechanism. A VM's shared kernel objects are a `VmLocks`: kvm->mmu_lock (a
qrwlock on x86/arm64, a spinlock elsewhere), the memcg lruvec's lru_lock,
zone->lock, the mmap_lock count word and the memcg page counter (cache lines:
the benchmark has no mmap_lock writer), and RCU. A vCPU faults its region in
(`vcpu_fault_region`), one `Batch` of `batch_pages` faults per step. One fault
(`fault_body`) is: VM exit, host fault (GUP takes mmap_lock for read: 2 atomics
on its count word), page zeroing, memcg charge (the shared page counter every
MEMCG_CHARGE_BATCH pages), a pcp refill under zone->lock every PCP_BATCH pages,
a folio batch drained under lru_lock every FOLIO_BATCH_SIZE pages, the SPTE
install under mmu_lock for read, and the guest's access. The contention between
vCPUs comes from these shared objects, plus the memory-system load of the
others (`mglru.bench.load.FaultLoad`), when the loop is given one.

Future optimizations:
1. a whole vCPU region as one batch when no aging thread runs.
2. THP faults (one PMD-sized folio per fault) for backing sources with THP.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mglru.timing.locks import CacheLine, QRWLock, Rcu, SpinLock
from mglru.timing.steps import READ, WRITE, Atomic, Batch, Locked, Segment, Work

if TYPE_CHECKING:
    from mglru.bench.load import FaultLoad
    from mglru.timing.costs import CostModel
    from mglru.timing.sim import TimingSim

__all__ = ["PTRS_PER_PTE", "FOLIO_BATCH_SIZE", "MEMCG_CHARGE_BATCH", "PCP_BATCH", "LOCK_MODES",
           "VmLocks", "FaultProgress", "fault_body", "vcpu_fault_region"]

#: PTEs per PTE table (x86-64, 4 KiB pages)
PTRS_PER_PTE = 512
#: folios per folio_batch before the LRU add drains it (v6.10: PAGEVEC_SIZE 15)
FOLIO_BATCH_SIZE = 15
#: pages charged to the shared page counter at once (mm/memcontrol.c)
MEMCG_CHARGE_BATCH = 64
#: pages per pcp refill (pcp->batch on a large zone)
PCP_BATCH = 63
#: lock modes of an aging notifier call (mglru.kvm.accounting's LOCK_* plus "none")
LOCK_MODES = ("write", "read", "spin", "rcu", "rmap", "none")


@dataclass(frozen=True, slots=True)
class VmLocks:
    """The shared kernel objects a VM's faults and aging touch.

    Attributes:
        mmu_lock: kvm->mmu_lock: a QRWLock (x86, arm64) or a SpinLock.
        lru_lock: lruvec->lru_lock of the VM's memcg on its node.
        zone_lock: zone->lock of the node's zone.
        mmap_lock: the mmap_lock count word (readers only in the benchmark).
        memcg_counter: the memcg's page_counter.
        rcu: RCU of the machine.
    """

    mmu_lock: QRWLock | SpinLock
    lru_lock: SpinLock
    zone_lock: SpinLock
    mmap_lock: CacheLine
    memcg_counter: CacheLine
    rcu: Rcu

    @classmethod
    def create(cls, sim: TimingSim, *, mmu_lock: str = "qrwlock", prefix: str = "") -> VmLocks:
        """Create the objects in `sim`, named `{prefix}mmu_lock` etc.

        Args:
            sim: the event loop.
            mmu_lock: "qrwlock" (x86, arm64) or "spinlock" (riscv, loongarch, mips, powerpc).
            prefix: name prefix, for several VMs in one simulation.
        """
        if mmu_lock not in ("qrwlock", "spinlock"):
            raise ValueError(f"mmu_lock must be 'qrwlock' or 'spinlock'; got {mmu_lock!r}")
        make = sim.qrwlock if mmu_lock == "qrwlock" else sim.spinlock
        return cls(make(f"{prefix}mmu_lock"), sim.spinlock(f"{prefix}lru_lock"),
                   sim.spinlock(f"{prefix}zone_lock"), sim.line(f"{prefix}mmap_lock"),
                   sim.line(f"{prefix}memcg_counter"), sim.rcu)

    def lock_for(self, mode: str) -> tuple[QRWLock | SpinLock | Rcu, str] | None:
        """The (lock, READ/WRITE) an aging call in `mode` takes; None for no lock.

        Raises:
            ValueError: unknown mode, or a rwlock mode on a spinlock VM (or vice versa).

        Which lock each arch and version takes: kvm_handle_hva_range and the arch
        handlers (virt/kvm/kvm_main.c; seed v4 4-6/7).
        """
        if mode not in LOCK_MODES:
            raise ValueError(f"aging lock mode must be one of {', '.join(LOCK_MODES)}; "
                             f"got {mode!r}")
        if mode in ("none", "rmap"):
            return None
        if mode == "rcu":
            return self.rcu, READ
        is_spin = isinstance(self.mmu_lock, SpinLock)
        if (mode == "spin") != is_spin:
            raise ValueError(f"aging call in mode {mode!r} on a VM whose mmu_lock is a "
                             f"{self.mmu_lock.kind}")
        return self.mmu_lock, READ if mode == "read" else WRITE


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


def fault_body(costs: CostModel, vm: VmLocks) -> tuple[Segment, ...]:
    """The segments of one guest page fault (4 KiB, anon, write). See the module docstring."""
    return (
        Work(costs.kvm_exit + costs.host_fault + costs.page_zero + costs.memcg_charge),
        Atomic(vm.mmap_lock, 2),
        Atomic(vm.memcg_counter, 1, every=MEMCG_CHARGE_BATCH),
        Locked(vm.zone_lock, WRITE, costs.pcp_refill, every=PCP_BATCH),
        Locked(vm.lru_lock, WRITE, costs.lru_add_folio * FOLIO_BATCH_SIZE,
               every=FOLIO_BATCH_SIZE),
        Locked(vm.mmu_lock, READ if isinstance(vm.mmu_lock, QRWLock) else WRITE,
               costs.spte_install),
        Work(costs.guest_page_access),
    )


def vcpu_fault_region(sim: TimingSim, vm: VmLocks, pages: int, *, batch_pages: int = PTRS_PER_PTE,
                      progress: FaultProgress | None = None, index: int = 0,
                      load: FaultLoad | None = None) -> Generator:
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
    """
    c = sim.costs
    bodies: dict[float | None, tuple[Segment, ...]] = {}
    done, t0 = 0, sim.now
    while done < pages:
        n = min(batch_pages, pages - done)
        level = load.others(index) if load is not None else None
        body = bodies.get(level)
        if body is None:
            body = bodies[level] = fault_body(c if load is None else load.fault_costs(level), vm)
        if progress is not None:
            rate = (sim.now - t0) / done if done else float(sum(
                seg.ns for seg in body if isinstance(seg, Work)))
            progress.running[index] = (sim.now, n, rate, sim.active)
        t_step = sim.now
        yield Batch(n, body, offset=done)
        done += n
        if progress is not None:
            progress.pages_done[index] = done
        if load is not None:
            load.step_done(index, level, (sim.now - t_step) / n)
    if progress is not None:
        progress.running[index] = (sim.now, 0, 0.0, None)
        progress.finished_at[index] = sim.now
    if load is not None:
        load.finish(index)
