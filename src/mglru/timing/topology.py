"""The host's topology: sockets (NUMA nodes), where threads run, what crosses sockets.

Mechanism. A host with 112+ CPUs has two or more sockets, each its own NUMA
node with its own last-level cache and memory controllers. Three things follow
for the `-p` benchmark:

* placement: the scheduler keeps new tasks on the parent's node only while the
  imbalance is small. `adjust_numa_imbalance` (kernel/sched/fair.c) tolerates
  at most NUMA_IMBALANCE_MIN (2) tasks of difference between nodes with spare
  CPUs, and the periodic balancer (`calculate_imbalance`) moves half of the
  difference, so busy vCPU threads end up spread evenly over the nodes
  (`Topology.place`): one or two vCPUs stay on node 0, more alternate;
* per-node objects: a fault allocates on the faulting CPU's node (local
  allocation), so zone->lock and the pcp lists (mm/page_alloc.c:
  `rmqueue_bulk`) and the memcg's lruvec with its lru_lock (one per memcg and
  node; mm/swap.c: `folio_batch_move_lru`) are per node; the VM's
  kvm->mmu_lock, the mm's mmap_lock and the memcg's page_counter
  (mm/page_counter.c: `page_counter_try_charge`) are one line for all;
* cache-line transfers: a line last written on another socket crosses the
  interconnect, `cacheline_transfer_remote` instead of `cacheline_transfer`
  (`transfer_ns`); a lock hand-off is a few such transfers, so it grows by the
  same ratio (`handoff_ns`).

The memory-system load behind `fault_contention` (shared LLC, mesh, memory
controllers) is per socket: a vCPU on another socket adds
`fault_contention_remote` instead (`mglru.bench.load.load_factor`).

Future optimizations:
1. sub-NUMA clustering (several nodes per socket) and SMT siblings sharing a core.
2. NUMA balancing moving a vCPU's pages after it migrates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mglru.timing.costs import CostModel

__all__ = ["NUMA_IMBALANCE_MIN", "Topology", "ONE_SOCKET", "SEED_HOST", "transfer_ns",
           "handoff_ns"]

#: tasks of imbalance between NUMA nodes the scheduler leaves alone
#: (kernel/sched/fair.c: NUMA_IMBALANCE_MIN, `adjust_numa_imbalance`)
NUMA_IMBALANCE_MIN = 2


@dataclass(frozen=True, slots=True)
class Topology:
    """Sockets of a host, one NUMA node each.

    Attributes:
        sockets: sockets (= NUMA nodes).
        cpus_per_socket: CPUs of a socket (threads placed there at most).
    """

    sockets: int
    cpus_per_socket: int

    def __post_init__(self) -> None:
        if self.sockets < 1 or self.cpus_per_socket < 1:
            raise ValueError(f"a topology needs >= 1 socket of >= 1 CPU; got "
                             f"{self.sockets} x {self.cpus_per_socket}")

    @property
    def cpus(self) -> int:
        """CPUs of the host."""
        return self.sockets * self.cpus_per_socket

    def place(self, nr_threads: int) -> tuple[int, ...]:
        """The node each of `nr_threads` busy threads runs on (thread 0 is the first).

        Up to NUMA_IMBALANCE_MIN threads stay on node 0 (the imbalance the
        scheduler tolerates); more are spread evenly, thread i on node i mod
        sockets (the sockets have equal CPUs, so none overflows first).

        Raises:
            ValueError: more threads than CPUs.
        """
        if nr_threads > self.cpus:
            raise ValueError(f"{nr_threads} busy threads do not fit {self.cpus} CPUs")
        if nr_threads <= min(NUMA_IMBALANCE_MIN, self.cpus_per_socket):
            return (0,) * nr_threads
        return tuple(i % self.sockets for i in range(nr_threads))


#: one socket: every transfer is on-socket (the default of generic runs)
ONE_SOCKET = Topology(1, 1 << 16)
#: the cover letter's host, assumed: it ran 112 vCPUs plus the aging thread, so it
#: has more than 112 CPUs, hence two sockets; 2 x 112 CPUs (56 cores, SMT-2) each
SEED_HOST = Topology(2, 112)


def transfer_ns(c: CostModel, remote_share: float) -> float:
    """A line transfer's cost when `remote_share` of them come from another socket."""
    return c.cacheline_transfer + remote_share * (c.cacheline_transfer_remote
                                                  - c.cacheline_transfer)


def handoff_ns(c: CostModel, remote_share: float) -> float:
    """A lock hand-off's cost when `remote_share` of them cross sockets.

    A hand-off is a few transfers of the lock word and the waiters' queue
    nodes (kernel/locking/qrwlock.c: `queued_read_lock_slowpath` passes the
    wait_lock on), so it scales with the transfer cost.
    """
    if remote_share <= 0.0 or c.cacheline_transfer <= 0:
        return float(c.lock_handoff)
    return c.lock_handoff * transfer_ns(c, remote_share) / c.cacheline_transfer
