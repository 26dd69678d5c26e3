"""MGLRU aging over a VM: the cover letter's claim and the lock accounting per preset and arch."""

from __future__ import annotations

from collections import Counter

import pytest
from kvm_helpers import ARCH_MODELS, ENABLED, MIB, make_vm

from mglru import PRESETS
from mglru.mm.mmu_notifier import mmu_notifier_clear_young

N = 256  # 4 KiB guest pages in the VM (1 MiB)


def test_cover_letter_guest_only_pages_get_younger_with_cap_on() -> None:
    """seed-v4, cap 0x8 on: pages touched only by the guest after an aging pass move to a
    newer generation on the next pass; the others do not."""
    s = make_vm("seed-v4", mem=MIB)
    assert s.k.read(ENABLED) == "0x000f\n"
    s.vm.vcpu_access(0, 0, MIB, write=True)
    s.age()                                   # max_seq 3 -> 4, everything in seq 3
    assert s.gens() == [0, 0, N, 0]
    s.vm.vcpu_access(0, 0, MIB // 2)          # guest only: host PTEs stay old
    s.age()                                   # max_seq 4 -> 5
    assert s.gens() == [0, N // 2, N // 2, 0]  # seq 4 holds the guest-touched half


@pytest.mark.parametrize("preset,cap_off", [("seed-v4", True), ("v6.10", False)])
def test_cover_letter_guest_only_pages_drift_to_the_oldest_without(preset, cap_off) -> None:
    """With the cap off (write 0x7) or on v6.10, guest-only pages do not get younger: they
    drift toward the oldest generation (only eviction's look-around/rmap can rescue them)."""
    s = make_vm(preset, mem=MIB)
    if cap_off:
        s.k.write(ENABLED, "0x7")
        assert s.k.read(ENABLED) == "0x0007\n"
    s.vm.vcpu_access(0, 0, MIB, write=True)
    s.age()
    for _ in range(3):
        s.vm.vcpu_access(0, 0, MIB)           # the guest keeps using all of it
        s.age()
        assert s.gens()[-2:] == [0, 0]        # never in the walk's generation
    lv = s.lv
    assert lv.nr_pages_of_seq(lv.min_seq[0], 0) == N  # all in the oldest generation
    assert all(ev.calls == 0 for ev in s.vm.log.events)
    # what eviction needs: the secondary MMU still knows the pages were used
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 4096)


# -- lock accounting --------------------------------------------------------------------
def expected_locks(preset: str, model: str, notifier: str, calls: int, visited: int) -> Counter:
    """Acquisitions for `calls` walk calls, read from the patches (not from the model).

    v6.10..v6.14 and seed-v4-noopt: KVM_MMU_LOCK once per call that found a memslot
    (write on x86/arm64, spin elsewhere). seed-v4 (3-6/7): no common lock for
    test/clear_young; the arch handler locks once per memslot range: x86 TDP RCU
    (5/7), x86 shadow write (5/7), arm64 read (6/7), others spin (4/7). v6.15: x86
    lockless (TDP RCU, shadow rmap bit locks), others common lock. The TDP iterator
    is an RCU section per range in every version.
    """
    nas = 2 if model.startswith("x86") else 1
    kvm_aging = PRESETS[preset].kvm_aging
    out: Counter = Counter()
    common = "spin" if model == "generic" else "write"
    if model == "x86_tdp":
        out["rcu"] = calls * nas
    if kvm_aging in ("write-lock", "seed-v4-noopt"):
        out[common] += calls
    elif kvm_aging == "seed-v4":
        arch = {"x86_tdp": None, "x86_shadow": "write", "arm64": "read", "generic": "spin"}[model]
        if arch:
            out[arch] += calls * nas
    elif model == "x86_shadow":
        out["rmap"] = visited
    elif model != "x86_tdp":
        out[common] += calls
    return +out


def expected_calls(preset: str, model: str, host_young: bool, young_pages: int) -> dict:
    """Notifier -> calls of one aging pass over N pages (seed 2/7, spec §8.3, what-ifs)."""
    cfg = PRESETS[preset]
    capable = model == "x86_tdp"  # the only model aging without mmu_lock (seed-v4 kvm_aging)
    if cfg.secondary_walk == "none":
        return {}
    if cfg.secondary_walk == "seed-v4":
        if host_young:
            return {"clear_young": N}
        return {"test_young": N, "clear_young": young_pages}
    if cfg.secondary_walk == "bitmap":
        return {"clear_young": N // 64} if capable else {}
    if cfg.secondary_walk == "fast-only":
        return {"test_clear_young_fast_only": N} if capable else {}
    return {"clear_young": N}


@pytest.mark.parametrize("model", list(ARCH_MODELS))
@pytest.mark.parametrize("preset", list(PRESETS))
def test_lock_accounting_of_one_aging_pass(preset: str, model: str) -> None:
    """For one aging pass over a VM, the notifier calls and the lock mode of each are
    what the patches say, per preset and arch (pass 1: host PTEs young after the guest
    faulted everything in; pass 2: host PTEs old, the guest re-read half)."""
    s = make_vm(preset, model, mem=MIB)
    s.vm.vcpu_access(0, 0, MIB, write=True)
    for host_young, young_pages in ((True, N), (False, N // 2)):
        if not host_young:
            s.vm.vcpu_access(0, 0, MIB // 2)
        s.vm.log.clear()
        s.age()
        got = {ev.notifier: ev for ev in s.vm.log.events}
        assert all(ev.source == "walk" for ev in got.values())
        want = expected_calls(preset, model, host_young, young_pages)
        assert {n: ev.calls for n, ev in got.items()} == want
        for n, ev in got.items():
            assert ev.slot_calls == ev.calls
            assert not s.vm.mmu.takes_mmu_lock_twice(n)
            assert ev.locks == expected_locks(preset, model, n, ev.calls, ev.visited), n
