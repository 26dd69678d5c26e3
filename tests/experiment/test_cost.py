"""Cost formulas against hand arithmetic, and the counters they read."""

from __future__ import annotations

from collections import Counter

import pytest

from mglru import SimKernel
from mglru.experiment.cost import (
    Counters,
    VmCounters,
    blocking_modes,
    hold_ns,
    price,
    snapshot,
    vcpu_stall_ns,
)
from mglru.kvm.accounting import AgingEvent
from mglru.mm.page import PAGE_SIZE
from mglru.timing.costs import load_costs, zero_costs

C = zero_costs(aging_pass_fixed=100, pte_table=3, pte_walk=2, folio_update_gen=5,
               notifier_call=7, gfn_range=11, spte_test_clear=13, atomic=1, cmpxchg=17,
               tlb_flush=19, evict_folio=23, swap_in=29)


def _counters():
    walk = AgingEvent("all", "walk", calls=2, ranges=4, visited=8, atomics=3, cmpxchg=1,
                      locks=Counter({"write": 2, "rcu": 4}))
    call = AgingEvent("all", "call", calls=1, ranges=1, visited=1, flushes=1,
                      locks=Counter({"read": 1}))
    vm = VmCounters(walk, call, blocking_hold_ns=400, blocking_holds=2, mmu_hold_ns=500,
                    faults=10, remote_tlb_flushes=3)
    return Counters(clock_ns=100_000, passes=2, ptes_walked=10, pte_tables=4, young=3,
                    scanned=6, pswpin=5, refault_file=1, vms=[vm])


def test_price_by_hand():
    """Every column from the numbers above, multiplied out by hand."""
    got = price(_counters(), C)
    # aging: 100*2 + 3*4 + 2*10 + 5*3 = 247; walk calls: 7*2 + (11*4 + 13*8 + 1*3 + 17*1)
    # + 19*0 + 1*2 (two write acquisitions; rcu is not mmu_lock) = 184
    assert got["aging_cpu_ms"] == pytest.approx(431e-6)
    # eviction: 23*6 = 138; calls: 7*1 + (11*1 + 13*1) + 19*1 + 1*1 = 51;
    # unmap flushes 3 - 0 - 1 = 2 -> 38
    assert got["eviction_cpu_ms"] == pytest.approx(227e-6)
    # stall: 10 faults * (400 / 100000) * (400 / 2) / 2 = 4 ns
    assert got["vcpu_stall_ms"] == pytest.approx(4e-6)
    assert got["refault_cost_ms"] == pytest.approx(29 * 6 * 1e-6)
    assert got["overhead_ms"] == pytest.approx((431 + 227 + 4) * 1e-6)
    assert got["combined_cost_ms"] == pytest.approx((431 + 227 + 4 + 174) * 1e-6)
    assert got["sptes_walked"] == 9 and got["notifier_calls"] == 3
    assert got["mmu_lock_acquisitions"] == 3 and got["mmu_lock_hold_ms"] == pytest.approx(5e-4)
    assert got["ptes_walked"] == 10


@pytest.mark.parametrize(("faults", "hold", "holds", "dur", "want"), [
    (10, 1000, 4, 100_000, 12.5),   # 10 * 0.01 * 250 / 2
    (0, 1000, 4, 100_000, 0.0),
    (10, 0, 0, 100_000, 0.0),
    (10, 1000, 4, 0, 0.0),
    (1, 100_000, 1, 100_000, 50_000.0),  # always held: half a hold on average
])
def test_vcpu_stall_is_the_residual_wait(faults, hold, holds, dur, want):
    """F * (H/D) * (H/A) / 2."""
    assert vcpu_stall_ns(faults, hold, holds, dur) == pytest.approx(want)


def test_which_holds_block_faults():
    """TDP/arm64 fault under the read lock; the shadow MMU under the write lock."""
    assert blocking_modes("x86_shadow") == ("write", "read", "spin")
    assert blocking_modes("x86_tdp") == ("write", "spin")
    assert blocking_modes("arm64") == ("write", "spin")


def test_delta_subtracts_field_by_field():
    """A counter set minus itself is zero everywhere; minus an empty one is itself."""
    a = _counters()
    zero = a.delta(a)
    assert zero.passes == 0 and zero.vms[0].walk.visited == 0
    assert +zero.vms[0].walk.locks == Counter()
    empty = Counters(vms=[VmCounters()])
    assert a.delta(empty).vms[0].walk.visited == 8
    assert price(zero, C)["combined_cost_ms"] == 0.0


def _vm(preset, tdp=True):
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True)
    k.mkdir("/sys/fs/cgroup/a")
    vmm = k.spawn(memcg="/a")
    vm = k.create_vm(vmm, arch="x86", tdp_mmu=tdp, mem_bytes=8 * PAGE_SIZE, tlb_entries=0)
    vm.vcpu_access(0, 0, 8 * PAGE_SIZE, write=True)
    return k, vm


@pytest.mark.parametrize(("tdp", "blocking"), [(True, 1), (False, 1)])
def test_snapshot_charges_a_write_locked_call(tdp, blocking):
    """v6.10 KVM ages under the write-held mmu_lock: one clear_young call, one blocking hold."""
    k, vm = _vm("v6.10", tdp)
    c = load_costs()
    before = snapshot(k, [vm], c)
    hva = vm.gpa_to_hva(0)
    vm.clear_young(hva, hva + 8 * PAGE_SIZE)
    d = snapshot(k, [vm], c).delta(before)
    ev = vm.log.events[-1]
    assert ev.locks["write"] == 1
    assert d.vms[0].call.calls == 1 and d.vms[0].walk.calls == 0
    assert d.vms[0].blocking_holds == blocking
    assert d.vms[0].blocking_hold_ns == d.vms[0].mmu_hold_ns == hold_ns(ev, c) > 0


def test_snapshot_reads_the_walks_mm_stats():
    """An aging walk over 8 mapped pages counts 8 leaf PTEs and one pass."""
    k, vm = _vm("v6.12")
    before = snapshot(k, [vm])
    memcg = k.memcg("/a")
    k.write("/sys/kernel/debug/lru_gen", f"+ {memcg.id} 0 {k.lruvec(memcg).max_seq} 100 1\n")
    d = snapshot(k, [vm]).delta(before)
    assert d.passes == 1
    assert d.ptes_walked == 8
    assert d.vms[0].walk.visited == 8  # v6.12: every PTE asks the secondary MMU
