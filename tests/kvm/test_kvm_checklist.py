"""Spec §9 checklist items 35-39 (KVM)."""

from __future__ import annotations

import numpy as np
import pytest
from kvm_helpers import ARCH_MODELS, MIB, make_vm

from mglru.kvm import RACE_TOUCH
from mglru.kvm.memslot import Memslot, Memslots
from mglru.mm.mmu_notifier import (
    mmu_notifier_clear_flush_young,
    mmu_notifier_clear_young,
    mmu_notifier_test_young,
)

PAGE = 4096


def test_fc35_hva_to_gfn_rounds_up_and_ors_memslots_and_address_spaces() -> None:
    """35. hva->gfn conversion rounds the end up to cover partially overlapped pages;
    multiple memslots and address spaces are ORed."""
    slots = Memslots(2)
    a = Memslot(0, 0, base_gfn=0x100, npages=16, userspace_addr=0x7000_0000)
    b = Memslot(0, 1, base_gfn=0x400, npages=16, userspace_addr=0x7001_0000)
    smm = Memslot(1, 0, base_gfn=0x100, npages=16, userspace_addr=0x7000_0000)
    for s in (a, b, smm):
        slots.add(s)
    # one byte into the second page through one byte into the fourth: 3 pages
    got = slots.ranges(0x7000_0000 + PAGE + 7, 0x7000_0000 + 3 * PAGE + 1)
    assert got == [(a, 0x101, 0x104), (smm, 0x101, 0x104)]
    # a range spanning the end of slot a and the start of slot b
    got = slots.ranges(0x7000_0000 + 15 * PAGE, 0x7001_0000 + PAGE)
    assert [(s.id, s.as_id, g0, g1) for s, g0, g1 in got] == [
        (0, 0, 0x10F, 0x110), (1, 0, 0x400, 0x401), (0, 1, 0x10F, 0x110)]
    assert slots.ranges(0x7000_0000 + PAGE, 0x7000_0000 + PAGE) == []  # end <= start

    # ORed: a page accessed only through the SMM address space is young
    s = make_vm(mem=2 * MIB)
    s.vm.vcpus[0].as_id = 1
    s.vm.vcpu_access(0, 5 * PAGE, 1, write=True)
    hva = s.vm.gpa_to_hva(5 * PAGE)
    assert len(s.vm.mmu.sptes[0]) == 0 and s.vm.mmu.sptes[1][5] != 0  # AS0 never used
    assert mmu_notifier_test_young(s.p.mm, hva)
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + PAGE)
    ev = s.vm.log.events[-1]
    assert (ev.ranges, ev.visited, ev.cleared) == (2, 1, 1)


@pytest.mark.parametrize("model", ["x86_tdp", "x86_shadow"])
def test_fc36_lockless_aging_takes_no_mmu_lock(model: str) -> None:
    """36. With lockless aging, no mmu_lock is taken for any of the three aging notifiers."""
    s = make_vm("v6.15", model)
    s.vm.vcpu_access(0, 0, 2 * MIB, write=True)
    hva = s.vm.gpa_to_hva(0)
    mm = s.p.mm
    mmu_notifier_test_young(mm, hva)
    mmu_notifier_clear_young(mm, hva, hva + PAGE)
    mmu_notifier_clear_flush_young(mm, hva + PAGE, hva + 2 * PAGE)
    for ev in s.vm.log.events:
        assert not set(ev.locks) & {"write", "read", "spin"}, ev


@pytest.mark.parametrize("model", list(ARCH_MODELS))
def test_fc36_otherwise_write_lock_only_if_a_memslot_overlaps(model: str) -> None:
    """36. ... otherwise the write lock is taken only if at least one memslot overlaps."""
    s = make_vm("v6.10", model, nr_address_spaces=2 if model.startswith("x86") else None)
    s.vm.vcpu_access(0, 0, MIB, write=True)
    hva = s.vm.gpa_to_hva(0)
    mm = s.p.mm
    mode = s.vm.mmu.mmu_lock
    outside = s.p.mmap(2 * MIB)  # host memory that is no guest memory
    for call in (lambda a: mmu_notifier_test_young(mm, a),
                 lambda a: mmu_notifier_clear_young(mm, a, a + PAGE),
                 lambda a: mmu_notifier_clear_flush_young(mm, a, a + PAGE)):
        s.vm.log.clear()
        call(outside)
        assert dict(s.vm.log.events[0].locks) == {}
        call(hva)
        ev = s.vm.log.events[1]
        # once per call, however many memslots (x86: both address spaces) overlap
        assert ev.locks[mode] == 1 and ev.ranges == s.vm.memslots.nr_address_spaces


def test_fc37_test_young_never_clears_and_stops_at_first_accessed(setup) -> None:
    """37. test_young on a range never clears; stops at the first accessed SPTE."""
    vm = setup.vm
    vm.vcpu_access(0, 0, 16 * PAGE, write=True)
    arr = vm.mmu.sptes[0]
    arr[:3] &= ~np.uint8(2)  # the first three are old
    before = arr.copy()
    hva = vm.gpa_to_hva(0)
    assert not vm.test_young(hva)  # one page, old
    ev = vm.log.events[-1]
    assert ev.young == 0 and ev.visited == 1
    # a range via the arch handler directly: stops at the 4th SPTE
    assert vm.kvm_handle_hva_range("test_young", hva, hva + 16 * PAGE, True, False)
    assert vm.log.events[-1].visited == 4  # AS0 stops at the 4th; AS1 maps nothing
    assert (arr == before).all()


def test_fc37_clear_young_clears_all_and_returns_young(setup) -> None:
    """37. clear_young clears all accessed leaf SPTEs in range and returns whether any
    were accessed."""
    vm = setup.vm
    vm.vcpu_access(0, 0, 16 * PAGE, write=True)
    hva = vm.gpa_to_hva(0)
    assert mmu_notifier_clear_young(setup.p.mm, hva, hva + 16 * PAGE)
    assert not (vm.mmu.sptes[0][:16] & 2).any()
    assert not mmu_notifier_clear_young(setup.p.mm, hva, hva + 16 * PAGE)


def test_fc37_lost_cmpxchg_still_young_and_stays_accessed() -> None:
    """37. ... even if a non-A/D cmpxchg lost a race (that SPTE stays accessed)."""
    s = make_vm("v6.15", ad_bits=False)
    vm = s.vm
    vm.vcpu_access(0, 0, 4 * PAGE, write=True)
    seen = []
    vm.race_hook = lambda kvm, as_id, gfn, attempt: (seen.append((gfn, attempt)), RACE_TOUCH
                                                     if gfn == 2 else None)[1]
    hva = vm.gpa_to_hva(0)
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 4 * PAGE)
    assert list(vm.mmu.sptes[0][:4] & 2) == [0, 0, 2, 0]
    ev = vm.log.events[-1]
    assert (ev.cleared, ev.failed, ev.retries, ev.cmpxchg, ev.atomics) == (3, 1, 0, 4, 0)
    assert seen == [(0, 0), (1, 0), (2, 0), (3, 0)]
    # only the lost SPTE: still young, still accessed
    assert mmu_notifier_clear_young(s.p.mm, hva + 2 * PAGE, hva + 3 * PAGE)
    assert vm.mmu.sptes[0][2] & 2


@pytest.mark.parametrize("preset,model,flushes", [
    ("v6.12", "x86_tdp", True),     # before v6.13: x86 flushes
    ("v6.14", "x86_tdp", False),    # KVM_ELIDE_TLB_FLUSH_IF_YOUNG
    ("v6.14", "x86_shadow", False),
    ("v6.15", "x86_tdp", False),
    ("v6.14", "arm64", True),       # TLBI left to clear_flush_young
    ("v6.15", "generic", True),
])
def test_fc38_clear_flush_young_flushes_only_without_elision(preset, model, flushes) -> None:
    """38. clear_flush_young flushes the guest TLB only on archs without flush elision
    (not x86 >= 6.13)."""
    s = make_vm(preset, model, tlb_entries=64, nr_vcpus=2)
    s.vm.vcpu_access(0, 0, 8 * PAGE, write=True)
    s.vm.vcpu_access(1, 0, 4 * PAGE)
    assert [len(v.tlb) for v in s.vm.vcpus] == [8, 4]
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
    assert [len(v.tlb) for v in s.vm.vcpus] == ([0, 0] if flushes else [8, 4])
    assert s.vm.log.events[-1].flushes == int(flushes)
    # clear_young never flushes; nothing young: no flush either
    assert not mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
    assert s.vm.log.events[-1].flushes == 0


@pytest.mark.parametrize("ad_bits", [True, False])
def test_fc39_guest_access_sets_accessed_again(ad_bits: bool) -> None:
    """39. A subsequent guest access to an aged page sets the SPTE accessed again (for
    non-A/D SPTEs via a fast fault)."""
    s = make_vm("seed-v4", ad_bits=ad_bits, tlb_entries=0)
    vm = s.vm
    vm.vcpu_access(0, 0, 8 * PAGE, write=True)
    hva = vm.gpa_to_hva(0)
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 8 * PAGE)
    assert not mmu_notifier_test_young(s.p.mm, hva)
    vm.vcpu_access(0, 0, 8 * PAGE)
    assert mmu_notifier_test_young(s.p.mm, hva)
    assert vm.stat["fast_page_faults"] == (0 if ad_bits else 8)
    assert vm.stat["gup_pages"] == 8  # no new host faults


def test_fc39_stale_tlb_entry_suppresses_accessed_bit() -> None:
    """39. ... a stale guest TLB entry may suppress this (false "idle"); a flush ends it."""
    s = make_vm("seed-v4", tlb_entries=4)
    vm = s.vm
    vm.vcpu_access(0, 0, 8 * PAGE, write=True)  # the TLB keeps the last 4 pages
    hva = vm.gpa_to_hva(0)
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 8 * PAGE)  # no flush
    vm.vcpu_access(0, 4 * PAGE, 4 * PAGE)      # the cached four: TLB hits
    young = [mmu_notifier_test_young(s.p.mm, hva + i * PAGE) for i in range(8)]
    assert young == [False] * 8  # used, yet they look idle
    # a sweep twice the TLB's size misses everywhere: LRU evicts the stale entries
    # before the sweep reaches them
    vm.vcpu_access(0, 0, 8 * PAGE)
    assert all(mmu_notifier_test_young(s.p.mm, hva + i * PAGE) for i in range(8))
    # the selftest's aging on x86 < 6.13 or arm64 flushes through clear_flush_young
    # (when it finds something young), which ends the stale entries
    assert mmu_notifier_clear_flush_young(s.p.mm, hva, hva + 8 * PAGE)
    vm.vcpu_access(0, 4 * PAGE, 4 * PAGE)
    assert all(mmu_notifier_test_young(s.p.mm, hva + i * PAGE) for i in range(4, 8))


def test_fc39_false_idle_through_aging_passes() -> None:
    """39. Through MGLRU: pages whose translation stays cached are missed by the next pass."""
    s = make_vm("seed-v4", mem=2 * MIB, tlb_entries=16)
    s.vm.vcpu_access(0, 0, 2 * MIB, write=True)
    s.age()
    s.vm.vcpu_access(0, 2 * MIB - 16 * PAGE, 16 * PAGE)  # a hot set the TLB holds
    s.age()
    assert s.gens()[2:] == [0, 0]  # used, yet not promoted: its translations were cached
    s.vm.vcpu_access(0, 0, 2 * MIB)  # a sweep 32x the TLB: LRU misses everywhere
    s.age()
    assert s.gens()[2:] == [512, 0]


def test_fc37_arm64_test_walks_the_whole_range() -> None:
    """37. (arm64) the stage-2 walker has no early exit: a test visits every leaf."""
    s = make_vm("v6.15", "arm64")
    s.vm.vcpu_access(0, 0, 8 * PAGE, write=True)
    hva = s.vm.gpa_to_hva(0)
    assert s.vm.kvm_handle_hva_range("test_young", hva, hva + 8 * PAGE, True, False)
    assert s.vm.log.events[-1].visited == 8 and (s.vm.mmu.sptes[0][:8] & 2).all()
