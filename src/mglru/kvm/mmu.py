"""The `SecondaryMmu` protocol and the base every arch model shares.

Kernel: virt/kvm/kvm_main.c and each arch's kvm_age_gfn(); v4 3-6/7.

Mechanism: a VM's secondary MMU keeps one SPTE array per address space
(`mglru.kvm.spte`) and implements `kvm_age_gfn` / `kvm_test_age_gfn` for one
`KvmGfnRange`. What differs per arch is small and declared, not coded: the
kind of `kvm->mmu_lock` (rwlock or spinlock), whether the arch selects
lockless aging (v6.15), which lock its handlers take after v4 4/7, and how
an accessed SPTE is aged (`clear_policy`: a plain store under an exclusive
lock, an atomic fetch-and, or a compare-exchange that can lose a race).

Locks are derived by `lock_plan` from the config and the notifier, so a
single notifier call (Python) and an aging walk's aggregate (compiled) are
charged by the same rule:

* common lock: taken by `kvm_handle_hva_range` once per call that found a
  memslot, unless the memslot walk is lockless (v4 3/7 for test/clear_young;
  v6.15 for all three on archs selecting KVM_MMU_LOCKLESS_AGING);
* arch locks: taken by the handler once per gfn range (v4 4-6/7; the v6.15
  shadow MMU's per-rmap bit lock once per rmap visited).

Races: the model is sequential, so a compare-exchange fails only when the
VM's `race_hook` says a concurrent writer got there first (see
`Kvm.race_hook`). The compiled walk never races.

Future optimizations:
1. a compiled per-range loop if Python-level calls ever dominate a run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
import numpy.typing as npt

from mglru.kvm.accounting import (
    CLEAR_FLUSH_YOUNG,
    FAST_ONLY,
    LOCK_READ,
    LOCK_RMAP,
    LOCK_SPIN,
    LOCK_WRITE,
    AgingEvent,
)
from mglru.kvm.spte import (
    HPAGE_GFNS,
    SPTE_ACCESSED,
    SPTE_DIRTY,
    SPTE_HUGE,
    SPTE_PRESENT,
    SPTE_WRITABLE,
    grow,
    leaf_head_one,
    leaf_heads,
)

if TYPE_CHECKING:
    from mglru.kvm.kvm_main import Kvm
    from mglru.kvm.memslot import KvmGfnRange
    from mglru.presets import KernelConfig, Rules

__all__ = ["SecondaryMmu", "SecondaryMmuBase", "PLAIN", "ATOMIC", "VOLATILE", "CMPXCHG_RETRY",
           "CMPXCHG_ONCE", "TRYSET_EAGAIN", "RACE_TOUCH", "RACE_ZAP"]

# how an accessed leaf is aged (clear_policy)
PLAIN = 0          # exclusive under mmu_lock: a plain store
ATOMIC = 1         # atomic fetch-and / clear_bit: cannot fail
VOLATILE = 2       # v6.10 x86 TDP A/D under the lock: atomic only if W and not D
CMPXCHG_RETRY = 3  # v4 5/7, x86 without A/D: retry while still a present leaf
CMPXCHG_ONCE = 4   # v6.15, x86 without A/D: give up, the SPTE stays accessed
#: v4 6/7, arm64 shared walk: a lost try-set returns -EAGAIN, which a walker without
#: KVM_PGTABLE_WALK_HANDLE_FAULT ignores (arch/arm64/kvm/hyp/pgtable.c,
#: kvm_pgtable_walk_continue(), 6.12): the walk goes on and returns 0, no WARN
TRYSET_EAGAIN = 5
_RACY = (CMPXCHG_RETRY, CMPXCHG_ONCE, TRYSET_EAGAIN)

# what a race hook may report
RACE_TOUCH = "touch"  # a concurrent writer changed the SPTE; still a present, accessed leaf
RACE_ZAP = "zap"      # it was zapped concurrently

_MMU_LOCKS = (LOCK_WRITE, LOCK_READ, LOCK_SPIN)


class SecondaryMmu(Protocol):
    """What the KVM core needs from an arch's secondary MMU model (STYLE item 8)."""

    name: str
    family: str
    mmu_lock: str

    def lock_plan(self, notifier: str) -> tuple[str | None, tuple[str, ...]]:
        """(common lock or None, arch locks per range) for a notifier under the config."""

    def kvm_age_gfn(self, rng: KvmGfnRange, ev: AgingEvent) -> bool:
        """Age the leaves of a gfn range; True if any was accessed."""

    def kvm_test_age_gfn(self, rng: KvmGfnRange, ev: AgingEvent) -> bool:
        """Whether any leaf of a gfn range was accessed; never clears."""

    def fast_only_capable(self) -> bool:
        """Aging takes no mmu_lock (v3/v5 what-ifs)."""


class SecondaryMmuBase:
    """SPTE arrays and the aging loop; subclasses declare what differs.

    Class attributes a subclass sets:
        name: the arch model ("x86_tdp", "x86_shadow", "arm64", "generic").
        mmu_lock: LOCK_WRITE for rwlock archs, LOCK_SPIN for spinlock archs.
        selects_lockless_aging: KVM_MMU_LOCKLESS_AGING (v6.15, x86 only).
        elides_tlb_flush: selects KVM_ELIDE_TLB_FLUSH_IF_YOUNG (x86, v6.13+).
        seed_v4_lock: the lock its handlers take after v4 4/7 (5/7, 6/7).
    """

    name: ClassVar[str] = "base"
    mmu_lock: ClassVar[str] = LOCK_WRITE
    selects_lockless_aging: ClassVar[bool] = False
    elides_tlb_flush: ClassVar[bool] = False
    seed_v4_lock: ClassVar[str] = LOCK_WRITE

    def __init__(self, kvm: Kvm, family: str, nr_address_spaces: int) -> None:
        self.kvm = kvm
        self.family = family
        self.sptes: list[npt.NDArray[np.uint8]] = [np.zeros(0, np.uint8)
                                                   for _ in range(nr_address_spaces)]

    @property
    def cfg(self) -> KernelConfig:
        """The kernel's configuration."""
        return self.kvm.k.cfg

    @property
    def rules(self) -> Rules:
        """The kernel's version rules."""
        return self.kvm.k.rules

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.family}, kvm_aging={self.cfg.kvm_aging})"

    # -- what differs per arch (overridden where needed) --------------------------
    def clear_policy(self) -> int:
        """How one accessed leaf is aged under the config (the arch's kvm_age_gfn())."""
        return PLAIN

    def arch_locks(self, notifier: str) -> tuple[str, ...]:
        """Locks the handler takes per gfn range. v4 4/7 moved them into each arch."""
        if self.rules.kvm_arch_aging_locks:
            return (self.seed_v4_lock,)
        return ()

    def memslot_walk_lockless(self, notifier: str) -> bool:
        """range->lockless of kvm_handle_hva_range (virt/kvm/kvm_main.c). v4 3/7.

        seed-v4: test/clear_young (clear_flush_young stays on the locking walk);
        v6.15: all three aging notifiers where the arch selects lockless aging.
        The v5 fast-only call is lockless by construction.
        """
        if notifier == FAST_ONLY:
            return True
        if self.rules.kvm_lockless_test_clear_young:
            return notifier != CLEAR_FLUSH_YOUNG
        if self.rules.kvm_lockless_aging:
            return self.selects_lockless_aging
        return False

    def fast_only_capable(self) -> bool:
        """No mmu_lock on the aging path: the arch locks nothing but RCU. Seed thread, v3/v5."""
        if self.rules.kvm_arch_aging_locks or (self.rules.kvm_lockless_aging
                                               and self.selects_lockless_aging):
            return all(lock not in _MMU_LOCKS for lock in self.arch_locks(FAST_ONLY))
        return False

    def flush_on_young(self) -> bool:
        """clear_flush_young flushes unless the arch elides it (x86 >= v6.13)."""
        return not (self.elides_tlb_flush and self.cfg.kvm_elide_tlb_flush_if_young)

    def lock_plan(self, notifier: str) -> tuple[str | None, tuple[str, ...]]:
        """(common lock or None, arch locks per range). See the module docstring."""
        common = None if self.memslot_walk_lockless(notifier) else self.mmu_lock
        return common, self.arch_locks(notifier)

    def takes_mmu_lock_twice(self, notifier: str,
                             plan: tuple[str | None, tuple[str, ...]] | None = None) -> bool:
        """Whether the handler takes kvm->mmu_lock while the memslot walk holds it.

        v4 4/7 moves the lock of kvm_age_gfn() into each arch but leaves
        clear_flush_young on the locking kvm_handle_hva_range() (only test and
        clear_young become lockless, 3/7): where the handler locks mmu_lock
        (arm64 for read, x86's shadow-MMU rmaps for write, the spinlock
        arches), the same thread takes it twice and hangs.
        """
        common, arch = plan or self.lock_plan(notifier)
        return common is not None and any(lock in _MMU_LOCKS for lock in arch)

    # -- accounting -----------------------------------------------------------------
    def charge_locks(self, ev: AgingEvent, slot_calls: int, ranges: int, rmaps: int,
                     plan: tuple[str | None, tuple[str, ...]] | None = None) -> None:
        """Add the lock acquisitions of `lock_plan` (or `plan`, its result) to an event."""
        common, arch = plan or self.lock_plan(ev.notifier)
        if common is not None and slot_calls:
            ev.locks[common] += slot_calls
        for lock in arch:
            n = rmaps if lock == LOCK_RMAP else ranges
            if n:
                ev.locks[lock] += n

    def atomics_for(self, cleared: int, cleared_wc: int) -> tuple[int, int]:
        """(atomics, cmpxchg) of a race-free walk that cleared `cleared` leaves.

        `cleared_wc` of them were writable and clean (volatile under v6.10).
        """
        policy = self.clear_policy()
        if policy == PLAIN:
            return 0, 0
        if policy == VOLATILE:
            return cleared_wc, 0
        if policy == ATOMIC:
            return cleared, 0
        return 0, cleared

    # -- SPTE state ---------------------------------------------------------------------
    def ensure(self, as_id: int, nr_gfns: int) -> None:
        """Make the SPTE array of an address space cover `nr_gfns` frames.

        An address space's array stays empty until a vCPU first uses it (x86's
        SMM space usually never is: no TDP root, nothing to visit); from then
        on it covers every memslot of the space. The walk reads no SPTE beyond
        an array's end.
        """
        self.sptes[as_id] = grow(self.sptes[as_id], nr_gfns)

    def zap_one(self, as_id: int, g: int) -> int:
        """`zap` of the one gfn `g`."""
        arr = self.sptes[as_id]
        head = leaf_head_one(arr, g)
        if head < 0:
            return 0
        if arr[head] & SPTE_HUGE:
            arr[head: head + HPAGE_GFNS] = 0
        arr[head] = 0
        return 1

    def zap(self, as_id: int, gfns: npt.NDArray[np.int64]) -> int:
        """Drop the leaves covering `gfns` (a 2 MiB leaf goes whole). Returns leaves zapped."""
        arr = self.sptes[as_id]
        gfns = gfns[gfns < len(arr)]
        if not (arr[gfns] & (SPTE_PRESENT | SPTE_HUGE)).any():
            return 0  # nothing mapped there (a fresh fault): skip the unique
        heads = np.unique(np.where(arr[gfns] & SPTE_HUGE, gfns & ~np.int64(HPAGE_GFNS - 1), gfns))
        heads = heads[(arr[heads] & SPTE_PRESENT) != 0]
        huge = heads[(arr[heads] & SPTE_HUGE) != 0]
        if len(huge):
            arr[(huge[:, None] + np.arange(HPAGE_GFNS)).ravel()] = 0
        arr[heads] = 0
        return len(heads)

    # -- kvm_age_gfn / kvm_test_age_gfn ----------------------------------------------------
    def kvm_test_age_gfn(self, rng: KvmGfnRange, ev: AgingEvent) -> bool:
        """Whether any present leaf of the range is accessed; stops at the first."""
        arr = self.sptes[rng.slot.as_id]
        if rng.end - rng.start == 1:  # one page (test_young): on ints
            head = leaf_head_one(arr, rng.start)
            if head < 0:
                return False
            ev.visited += 1
            return bool(arr[head] & SPTE_ACCESSED)
        heads = leaf_heads(arr, rng.start, rng.end)
        acc = np.flatnonzero(arr[heads] & SPTE_ACCESSED)
        ev.visited += int(acc[0]) + 1 if len(acc) else len(heads)
        return bool(len(acc))

    def kvm_age_gfn(self, rng: KvmGfnRange, ev: AgingEvent) -> bool:
        """Age every accessed present leaf of the range; True if any was accessed."""
        as_id = rng.slot.as_id
        arr = self.sptes[as_id]
        hook = self.kvm.race_hook
        if rng.end - rng.start == 1 and hook is None:  # one page (look-around): on ints
            return self.age_one(arr, rng.start, ev)
        heads = leaf_heads(arr, rng.start, rng.end)
        st = arr[heads]
        young = heads[(st & SPTE_ACCESSED) != 0]
        policy = self.clear_policy()
        if hook is None or policy not in _RACY:
            ev.visited += len(heads)
            ev.cleared += len(young)
            wc = int(np.count_nonzero((arr[young] & (SPTE_WRITABLE | SPTE_DIRTY)) == SPTE_WRITABLE))
            atomics, cmpxchg = self.atomics_for(len(young), wc)
            ev.atomics += atomics
            ev.cmpxchg += cmpxchg
            arr[young] &= np.uint8(~SPTE_ACCESSED & 0xFF)
            return bool(len(young))
        return self._age_racy(as_id, heads, policy, hook, ev)

    def age_one(self, arr: npt.NDArray[np.uint8], g: int, ev: AgingEvent) -> bool:
        """`kvm_age_gfn` of the one gfn `g` without a race hook."""
        head = leaf_head_one(arr, g)
        if head < 0:
            return False
        ev.visited += 1
        st = int(arr[head])
        if not st & SPTE_ACCESSED:
            return False
        ev.cleared += 1
        atomics, cmpxchg = self.atomics_for(1, int(st & (SPTE_WRITABLE | SPTE_DIRTY)
                                                   == SPTE_WRITABLE))
        ev.atomics += atomics
        ev.cmpxchg += cmpxchg
        arr[head] = st & ~SPTE_ACCESSED
        return True

    def _age_racy(self, as_id: int, heads: npt.NDArray[np.int64], policy: int, hook,
                  ev: AgingEvent) -> bool:
        """The compare-exchange loop of one range, with races from the hook."""
        arr = self.sptes[as_id]
        ret = False
        for h in heads.tolist():
            ev.visited += 1
            attempt = 0
            while arr[h] & SPTE_ACCESSED and arr[h] & SPTE_PRESENT:
                ev.cmpxchg += 1
                race = hook(self.kvm, as_id, h, attempt)
                if race is None:
                    arr[h] &= np.uint8(~SPTE_ACCESSED & 0xFF)
                    ev.cleared += 1
                    ret = True
                    break
                if race == RACE_ZAP:
                    self.kvm.kvm_unmap_gfn_range(as_id, h, h + 1)
                if policy == CMPXCHG_RETRY:
                    if race == RACE_TOUCH:  # still a present leaf: try again
                        ev.retries += 1
                        attempt += 1
                        continue
                    ev.failed += 1  # not a leaf any more: continue the walk, not young
                    break
                # CMPXCHG_ONCE gives up; TRYSET_EAGAIN's -EAGAIN is ignored by the
                # stage-2 walk, which visits the next leaf: the same outcome
                ev.failed += 1
                ret = True  # young was noted before the update was tried
                break
        return ret
