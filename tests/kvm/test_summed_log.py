"""A summed aging log gives every total the per-call log gives.

The same VM workload runs twice, once logging each notifier call and once with
`AgingLog(per_call=False)`: reclaim under memory.max (look-around's compiled
clear_young calls on v6.14+, the per-call Python ones before), aging walks through
lru_gen, rmap calls. Every total by notifier and source, and the experiments' VM
counters (lock hold times summed over the events that took mmu_lock, and over those
that block faults), must be the same, from a handful of events instead of one per call.
The segments those compiled calls run on are kept between calls and must follow the
memslots, the SPTE arrays and the race hook.
"""

from __future__ import annotations

import dataclasses

import pytest
from kvm_helpers import hot_cold_streams

from mglru import SimKernel
from mglru.experiment.cost import _vm_counters
from mglru.kvm.accounting import NOTIFIERS, AgingEvent, AgingLog
from mglru.timing.costs import load_costs
from mglru.workload import Engine

MIB = 1 << 20


def _run(config: str, arch: str, tdp_mmu: bool, per_call: bool):
    k = SimKernel(config, seed=5, node_bytes=(64 * MIB,), arch=arch)
    k.mkdir("/sys/fs/cgroup/w")
    vmm = k.spawn(memcg="/w")
    vm = k.create_vm(vmm, nr_vcpus=2, mem_bytes=8 * MIB, tlb_entries=8, tdp_mmu=tdp_mmu,
                     log_calls=per_call)
    k.write("/sys/fs/cgroup/w/memory.max", str(MIB))
    streams = hot_cold_streams(vm, 6, 1200)
    memcg_id = k.memcg("/w").id

    def age(k, now):  # an aging walk (walk events) now and then
        k.write("/sys/kernel/debug/lru_gen", f"+ {memcg_id} 0 {k.memcg('/w').lruvecs[0].max_seq}")

    Engine(k, truth=False).run(streams, quantum_ms=0.5, every_ms=40, callback=age)
    return vm


def _totals(log: AgingLog) -> dict:
    out = {}
    for notifier in (*NOTIFIERS, None):
        for source in ("call", "walk", None):
            t = log.totals(notifier, source)
            out[notifier, source] = (dataclasses.astuple(dataclasses.replace(t, locks=None)),
                                     {m: n for m, n in t.locks.items() if n})
    return out


@pytest.mark.parametrize(("config", "arch", "tdp_mmu"), [
    ("v6.14", "x86", True), ("v6.12", "x86", False), ("seed-v4", "arm64", True),
    ("v6.10", "riscv", True), ("v6.15", "x86", True)])
def test_summed_log_keeps_every_total(config, arch, tdp_mmu) -> None:
    calls = _run(config, arch, tdp_mmu, per_call=True)
    summed = _run(config, arch, tdp_mmu, per_call=False)
    assert len(calls.log) > 50  # the run made many calls
    assert len(summed.log) <= 3 * len(NOTIFIERS)
    assert _totals(summed.log) == _totals(calls.log)
    c = load_costs()
    assert _vm_counters(summed, c) == _vm_counters(calls, c)


def test_summed_log_keeps_events_apart_by_the_locks_they_took() -> None:
    """A call that took mmu_lock and one that took none stay in separate sums (the
    experiments add an event's hold time only when it took the lock)."""
    log = AgingLog(per_call=False)
    for locks in ({"write": 1}, {}, {"write": 2}, {"read": 1, "rcu": 0}):
        ev = AgingEvent("clear_young", calls=1, visited=3)
        ev.locks.update(locks)
        log.append(ev)
    sums = {tuple(sorted(m for m, n in ev.locks.items() if n)): ev for ev in log.events}
    assert set(sums) == {("write",), (), ("read",)}
    assert (sums["write",].calls, sums["write",].locks["write"]) == (2, 3)
    assert sums[()].visited == 3 and log.totals().calls == 4
    log.clear()
    assert len(log) == 0 and log.events == []


def test_clear_young_segments_follow_memslots_sptes_and_race_hook() -> None:
    """The segments look-around's compiled calls use are kept between calls, and
    built again when a memslot is added, an SPTE array grows or a race hook is set."""
    k = SimKernel("v6.14", seed=1, node_bytes=(64 * MIB,))
    vmm = k.spawn()
    vm = k.create_vm(vmm, mem_bytes=2 * MIB)
    vm.vcpu_access(0, 0, 2 * MIB, write=True)
    first = vm.clear_young_segments()
    assert first is not None and vm.clear_young_segments() is first
    assert len(vm.mmu.sptes[1]) == 0  # SMM's address space: no SPTE array until used
    vm.mmu.ensure(1, vm.memslots.gfn_limit(1))
    first = vm.clear_young_segments()
    assert any(a is vm.mmu.sptes[1] for *_x, a in first)
    grown = vm.mmu.sptes[0]
    gpa = vm.add_memory(2 * MIB)  # a memslot past the first in each address space
    second = vm.clear_young_segments()
    assert vm.mmu.sptes[0] is not grown  # the SPTE array of the used address space grew
    assert second is not first and len(second) == 2 * len(first)
    assert sum(g0 == gpa >> 12 for _v0, _v1, g0, _a in second) == len(first)
    assert all(any(a is b for b in vm.mmu.sptes) for *_x, a in second)
    vm.race_hook = lambda *args: None
    assert vm.clear_young_segments() is None
    vm.race_hook = None
    assert vm.clear_young_segments() == second


def test_look_around_segments_follow_the_subscribers_lists() -> None:
    """The compiled calls' arguments (`look_around._notify_segments`) are kept per mm
    while each subscriber hands out the same list, and built again when one changes."""
    from mglru.lru_gen.look_around import _notify_segments

    k = SimKernel("v6.14", seed=1, node_bytes=(64 * MIB,))
    vmm = k.spawn()
    vm = k.create_vm(vmm, mem_bytes=2 * MIB)
    vm.vcpu_access(0, 0, 2 * MIB, write=True)
    first = _notify_segments(vmm.mm)
    assert first is not None and _notify_segments(vmm.mm) is first
    gpa = vm.add_memory(2 * MIB)
    second = _notify_segments(vmm.mm)
    assert second is not first and (gpa >> 12) in second[0][2].tolist()
    assert second[1][0] is vm.mmu.sptes[0]
    vm.race_hook = lambda *args: None
    assert _notify_segments(vmm.mm) is None
