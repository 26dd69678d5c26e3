"""Look-around's compiled notifier calls equal the per-page Python calls, state and log.

Reclaim under memory.max with a VM on the memcg: look-around windows ask KVM's
clear_young for each candidate page. `lru_gen._look_around_notify` makes those
calls in one compiled pass and KVM logs them afterwards; with the segments
withheld (`look_around._notify_segments` returning None) every call goes
through `Kvm.clear_young` one by one. Both runs must end in the same state:
folios, lruvec counters, SPTEs, the VM's counters and every logged event.
"""

from __future__ import annotations

import hashlib

import pytest
from kvm_helpers import hot_cold_streams

from mglru import SimKernel
from mglru.lru_gen import look_around
from mglru.workload import Engine

MIB = 1 << 20


def _run(config: str, ad_bits: bool, arch: str, tdp_mmu: bool) -> dict:
    k = SimKernel(config, seed=3, node_bytes=(64 * MIB,), arch=arch)
    k.mkdir("/sys/fs/cgroup/w")
    vmm = k.spawn(memcg="/w")
    vm = k.create_vm(vmm, nr_vcpus=2, mem_bytes=8 * MIB, tlb_entries=8, ad_bits=ad_bits,
                     tdp_mmu=tdp_mmu)
    k.write("/sys/fs/cgroup/w/memory.max", str(2 * MIB))
    streams = hot_cold_streams(vm, 4, 1500)
    Engine(k, truth=False).run(streams, quantum_ms=0)
    mem = k.mem
    lv = k.memcg("/w").lruvecs[0]
    return {"folios": hashlib.sha256(mem.flags.tobytes() + mem.gen.tobytes()
                                     + mem.lru.tobytes()).hexdigest(),
            "lruvec": (lv.nr_pages.tolist(), lv.nr_listed.tolist()),
            "sptes": [a.tobytes() for a in vm.mmu.sptes], "stat": +vm.stat,
            "log": list(vm.log.events), "stats": dict(k.stats)}


@pytest.mark.parametrize(("config", "ad_bits", "arch", "tdp_mmu"), [
    ("v6.15", True, "x86", True), ("v6.15", False, "x86", True), ("v6.15", False, "x86", False),
    ("v6.12", True, "arm64", True), ("v6.14", False, "x86", True)])
def test_compiled_window_calls_equal_python(config, ad_bits, arch, tdp_mmu, monkeypatch) -> None:
    compiled = _run(config, ad_bits, arch, tdp_mmu)
    assert any(ev.notifier == "clear_young" for ev in compiled["log"])
    monkeypatch.setattr(look_around, "_notify_segments", lambda mm: None)
    assert _run(config, ad_bits, arch, tdp_mmu) == compiled
