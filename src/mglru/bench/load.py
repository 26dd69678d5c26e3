"""The memory-system load of faulting vCPUs: shared-resource contention on the fault path.

Mechanism. Every vCPU busy with memory-bound work (weighted by its duty, the
share of its time it spends in it) on the same socket adds `fault_contention`
ns to the memory-bound work of another vCPU's fault (`fault_work_ns`), one on
another socket `fault_contention_remote` (sockets have their own LLC, mesh and
memory controllers: `mglru.timing.topology`); the same memory-system load slows
the memory-bound work of any thread on that socket by that fraction, the aging
walk's included. A vCPU waiting for a spinlock or a line gives its load back
(one holder works while the others wait, and waiters spin on their own MCS
node); one blocked behind a writer of mmu_lock keeps it (see
`FaultLoad.step_done`). Core-bound work (VM exit and entry, the notifier call
path, the debugfs round trip) is not slowed. A `FaultLoad` keeps the load of
one run: the vCPU loop (`mglru.bench.vcpu.vcpu_fault_region`) reports each
step's duty and takes its fault costs from it, the aging thread its walk costs.
"""

from __future__ import annotations

from mglru.bench.fault import PCP_BATCH
from mglru.timing.costs import CostModel

__all__ = ["FAULT_WORK", "AGING_WORK", "fault_work_ns", "load_factor", "quantize_load",
           "scaled_costs", "FaultLoad"]

#: memory-bound work of one fault: what the load of other faulting vCPUs slows down
#: (the VM exit and entry, `kvm_exit`, is core-bound and is not)
FAULT_WORK = ("host_fault", "page_zero", "memcg_charge", "spte_install", "guest_page_access",
              "lru_add_folio", "pcp_refill")
#: memory-bound work of the aging thread (page-table, SPTE and folio accesses); the
#: notifier call path, the handler entry and the debugfs round trip are core-bound
AGING_WORK = ("pte_table", "pte_walk", "folio_update_gen", "inc_min_seq_folio",
              "spte_test_clear")


def fault_work_ns(c: CostModel) -> int:
    """The memory-bound work of one fault at one vCPU (lru and pcp work amortized)."""
    return (c.host_fault + c.page_zero + c.memcg_charge + c.spte_install + c.guest_page_access
            + c.lru_add_folio + c.pcp_refill // PCP_BATCH)


def load_factor(c: CostModel, load: float, remote: float = 0.0) -> float:
    """How much slower memory-bound kernel work runs under `load` (+ `remote`).

    Shared-resource contention on the fault path: `load` is the number
    of other vCPUs on the same socket busy with memory-bound work (each vCPU
    counts with the share of its time it spends in it, its duty: about 0.6
    alone, less when it waits for locks), `remote` the same on other sockets.
    Each such vCPU adds `fault_contention` (`fault_contention_remote`) ns to the
    memory-bound work of a fault (`fault_work_ns`); the same memory-system load
    slows the memory-bound work of any thread by that fraction, the aging walk's
    included. The duty weights a vCPU by the share of its time in memory-bound
    work rather than in VM exits and waits (see `FaultLoad.step_done` for the
    waits behind a writer).
    """
    return 1.0 + (c.fault_contention * load + c.fault_contention_remote * remote) / fault_work_ns(c)


def quantize_load(load: float) -> float:
    """The load rounded to 1/8 (bodies and scaled costs are cached per value)."""
    return round(max(load, 0.0) * 8) / 8


def scaled_costs(c: CostModel, factor: float, keys: tuple[str, ...]) -> CostModel:
    """`c` with the costs of `keys` multiplied by `factor` (rounded to ns)."""
    if factor == 1.0:
        return c
    return c.replace(**{k: int(round(c[k] * factor)) for k in keys})


class FaultLoad:
    """The load of one run's vCPUs: the sum of their duties per node (see the module docstring).

    A vCPU's duty is the share of its time it spends in memory-bound work; alone
    (before its first step) that is its fault's memory-bound work over the whole
    fault. A finished vCPU counts 0. A load level is (same node, other nodes).

    Args:
        costs: the run's cost model.
        nr_vcpus: vCPUs.
        nodes: the NUMA node of each vCPU (default: all on node 0).
        aging_node: the aging thread's node.
    """

    def __init__(self, costs: CostModel, nr_vcpus: int, nodes: tuple[int, ...] | None = None,
                 aging_node: int = 0) -> None:
        self.costs = costs
        mem = fault_work_ns(costs)
        self._mem = mem
        alone = mem / max(1, mem + costs.kvm_exit)
        self.nodes = nodes if nodes is not None else (0,) * nr_vcpus
        if len(self.nodes) != nr_vcpus:
            raise ValueError(f"need a node for each of {nr_vcpus} vCPUs; got {len(self.nodes)}")
        self.aging_node = aging_node
        self.duty = [alone] * nr_vcpus
        self.node_load = [0.0] * (max((*self.nodes, aging_node)) + 1)
        for node in self.nodes:
            self.node_load[node] += alone
        self._aging: dict[tuple[float, float], CostModel] = {}

    @property
    def load(self) -> float:
        """The load of all vCPUs."""
        return sum(self.node_load)

    def _level(self, node: int, own: float) -> tuple[float, float]:
        """(same node without `own`, other nodes) of a thread on `node`, quantized."""
        local = self.node_load[node]
        return quantize_load(local - own), quantize_load(self.load - local)

    def others(self, i: int) -> tuple[float, float]:
        """The load of the vCPUs other than `i`: (same node, other nodes), quantized."""
        return self._level(self.nodes[i], self.duty[i])

    def fault_costs(self, level: tuple[float, float]) -> CostModel:
        """The costs of a fault under the others' load `level`."""
        return scaled_costs(self.costs, load_factor(self.costs, *level), FAULT_WORK)

    def step_done(self, i: int, level: tuple[float, float], per_page: float,
                  blocked: float = 0.0) -> None:
        """vCPU `i` took `per_page` ns per fault under `level`: its duty is updated.

        The duty is its memory-bound work over its time per fault, less the
        `blocked` ns per fault it waited behind a writer of mmu_lock. Such a
        writer blocks every vCPU's read side at once (qrwlock is fair:
        kernel/locking/qrwlock.c, queued_read_lock_slowpath queues new readers
        behind a waiting writer), so while one waits the others wait too and
        no fault runs at the lighter load its wait would leave: the load seen
        by working vCPUs is that of working vCPUs. Waits for spinlocks and
        lines are staggered (one holder works while the others wait, spinning
        on their own MCS node) and give their load back.
        """
        c = self.costs
        mem = self._mem * load_factor(c, *level)
        per_page -= blocked
        duty = min(1.0, mem / per_page) if per_page > 0 else 1.0
        self.node_load[self.nodes[i]] += duty - self.duty[i]
        self.duty[i] = duty

    def finish(self, i: int) -> None:
        """vCPU `i` is done: it no longer loads the memory system."""
        self.node_load[self.nodes[i]] -= self.duty[i]
        self.duty[i] = 0.0

    def aging_costs(self) -> CostModel:
        """The aging thread's costs under the load of the vCPUs faulting now (cached)."""
        level = self._level(self.aging_node, 0.0)
        c = self._aging.get(level)
        if c is None:
            c = self._aging[level] = scaled_costs(self.costs, load_factor(self.costs, *level),
                                                  AGING_WORK)
        return c
