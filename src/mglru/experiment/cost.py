"""The price of aging and eviction: kernel counters turned into CPU time and vCPU stall.

Kernel: mm/vmscan.c (walk_mm, evict_folios, the mm_stats of lru_gen_full),
virt/kvm/kvm_main.c: kvm_handle_hva_range() and the arch kvm_age_gfn()s
(arch/x86/kvm/mmu/tdp_mmu.c, arch/arm64/kvm/mmu.c), mm/memory.c: do_swap_page().

Mechanism. `snapshot` reads cumulative counters from a `SimKernel` and its
VMs (`Counters`); `Counters.delta` subtracts two of them; `price` multiplies
the delta by the per-operation costs of a `CostModel` (mglru.timing.costs,
costs.toml). All values are ns until `price` rounds them to ms. The
formulas, with c.x the cost named x in costs.toml:

    sec(E)   = c.notifier_call*calls + c.gfn_range*ranges + c.spte_test_clear*visited
             + c.atomic*atomics + c.cmpxchg*cmpxchg + c.tlb_flush*flushes
             + c.atomic*mmu_lock_acquisitions          (an uncontended lock/unlock pair)
    aging    = c.aging_pass_fixed*passes + c.pte_table*pte_tables + c.pte_walk*ptes_walked
             + c.folio_update_gen*young + sec(walk events)
    eviction = c.evict_folio*scanned + sec(call events)
             + c.tlb_flush*(remote TLB flushes not counted in an event: the unmaps)
    hold(E)  = c.gfn_range*ranges + c.spte_test_clear*visited + c.atomic*atomics
             + c.cmpxchg*cmpxchg          (the arch handler's work, done under the lock)
    stall    = sum over VMs of F * (H / D) * (H / A) / 2
    refault  = c.swap_in * (pswpin + workingset_refault_file)
    overhead = aging + eviction + stall;  combined = overhead + refault

Walk events are the aging walk's notifier calls (`AgingEvent.source ==
"walk"`); call events are the ones made one by one, by look-around and the
rmap walk of eviction. In `stall`, H is the time a VM's mmu_lock was held in
a mode that blocks its vCPUs' page faults, A the number of such holds, F the
VM's KVM page faults and D the simulated time: a fault arriving at a random
time finds the lock held with probability H/D and then waits half a hold on
average (faults independent of the holds, all holds as long as the mean).
Which holds block depends on how the fault path locks: the x86 TDP MMU and
arm64 fault under mmu_lock held for read (a write hold or a spinlock blocks
them; a read hold, RCU and the per-rmap bit lock do not); the x86 shadow MMU
faults under the write lock (every mmu_lock hold blocks it); spinlock arches
(riscv...) take the spinlock (a spin hold blocks). vCPUs that only hit their
TLB or SPTEs run on: they do not need mmu_lock.

What is left out: lock contention between aging and faults (lock_handoff,
cacheline_transfer), the memory-load slow-down of the timing model, the
inc_min_seq folio moves, and the fault cost of a refault other than its
swap-in. aging_pass_fixed is charged for every max_seq increment, kswapd's
included, though it was sized on a user-space pass (two lru_gen reads and a
write).

Future optimizations:
1. charge contention with the timing model's fluid lock planner instead of
   the residual-wait formula.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from mglru.kvm.accounting import LOCK_READ, LOCK_SPIN, LOCK_WRITE, AgingEvent
from mglru.lru_gen.helpers import MM_LEAF_TOTAL, MM_LEAF_YOUNG, MM_NONLEAF_TOTAL
from mglru.timing.costs import CostModel, load_costs

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm.kvm_main import Kvm

__all__ = ["VmCounters", "Counters", "snapshot", "price", "sec_ns", "hold_ns",
           "blocking_modes", "vcpu_stall_ns", "mmu_lock_acquisitions", "MMU_LOCK_MODES"]

#: lock modes of kvm->mmu_lock (rwlock or spinlock); RCU and the rmap bit lock are not it
MMU_LOCK_MODES = (LOCK_WRITE, LOCK_READ, LOCK_SPIN)

_EVENT_FIELDS = ("calls", "slot_calls", "ranges", "young", "visited", "cleared", "atomics",
                 "cmpxchg", "retries", "failed", "flushes")


def _sub_event(a: AgingEvent, b: AgingEvent) -> AgingEvent:
    out = AgingEvent(a.notifier, a.source)
    for f in _EVENT_FIELDS:
        setattr(out, f, getattr(a, f) - getattr(b, f))
    out.locks = a.locks.copy()
    out.locks.subtract(b.locks)
    return out


def mmu_lock_acquisitions(ev: AgingEvent) -> int:
    """Acquisitions of kvm->mmu_lock in any mode recorded in an event."""
    return sum(ev.locks.get(m, 0) for m in MMU_LOCK_MODES)


def hold_ns(ev: AgingEvent, c: CostModel) -> int:
    """Time the arch handlers of an event work under a lock (see the module docstring)."""
    return (c.gfn_range * ev.ranges + c.spte_test_clear * ev.visited + c.atomic * ev.atomics
            + c.cmpxchg * ev.cmpxchg)


def sec_ns(ev: AgingEvent, c: CostModel) -> int:
    """CPU time of the secondary-MMU notifier calls of an event (`sec` above)."""
    return (c.notifier_call * ev.calls + hold_ns(ev, c) + c.tlb_flush * ev.flushes
            + c.atomic * mmu_lock_acquisitions(ev))


def blocking_modes(mmu_name: str) -> tuple[str, ...]:
    """mmu_lock modes whose holds block this secondary MMU's page faults.

    arch/x86/kvm/mmu/mmu.c: kvm_tdp_mmu_page_fault() runs under read_lock,
    the shadow MMU's direct_page_fault() under write_lock; arm64's
    user_mem_abort() under read_lock; spinlock arches under the spinlock.
    """
    if mmu_name == "x86_shadow":
        return MMU_LOCK_MODES
    return (LOCK_WRITE, LOCK_SPIN)


@dataclass
class VmCounters:
    """Cumulative counters of one VM.

    Attributes:
        walk: the aging walks' notifier calls, summed (`AgingLog.totals(source="walk")`).
        call: the notifier calls made one by one (look-around, rmap), summed.
        blocking_hold_ns: lock hold time of the holds that block this VM's faults
            (needs the cost model, so `snapshot` fills it).
        blocking_holds: the number of those holds.
        mmu_hold_ns: lock hold time of the events that take mmu_lock in any mode.
        faults: KVM page faults (`Kvm.stat["faults"]`).
        remote_tlb_flushes: every remote TLB flush of the VM (`Kvm.stat`).
    """

    walk: AgingEvent = field(default_factory=lambda: AgingEvent("all", "walk"))
    call: AgingEvent = field(default_factory=lambda: AgingEvent("all", "call"))
    blocking_hold_ns: int = 0
    blocking_holds: int = 0
    mmu_hold_ns: int = 0
    faults: int = 0
    remote_tlb_flushes: int = 0

    def delta(self, before: VmCounters) -> VmCounters:
        """self - before, field by field."""
        return VmCounters(_sub_event(self.walk, before.walk), _sub_event(self.call, before.call),
                          self.blocking_hold_ns - before.blocking_hold_ns,
                          self.blocking_holds - before.blocking_holds,
                          self.mmu_hold_ns - before.mmu_hold_ns,
                          self.faults - before.faults,
                          self.remote_tlb_flushes - before.remote_tlb_flushes)


@dataclass
class Counters:
    """Cumulative kernel counters an experiment prices (see `snapshot`).

    Attributes:
        clock_ns: simulated time.
        passes: aging passes (max_seq increments summed over lruvecs).
        ptes_walked, pte_tables, young: the walks' mm_stats (MM_LEAF_TOTAL,
            MM_NONLEAF_TOTAL, MM_LEAF_YOUNG) summed over lruvecs.
        scanned: folios isolated by eviction (pgscan_anon + pgscan_file).
        pswpin: pages swapped in; refault_file: workingset_refault_file.
        vms: per VM (in the order given to `snapshot`).
    """

    clock_ns: int = 0
    passes: int = 0
    ptes_walked: int = 0
    pte_tables: int = 0
    young: int = 0
    scanned: int = 0
    pswpin: int = 0
    refault_file: int = 0
    vms: list[VmCounters] = field(default_factory=list)

    def delta(self, before: Counters) -> Counters:
        """self - before, field by field (VMs pairwise)."""
        out = Counters(vms=[a.delta(b) for a, b in zip(self.vms, before.vms, strict=True)])
        for f in fields(self):
            if f.name != "vms":
                setattr(out, f.name, getattr(self, f.name) - getattr(before, f.name))
        return out


def _vm_counters(vm: Kvm, c: CostModel) -> VmCounters:
    blocking = blocking_modes(vm.mmu.name)
    out = VmCounters(vm.log.totals(source="walk"), vm.log.totals(source="call"),
                     faults=int(vm.stat["faults"]),
                     remote_tlb_flushes=int(vm.stat["remote_tlb_flush"]))
    for ev in vm.log.events:
        if mmu_lock_acquisitions(ev):
            out.mmu_hold_ns += hold_ns(ev, c)
        n = sum(ev.locks.get(m, 0) for m in blocking)
        if n:
            out.blocking_holds += n
            out.blocking_hold_ns += hold_ns(ev, c)
    return out


def snapshot(k: SimKernel, vms: list[Kvm], c: CostModel | None = None) -> Counters:
    """Read the cumulative counters of `k` and `vms` now.

    mm_stats are read from each lruvec's `lru_gen_mm_state`: without
    CONFIG_LRU_GEN_STATS (NR_HIST_GENS = 1) reset_mm_stats() never clears
    them, so they only grow (mm/vmscan.c, v6.10); with it the oldest history
    slot is cleared and the totals undercount.
    """
    c = c or load_costs()
    out = Counters(clock_ns=k.clock_ns, scanned=k.stats["pgscan_anon"] + k.stats["pgscan_file"],
                   pswpin=k.stats["pswpin"], refault_file=k.stats["workingset_refault_file"])
    for lruvec in k.iter_lruvecs():
        out.passes += lruvec.max_seq
        st = lruvec.mm_state
        if st is not None:
            tot = st.stats.sum(axis=0)
            out.ptes_walked += int(tot[MM_LEAF_TOTAL])
            out.pte_tables += int(tot[MM_NONLEAF_TOTAL])
            out.young += int(tot[MM_LEAF_YOUNG])
    out.vms = [_vm_counters(vm, c) for vm in vms]
    return out


def vcpu_stall_ns(faults: int, hold: int, holds: int, duration_ns: int) -> float:
    """F * (H / D) * (H / A) / 2: expected wait of F faults for A holds totalling H ns in D ns."""
    if not faults or not holds or duration_ns <= 0:
        return 0.0
    return faults * (hold / duration_ns) * (hold / holds) / 2


def price(d: Counters, c: CostModel | None = None) -> dict[str, float | int]:
    """The cost columns of a result row from a counter delta (see the module docstring).

    Returns:
        ptes_walked, sptes_walked, notifier_calls, mmu_lock_acquisitions (counts),
        mmu_lock_hold_ms, aging_cpu_ms, eviction_cpu_ms, vcpu_stall_ms,
        refault_cost_ms, overhead_ms, combined_cost_ms (ms, unrounded).
    """
    c = c or load_costs()
    aging = (c.aging_pass_fixed * d.passes + c.pte_table * d.pte_tables
             + c.pte_walk * d.ptes_walked + c.folio_update_gen * d.young)
    eviction = c.evict_folio * d.scanned
    sptes = calls = locks = hold = 0
    stall = 0.0
    for vm in d.vms:
        aging += sec_ns(vm.walk, c)
        eviction += sec_ns(vm.call, c)
        unmap_flushes = vm.remote_tlb_flushes - vm.walk.flushes - vm.call.flushes
        eviction += c.tlb_flush * max(unmap_flushes, 0)
        sptes += vm.walk.visited + vm.call.visited
        calls += vm.walk.calls + vm.call.calls
        locks += mmu_lock_acquisitions(vm.walk) + mmu_lock_acquisitions(vm.call)
        hold += vm.mmu_hold_ns
        stall += vcpu_stall_ns(vm.faults, vm.blocking_hold_ns, vm.blocking_holds, d.clock_ns)
    refault = c.swap_in * (d.pswpin + d.refault_file)
    overhead = aging + eviction + stall
    return {
        "ptes_walked": d.ptes_walked,
        "sptes_walked": sptes,
        "notifier_calls": calls,
        "mmu_lock_acquisitions": locks,
        "mmu_lock_hold_ms": hold / 1e6,
        "aging_cpu_ms": aging / 1e6,
        "eviction_cpu_ms": eviction / 1e6,
        "vcpu_stall_ms": stall / 1e6,
        "refault_cost_ms": refault / 1e6,
        "overhead_ms": overhead / 1e6,
        "combined_cost_ms": (overhead + refault) / 1e6,
    }
