"""One guest page fault of the `-p` scenario, and the VM's shared kernel objects it touches.

A VM's shared kernel objects are a `VmLocks`: kvm->mmu_lock (a qrwlock on
x86/arm64, a spinlock elsewhere), per NUMA node the memcg lruvec's lru_lock and
zone->lock (a fault allocates on its CPU's node: `mglru.timing.topology`), the
mmap_lock count word and the memcg page counter (cache lines: the benchmark has
no mmap_lock writer), and RCU. One fault (`fault_body`) is: VM exit, host fault
(GUP takes mmap_lock for read: 2 atomics on its count word), page zeroing, memcg
charge (the shared page counter every MEMCG_CHARGE_BATCH pages), a pcp refill
under zone->lock every PCP_BATCH pages, a folio batch drained under lru_lock
every FOLIO_BATCH_SIZE pages, the SPTE install under mmu_lock for read, and the
guest's access. The contention between vCPUs comes from these shared objects.

Future optimizations:
1. THP faults (one PMD-sized folio per fault) for backing sources with THP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mglru.timing.locks import READ, WRITE, CacheLine, QRWLock, Rcu, SpinLock
from mglru.timing.steps import Atomic, Locked, Segment, Work

if TYPE_CHECKING:
    from mglru.timing.costs import CostModel
    from mglru.timing.sim import TimingSim

__all__ = ["PTRS_PER_PTE", "FOLIO_BATCH_SIZE", "MEMCG_CHARGE_BATCH", "PCP_BATCH", "LOCK_MODES",
           "VmLocks", "fault_body"]

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
        lru_locks: per node, lruvec->lru_lock of the VM's memcg there.
        zone_locks: per node, zone->lock of its zone.
        mmap_lock: the mmap_lock count word (readers only in the benchmark).
        memcg_counter: the memcg's page_counter (one for all nodes).
        rcu: RCU of the machine.
    """

    mmu_lock: QRWLock | SpinLock
    lru_locks: tuple[SpinLock, ...]
    zone_locks: tuple[SpinLock, ...]
    mmap_lock: CacheLine
    memcg_counter: CacheLine
    rcu: Rcu

    @property
    def lru_lock(self) -> SpinLock:
        """Node 0's lru_lock (the aging thread's: it runs there)."""
        return self.lru_locks[0]

    @property
    def zone_lock(self) -> SpinLock:
        """Node 0's zone->lock."""
        return self.zone_locks[0]

    @classmethod
    def create(cls, sim: TimingSim, *, mmu_lock: str = "qrwlock", prefix: str = "",
               nodes: int = 1) -> VmLocks:
        """Create the objects in `sim`, named `{prefix}mmu_lock` etc.

        Args:
            sim: the event loop.
            mmu_lock: "qrwlock" (x86, arm64) or "spinlock" (riscv, loongarch, mips, powerpc).
            prefix: name prefix, for several VMs in one simulation.
            nodes: NUMA nodes (lru_lock and zone->lock per node; node 0's are
                named `lru_lock`, `zone_lock`, node k's `lru_lock@k`, `zone_lock@k`).
        """
        if mmu_lock not in ("qrwlock", "spinlock"):
            raise ValueError(f"mmu_lock must be 'qrwlock' or 'spinlock'; got {mmu_lock!r}")
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1; got {nodes}")
        make = sim.qrwlock if mmu_lock == "qrwlock" else sim.spinlock
        at = ["", *(f"@{k}" for k in range(1, nodes))]
        return cls(make(f"{prefix}mmu_lock"),
                   tuple(sim.spinlock(f"{prefix}lru_lock{a}") for a in at),
                   tuple(sim.spinlock(f"{prefix}zone_lock{a}") for a in at),
                   sim.line(f"{prefix}mmap_lock"), sim.line(f"{prefix}memcg_counter"), sim.rcu)

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


def fault_body(costs: CostModel, vm: VmLocks, node: int = 0) -> tuple[Segment, ...]:
    """The segments of one guest page fault (4 KiB, anon, write) on NUMA `node`.

    The pcp refill (mm/page_alloc.c: `rmqueue_bulk`) and the folio batch drain
    (mm/swap.c: `folio_batch_move_lru`) take the locks of the node the page
    comes from, the faulting CPU's; the memcg charge (mm/memcontrol.c:
    `try_charge_memcg`, the per-cpu stock refilled by MEMCG_CHARGE_BATCH) the
    one page_counter. See the module docstring.
    """
    return (
        Work(costs.kvm_exit + costs.host_fault + costs.page_zero + costs.memcg_charge),
        Atomic(vm.mmap_lock, 2),
        Atomic(vm.memcg_counter, 1, every=MEMCG_CHARGE_BATCH),
        Locked(vm.zone_locks[node], WRITE, costs.pcp_refill, every=PCP_BATCH),
        Locked(vm.lru_locks[node], WRITE, costs.lru_add_folio * FOLIO_BATCH_SIZE,
               every=FOLIO_BATCH_SIZE),
        Locked(vm.mmu_lock, READ if isinstance(vm.mmu_lock, QRWLock) else WRITE,
               costs.spte_install),
        Work(costs.guest_page_access),
    )
