"""One test per row of the preset table in docs/architecture.md ("Secondary MMUs").

Each test names the row it checks (R1..R18) and the patch the difference comes from.
"""

from __future__ import annotations

import numpy as np
import pytest
from kvm_helpers import ENABLED, LRU_GEN, MIB, make_vm

from mglru.kernel import KernelDeadlock
from mglru.kvm import RACE_TOUCH, RACE_ZAP
from mglru.lru_gen.helpers import MM_LEAF_OLD, MM_NONLEAF_FOUND
from mglru.mm.mmu_notifier import (
    mmu_notifier_clear_flush_young,
    mmu_notifier_clear_young,
    mmu_notifier_test_clear_young_bitmap,
    mmu_notifier_test_young,
)
from mglru.mm.page import PTE_YOUNG

PAGE = 4096
N = 256


def populated(preset="seed-v4", model="x86_tdp", mem=MIB, **kw):
    """A VM whose guest wrote all its memory, aged once, then re-read the first half."""
    s = make_vm(preset, model, mem=mem, **kw)
    s.vm.vcpu_access(0, 0, mem, write=True)
    s.age()
    s.vm.vcpu_access(0, 0, mem // 2)
    s.vm.log.clear()
    return s


def test_r01_kconfig_gates_secondary_walking() -> None:
    """R1 (1/7): without CONFIG_LRU_GEN_WALKS_SECONDARY_MMU cap 0x8 is neither shown nor
    settable, and aging does not consult secondary MMUs."""
    s = populated(kernel_kw={"walks_secondary_mmu": False})
    assert s.k.read(ENABLED) == "0x0007\n"
    s.k.write(ENABLED, "y")
    assert s.k.read(ENABLED) == "0x0007\n"
    s.age()
    assert len(s.vm.log) == 0 and s.gens()[-2:] == [0, 0]


def test_r02_cap_0x8_switches_secondary_walking_at_runtime() -> None:
    """R2 (2/7): `enabled` shows 0x000f; writing 0x7 turns secondary walking off, `y` on."""
    s = populated()
    assert s.k.read(ENABLED) == "0x000f\n"
    s.k.write(ENABLED, "0x7")
    s.age()
    assert len(s.vm.log) == 0
    s.k.write(ENABLED, "y")
    assert s.k.read(ENABLED) == "0x000f\n"
    s.vm.vcpu_access(0, 0, MIB // 2)
    s.age()
    assert s.vm.log.totals("test_young").calls == N


def test_r03_old_ptes_ask_test_young_then_clear_young() -> None:
    """R3 (2/7): an old in-node PTE asks test_young; if young, clear_young follows;
    if neither MMU saw an access it counts MM_LEAF_OLD."""
    s = populated()
    s.age()
    t, c = s.vm.log.totals("test_young"), s.vm.log.totals("clear_young")
    assert (t.calls, t.young, c.calls, c.young) == (N, N // 2, N // 2, N // 2)
    assert s.k.last_walk is not None
    assert s.lv.mm_state.stats[0][MM_LEAF_OLD] >= N // 2
    assert s.gens()[-2:] == [N // 2, 0]


def test_r04_thp_pmd_young_or_secondary_over_2mib() -> None:
    """R4 (2/7): a THP is young if its PMD or the secondary MMU over 2 MiB says so."""
    s = make_vm("seed-v4", mem=4 * MIB, thp=True)
    s.vm.vcpu_access(0, 0, 4 * MIB, write=True)
    arr = s.vm.mmu.sptes[0]
    assert arr[0] & 4 and arr[512] & 4  # 2 MiB SPTEs over the host THPs
    s.age()
    s.vm.vcpu_access(0, 0, PAGE)  # one guest access in the first 2 MiB
    s.vm.log.clear()
    s.age()
    c = s.vm.log.totals("clear_young")
    assert (c.calls, c.young, c.visited) == (2, 1, 2)
    assert s.gens()[-2:] == [512, 0]


def test_r05_nonleaf_pmd_young_not_used_while_walking_secondary() -> None:
    """R5 (2/7): with cap 0x8 on, an old non-leaf PMD does not skip its PTE table."""
    s = populated()
    pt = s.p.mm.pt
    pt.pmd_flags[: pt.nr_rows] &= ~np.uint8(PTE_YOUNG)  # the hardware saw no host access
    stats = s.lv.mm_state.stats[0]
    before = stats[MM_NONLEAF_FOUND]
    s.age()
    assert stats[MM_NONLEAF_FOUND] == before + 1
    s.k.write(ENABLED, "0x7")  # non-leaf young on, secondary walking off
    before = stats[MM_NONLEAF_FOUND]
    s.age()
    assert stats[MM_NONLEAF_FOUND] == before


@pytest.mark.parametrize("model,arch_lock", [("x86_tdp", None), ("x86_shadow", "write"),
                                             ("arm64", "read"), ("generic", "spin")])
def test_r06_lockless_memslot_walk_for_test_and_clear_young(model, arch_lock) -> None:
    """R6 (3/7): test/clear_young walk memslots without the common mmu_lock; (4-6/7)
    the arch handler locks per memslot range (x86: both address spaces)."""
    s = populated(model=model)
    hva = s.vm.gpa_to_hva(0)
    mmu_notifier_test_young(s.p.mm, hva)
    mmu_notifier_clear_young(s.p.mm, hva, hva + PAGE)
    nas = s.vm.memslots.nr_address_spaces
    for ev in s.vm.log.events:
        want = {arch_lock: nas} if arch_lock else {}
        assert {m: n for m, n in ev.locks.items() if m != "rcu"} == want
        assert not s.vm.mmu.takes_mmu_lock_twice(ev.notifier)


def test_r07_clear_flush_young_stays_on_the_locking_walk() -> None:
    """R7 (4/7, spec §6.5): clear_flush_young keeps the common lock; the x86 TDP handler
    runs under RCU only, so the call works: one write lock, one RCU section per
    address space, a flush (seed-v4 is v6.10-based: no flush elision)."""
    s = populated(model="x86_tdp")
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
    ev = s.vm.log.events[-1]
    assert dict(ev.locks) == {"write": 1, "rcu": 2} and ev.lock == "write"
    assert ev.flushes == 1


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize("model,kw,second", [
    ("x86_shadow", {}, "write"), ("x86_tdp", {"nested": True}, "write"),
    ("arm64", {}, "read"), ("generic", {}, "spin"),
])
def test_r07_clear_flush_young_deadlocks_where_the_handler_locks(model, kw, second,
                                                                 debug) -> None:
    """R7 (4/7): where the arch handler takes mmu_lock itself (arm64 for read, x86's
    shadow-MMU rmaps for write, the spinlock arches), clear_flush_young takes it a
    second time under the common walk's hold: the kernel hangs. The model raises
    KernelDeadlock, debug or not, before the handler changes anything."""
    s = populated(model=model, debug=debug, **kw)
    hva = s.vm.gpa_to_hva(0)
    before = [a.copy() for a in s.vm.mmu.sptes]
    with pytest.raises(KernelDeadlock, match=f"mmu_lock.*{second}"):
        mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
    assert all((a == b).all() for a, b in zip(s.vm.mmu.sptes, before, strict=True))
    assert len(s.vm.log) == 0


@pytest.mark.parametrize("preset,model,kw,hangs", [
    ("seed-v4", "arm64", {}, True), ("seed-v4", "generic", {}, True),
    ("seed-v4", "x86_tdp", {"nested": True}, True), ("seed-v4", "x86_tdp", {}, False),
    ("seed-v4-noopt", "arm64", {}, False), ("v6.10", "arm64", {}, False),
])
def test_r07_evicting_a_pmd_mapped_thp_of_a_vm_deadlocks(preset, model, kw, hangs) -> None:
    """Where R7 bites: a PMD-mapped THP has no look-around (v4 2/7 keeps
    pmdp_clear_flush_young_notify() in folio_referenced_one()), so evicting guest
    memory backed by THPs calls clear_flush_young. Under seed-v4 it hangs on arm64,
    the spinlock arches and x86 with shadow pages; seed-v4-noopt and v6.10 keep
    the lock in common code only."""
    s = make_vm(preset, model, mem=2 * MIB, thp=True, debug=False, **kw)
    s.vm.vcpu_access(0, 0, 2 * MIB, write=True)
    for _ in range(3):
        s.age()
    cmd = f"- {s.lv.memcg.id} 0 {s.lv.min_seq[0]} 200\n"
    if hangs:
        with pytest.raises(KernelDeadlock):
            s.k.write(LRU_GEN, cmd)
    else:
        assert s.k.write(LRU_GEN, cmd) == len(cmd)
        assert s.vm.log.totals("clear_flush_young").calls >= 1


def test_r08_x86_tdp_atomic_clear_and_cmpxchg_retry() -> None:
    """R8 (5/7): TDP aging under RCU clears A/D Accessed bits atomically; without A/D
    bits a failed cmpxchg is retried while the SPTE is still a present leaf, and a
    zapped one is skipped (not young)."""
    s = populated()
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 4 * PAGE)
    ev = s.vm.log.events[-1]
    assert ev.atomics == ev.cleared == 4 and ev.locks == {"rcu": 2}

    s = populated(ad_bits=False)
    hva = s.vm.gpa_to_hva(0)
    races = {(0, 0): RACE_TOUCH, (0, 1): RACE_TOUCH, (1, 0): RACE_ZAP}
    s.vm.race_hook = lambda kvm, as_id, gfn, attempt: races.get((gfn, attempt))
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 2 * PAGE)
    ev = s.vm.log.events[-1]
    assert (ev.retries, ev.failed, ev.cleared, ev.cmpxchg) == (2, 1, 1, 4)
    assert s.vm.mmu.sptes[0][0] & 2 == 0 and s.vm.mmu.sptes[0][1] == 0  # aged; zapped
    s.vm.log.clear()
    assert not mmu_notifier_clear_young(s.p.mm, hva + PAGE, hva + 2 * PAGE)


def test_r09_x86_shadow_mmu_under_the_write_lock() -> None:
    """R9 (5/7): shadow-MMU (rmap) aging still takes mmu_lock for write, per range, also
    next to the TDP MMU once a nested guest created shadow pages."""
    s = populated(model="x86_shadow")
    s.age()
    t = s.vm.log.totals("test_young")
    assert t.locks == {"write": 2 * N}
    s = populated(nested=True)
    s.age()
    assert s.vm.log.totals("test_young").locks == {"write": 2 * N, "rcu": 2 * N}
    assert not s.vm.fast_only_capable()
    s = populated("v6.15", nested=True)  # empty rmaps take no bit lock
    s.age()
    assert s.vm.log.totals("clear_young").locks == {"rcu": 2 * N}
    with pytest.raises(ValueError, match="nested"):
        make_vm(model="arm64", nested=True)


@pytest.mark.parametrize("debug", [False, True])
def test_r10_arm64_read_lock_and_eagain_goes_on(debug: bool) -> None:
    """R10 (6/7): arm64 ages under the read lock with a shared walk; a lost AF try-set
    makes stage2_age_walker() return -EAGAIN, which a walker without
    KVM_PGTABLE_WALK_HANDLE_FAULT ignores (arch/arm64/kvm/hyp/pgtable.c,
    kvm_pgtable_walk_continue(), 6.12): the walk ages the remaining leaves,
    kvm_pgtable_walk() returns 0 and the WARN_ON() around it stays quiet. The lost
    leaf keeps its Access Flag and counts as young (noted before the try-set)."""
    s = populated(model="arm64", debug=debug)
    s.age()
    assert s.vm.log.totals("test_young").locks == {"read": N}
    s.vm.vcpu_access(0, 0, 4 * PAGE)
    hva = s.vm.gpa_to_hva(0)
    s.vm.race_hook = lambda kvm, as_id, gfn, attempt: RACE_TOUCH if gfn == 1 else None
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + 4 * PAGE)
    ev = s.vm.log.events[-1]
    assert (ev.cleared, ev.failed, ev.visited, ev.cmpxchg) == (3, 1, 4, 4)
    assert list(s.vm.mmu.sptes[0][:4] & 2) == [0, 2, 0, 0]  # only gfn 1 keeps its AF
    assert not s.k.warnings
    # a lost race on the only accessed leaf: still reported young, the walk ends quietly
    s.vm.race_hook = lambda kvm, as_id, gfn, attempt: RACE_TOUCH
    assert mmu_notifier_clear_young(s.p.mm, hva + PAGE, hva + 2 * PAGE)
    assert s.vm.log.events[-1].failed == 1 and not s.k.warnings


def test_r11_other_arches_spinlock_per_range() -> None:
    """R11 (4/7): riscv/loongarch/mips/powerpc take their spinlock in the handler."""
    s = populated(model="generic")
    s.age()
    assert s.vm.log.totals("test_young").locks == {"spin": N}
    assert s.vm.log.totals("clear_young").locks == {"spin": N // 2}


def test_r12_noopt_walks_secondary_under_the_write_lock() -> None:
    """R12 (cover letter "no opt": 1, 2 and 7): MGLRU walks secondary MMUs as seed-v4, and
    KVM ages under the write-held mmu_lock taken once per call by common code."""
    s = populated("seed-v4-noopt")
    s.age()
    t, c = s.vm.log.totals("test_young"), s.vm.log.totals("clear_young")
    assert (t.calls, c.calls) == (N, N // 2)
    assert t.locks["write"] == N and c.locks["write"] == N // 2
    assert s.gens()[-2:] == [N // 2, 0]


def test_r13_v6_10_aging_ignores_secondary_mmus_and_flushes() -> None:
    """R13 (spec §8.4, §6.2): v6.10 aging makes no notifier calls; clear_flush_young
    runs under the write lock and flushes."""
    s = populated("v6.10", tlb_entries=64)
    s.age()
    assert len(s.vm.log) == 0 and s.gens()[-2:] == [0, 0]
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
    ev = s.vm.log.events[-1]
    assert ev.locks["write"] == 1 and ev.flushes == 1


def test_r14_v6_12_clear_young_per_candidate_no_test_young() -> None:
    """R14 (spec §8.3): one clear_young per candidate PTE after the folio filter; no
    test_young; young if either MMU saw an access."""
    s = populated("v6.12")
    s.age()
    c = s.vm.log.totals("clear_young")
    assert s.vm.log.totals("test_young").calls == 0
    assert (c.calls, c.young) == (N, N // 2)


def test_r15_v6_13_x86_elides_the_flush() -> None:
    """R15 (v6.13 KVM_ELIDE_TLB_FLUSH_IF_YOUNG): x86 clear_flush_young no longer flushes."""
    for preset, flushes in (("v6.12", 1), ("v6.14", 0)):
        s = populated(preset, tlb_entries=64)
        hva = s.vm.gpa_to_hva(0)
        assert mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
        assert s.vm.log.events[-1].flushes == flushes


def test_r16_v6_15_lockless_x86_without_retry() -> None:
    """R16 (spec §6.3, v6.15): x86 ages without mmu_lock in all three notifiers, a lost
    non-A/D cmpxchg is not retried (the SPTE stays young); the shadow MMU takes per-rmap
    bit locks; other arches keep the common lock."""
    s = populated("v6.15", ad_bits=False)
    hva = s.vm.gpa_to_hva(0)
    s.vm.race_hook = lambda kvm, as_id, gfn, attempt: RACE_TOUCH
    assert mmu_notifier_clear_flush_young(s.p.mm, hva, hva + PAGE)
    ev = s.vm.log.events[-1]
    assert (ev.retries, ev.failed, ev.cleared) == (0, 1, 0) and ev.locks == {"rcu": 2}
    s = populated("v6.15", "x86_shadow")
    s.age()
    t = s.vm.log.totals("clear_young")
    assert t.locks == {"rmap": t.visited} and t.visited == N
    s = populated("v6.15", "arm64")
    s.age()
    assert s.vm.log.totals("clear_young").locks == {"write": N}


def test_r17_v3_bitmap_lockless_only_and_batched() -> None:
    """R17 (thread, Yu Zhao / v3): an mm whose secondary MMU cannot age locklessly is not
    walked at all; otherwise one notifier call covers a 64-PTE window."""
    s = populated("v3-bitmap")
    s.age()
    c = s.vm.log.totals("clear_young")
    assert (c.calls, c.young, c.cleared) == (N // 64, 2, N // 2)
    assert s.vm.fast_only_capable()
    s.vm.vcpu_access(0, 0, 2 * PAGE)
    s.vm.log.clear()
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_test_clear_young_bitmap(s.p.mm, hva, 0b1111, True) == 0b11
    ev = s.vm.log.events[-1]
    assert (len(s.vm.log), ev.calls, ev.ranges, ev.visited, ev.cleared) == (1, 1, 2, 4, 2)
    s = populated("v3-bitmap", "arm64")
    before = s.gens()
    s.vm.vcpu_access(0, 0, MIB, write=True)  # host faults nothing new: PTEs stay old
    s.p.access(s.vm.gpa_to_hva(0), PAGE)     # even a host access is not harvested
    s.age()
    assert len(s.vm.log) == 0 and s.gens()[-2:] == [0, 0] and sum(before) == N
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_test_clear_young_bitmap(s.p.mm, hva, 0b11, True) == 0  # not asked


def test_r18_v5_fast_only_skips_slow_secondary_mmus() -> None:
    """R18 (thread, Sean / v5): MGLRU uses a fast-only test/clear; a secondary MMU that
    cannot answer without mmu_lock is skipped, the host side is still aged."""
    s = populated("v5-fast-only")
    s.age()
    f = s.vm.log.totals("test_clear_young_fast_only")
    assert (f.calls, f.young) == (N, N // 2) and f.locks == {"rcu": 2 * N}
    s = populated("v5-fast-only", "x86_shadow")
    s.p.access(s.vm.gpa_to_hva(0), PAGE)
    s.age()
    assert len(s.vm.log) == 0 and s.gens()[-2:] == [1, 0]
    hva = s.vm.gpa_to_hva(0)
    assert not mmu_notifier_clear_young(s.p.mm, hva, hva + PAGE, fast_only=True)


def test_r18_v5_fast_only_x86_declines_only_with_shadow_sptes() -> None:
    """R18 (thread, Sean / v5): x86 answers the fast-only call from the TDP MMU under
    RCU also after a nested guest ran; it declines only while shadow-MMU SPTEs exist
    (their rmap walk needs mmu_lock). The locking test/clear_young still walk the
    rmaps under the write lock."""
    s = populated("v5-fast-only", nested=True)
    assert s.vm.fast_only_capable()
    s.age()
    f = s.vm.log.totals("test_clear_young_fast_only")
    assert (f.calls, f.young) == (N, N // 2) and f.locks == {"rcu": 2 * N}
    s.vm.vcpu_access(0, 0, PAGE)
    s.vm.log.clear()
    hva = s.vm.gpa_to_hva(0)
    assert mmu_notifier_test_young(s.p.mm, hva)
    assert s.vm.log.events[-1].locks == {"write": 2, "rcu": 2}
    assert mmu_notifier_clear_young(s.p.mm, hva, hva + PAGE, fast_only=True)
    assert s.vm.log.events[-1].locks == {"rcu": 2} and not s.vm.mmu.sptes[0][0] & 2

    s = populated("v5-fast-only", nested=True, shadow_sptes=True)
    assert not s.vm.fast_only_capable()
    s.p.access(s.vm.gpa_to_hva(0), PAGE)
    s.age()
    assert len(s.vm.log) == 0 and s.gens()[-2:] == [1, 0]
    with pytest.raises(ValueError, match="nested"):
        make_vm("v5-fast-only", shadow_sptes=True)
