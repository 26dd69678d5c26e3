"""The memory-system load of faulting vCPUs (issue 6: shared-resource contention).

Mechanism. Every vCPU busy with memory-bound work (weighted by its duty, the
share of its time it spends in it) adds `fault_contention` ns to the
memory-bound work of another vCPU's fault (`fault_work_ns`); the same
memory-system load slows the memory-bound work of any thread by that fraction,
the aging walk's included. Core-bound work (VM exit and entry, the notifier
call path, the debugfs round trip) is not slowed. `mglru.timing.lru_gen_bench`
keeps the load and asks for the scaled costs.
"""

from __future__ import annotations

from mglru.timing.costs import CostModel
from mglru.timing.workloads import PCP_BATCH

__all__ = ["FAULT_WORK", "AGING_WORK", "fault_work_ns", "load_factor", "quantize_load",
           "scaled_costs"]

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


def load_factor(c: CostModel, load: float) -> float:
    """How much slower memory-bound kernel work runs under `load`.

    Shared-resource contention on the fault path (issue 6): `load` is the number
    of other vCPUs busy with memory-bound work (each vCPU counts with the share
    of its time it spends in it, its duty: about 0.6 alone, less when it waits
    for locks). Each such vCPU adds `fault_contention` ns to the memory-bound
    work of a fault (`fault_work_ns`); the same memory-system load slows the
    memory-bound work of any thread by that fraction, the aging walk's included.
    Weighting by duty keeps the load a traffic, not a head count: vCPUs stalled on
    a lock load the memory system less.
    """
    return 1.0 + c.fault_contention * load / fault_work_ns(c)


def quantize_load(load: float) -> float:
    """The load rounded to 1/8 (bodies and scaled costs are cached per value)."""
    return round(max(load, 0.0) * 8) / 8


def scaled_costs(c: CostModel, factor: float, keys: tuple[str, ...]) -> CostModel:
    """`c` with the costs of `keys` multiplied by `factor` (rounded to ns)."""
    if factor == 1.0:
        return c
    return c.replace(**{k: int(round(c[k] * factor)) for k in keys})
