"""MMU notifier chains (spec §4.10) and the v3/v5 what-if calls."""

from __future__ import annotations

import pytest
from kvm_helpers import MIB, make_vm

from mglru import SimKernel
from mglru.mm.mmu_notifier import (
    MMU_NOTIFIER_FAST_FAILED,
    MMU_NOTIFIER_FAST_YOUNG,
    mm_has_fast_young_notifiers,
    mm_has_notifiers,
    mmu_notifier_clear_flush_young,
    mmu_notifier_clear_young,
    mmu_notifier_invalidate_range,
    mmu_notifier_register,
    mmu_notifier_test_clear_young_bitmap,
    mmu_notifier_test_clear_young_fast_only,
    mmu_notifier_test_young,
    mmu_notifier_unregister,
)


class FakeSub:
    """A subscriber that answers a fixed `young` and logs the calls it gets."""

    def __init__(self, young: bool, fast: bool = True) -> None:
        self.young = young
        self.fast = fast
        self.calls: list[tuple] = []

    def test_young(self, addr):
        self.calls.append(("test", addr))
        return self.young

    def clear_young(self, start, end):
        self.calls.append(("clear", start, end))
        return self.young

    def clear_flush_young(self, start, end):
        self.calls.append(("clear_flush", start, end))
        return self.young

    def test_clear_young_fast_only(self, start, end, clear):
        self.calls.append(("fast", start, end, clear))
        if not self.fast:
            return MMU_NOTIFIER_FAST_FAILED
        return MMU_NOTIFIER_FAST_YOUNG if self.young else 0

    def test_clear_young_bitmap(self, start, bitmap, clear):
        self.calls.append(("bitmap", start, bitmap, clear))
        return bitmap if self.young else 0

    def invalidate_range(self, start, end):
        self.calls.append(("invalidate", start, end))

    def fast_only_capable(self):
        return self.fast


@pytest.fixture
def mm():
    """A fresh mm with no subscribers."""
    return SimKernel("seed-v4", node_bytes=(1 << 30,)).spawn().mm


def test_no_notifiers_are_noops(mm) -> None:
    """Without subscribers every aging notifier returns 0 and mm_has_notifiers is false."""
    assert not mm_has_notifiers(mm)
    assert mmu_notifier_test_young(mm, 0x1000) is False
    assert mmu_notifier_clear_young(mm, 0, 1 << 21) is False
    assert mmu_notifier_clear_flush_young(mm, 0, 1 << 21) is False
    assert mmu_notifier_test_clear_young_fast_only(mm, 0, 4096, True) == 0


def test_clear_young_ors_every_subscriber(mm) -> None:
    """clear_young / clear_flush_young ask every subscriber and OR the answers."""
    subs = [FakeSub(False), FakeSub(True), FakeSub(False)]
    for s in subs:
        mmu_notifier_register(mm, s)
    assert mm_has_notifiers(mm)
    assert mmu_notifier_clear_young(mm, 0, 4096) is True
    assert mmu_notifier_clear_flush_young(mm, 0, 4096) is True
    assert all(len(s.calls) == 2 for s in subs)


def test_test_young_stops_at_first_young(mm) -> None:
    """test_young stops at the first subscriber that saw an access."""
    subs = [FakeSub(False), FakeSub(True), FakeSub(True)]
    for s in subs:
        mmu_notifier_register(mm, s)
    assert mmu_notifier_test_young(mm, 0x5000) is True
    assert [len(s.calls) for s in subs] == [1, 1, 0]


def test_register_twice_rejected_and_unregister(mm) -> None:
    """A subscription is on the chain once; unregister removes it."""
    s = FakeSub(True)
    mmu_notifier_register(mm, s)
    with pytest.raises(ValueError, match="already registered"):
        mmu_notifier_register(mm, s)
    mmu_notifier_unregister(mm, s)
    assert not mm_has_notifiers(mm)


def test_fast_only_reports_failed_subscribers(mm) -> None:
    """v5: slow subscribers answer FAILED; young comes from the fast ones only."""
    slow, fast = FakeSub(True, fast=False), FakeSub(True)
    mmu_notifier_register(mm, slow)
    assert mmu_notifier_test_clear_young_fast_only(mm, 0, 4096, True) == MMU_NOTIFIER_FAST_FAILED
    assert mmu_notifier_clear_young(mm, 0, 4096, fast_only=True) is False
    assert not mm_has_fast_young_notifiers(mm)
    mmu_notifier_register(mm, fast)
    ret = mmu_notifier_test_clear_young_fast_only(mm, 0, 4096, True)
    assert ret == MMU_NOTIFIER_FAST_FAILED | MMU_NOTIFIER_FAST_YOUNG
    assert mmu_notifier_clear_young(mm, 0, 4096, fast_only=True) is True
    assert mm_has_fast_young_notifiers(mm)


def test_bitmap_asks_only_lockless_subscribers(mm) -> None:
    """v3: one call per lockless subscriber for up to 64 pages; slow ones are skipped."""
    slow, fast = FakeSub(True, fast=False), FakeSub(True)
    mmu_notifier_register(mm, slow)
    mmu_notifier_register(mm, fast)
    assert mmu_notifier_test_clear_young_bitmap(mm, 0, 0b1011, True) == 0b1011
    assert slow.calls == [] and fast.calls == [("bitmap", 0, 0b1011, True)]
    assert mmu_notifier_test_clear_young_bitmap(mm, 0, 0, True) == 0


def test_invalidate_range_reaches_every_subscriber(mm) -> None:
    """invalidate_range is passed to each subscriber."""
    subs = [FakeSub(False), FakeSub(False)]
    for s in subs:
        mmu_notifier_register(mm, s)
    mmu_notifier_invalidate_range(mm, 0, 8192)
    assert all(s.calls == [("invalidate", 0, 8192)] for s in subs)


def test_kvm_subscribes_and_invalidate_zaps_sptes() -> None:
    """A VM registers itself on its process's mm; invalidation zaps SPTEs and flushes TLBs."""
    s = make_vm(mem=4 * MIB, tlb_entries=64)
    assert s.p.mm.notifiers == [s.vm]
    s.vm.vcpu_access(0, 0, 4 * MIB, write=True)
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_test_young(s.p.mm, hva)
    mmu_notifier_invalidate_range(s.p.mm, hva, hva + 8192)
    assert not mmu_notifier_test_young(s.p.mm, hva)
    assert (s.vm.mmu.sptes[0][:2] == 0).all() and s.vm.mmu.sptes[0][2] != 0
    assert len(s.vm.vcpus[0].tlb) == 0 and s.vm.stat["remote_tlb_flush"] == 1
