"""x86 TDP MMU (EPT/NPT roots walked by `tdp_mmu.c`).

Kernel: arch/x86/kvm/mmu/tdp_mmu.c: kvm_tdp_mmu_age_gfn_range(); v4 5/7.

What differs from the base: the walk is always an RCU read-side section
(one per gfn range), x86 selects lockless aging (v6.15) and TLB-flush elision
(v6.13), and how an accessed SPTE is aged depends on the version and on A/D
bits:

=============================  ====================  =============================
kvm_aging                      A/D-enabled SPTE      A/D-disabled (access-tracked)
=============================  ====================  =============================
write-lock, seed-v4-noopt      clear; atomic only    plain store (exclusive)
                               if W and not D
seed-v4 (5/7)                  atomic fetch-and      cmpxchg, retry while still a
                                                     present leaf, else not young
lockless (v6.15)               atomic fetch-and      one cmpxchg; a lost race
                                                     leaves the SPTE accessed
=============================  ====================  =============================

A VM that ran a nested guest also has shadow-MMU rmaps (`nested=True`):
seed-v4 then takes mmu_lock for write around their walk (5/7). The v5
fast-only call (the thread: Sean, "on x86 it darn well better be active if
the TDP MMU is enabled") answers from the TDP MMU under RCU and declines only
while shadow-MMU SPTEs exist (`shadow_sptes`, kvm->arch.indirect_shadow_pages),
since only their rmap walk needs the lock.
"""

from __future__ import annotations

from typing import ClassVar

from mglru.kvm.accounting import FAST_ONLY, LOCK_RCU, LOCK_WRITE
from mglru.kvm.mmu import ATOMIC, CMPXCHG_ONCE, CMPXCHG_RETRY, PLAIN, VOLATILE, SecondaryMmuBase

__all__ = ["X86Tdp"]


class X86Tdp(SecondaryMmuBase):
    """The x86 TDP MMU. See the module docstring."""

    name: ClassVar[str] = "x86_tdp"
    mmu_lock: ClassVar[str] = LOCK_WRITE
    selects_lockless_aging: ClassVar[bool] = True
    elides_tlb_flush: ClassVar[bool] = True
    seed_v4_lock: ClassVar[str] = LOCK_RCU
    #: shadow pages exist (a nested guest ran); set by create_vm(nested=True)
    nested: bool = False
    #: shadow-MMU SPTEs are mapped now (indirect shadow pages); set by
    #: create_vm(shadow_sptes=True). Only the v5 fast-only call looks at it.
    shadow_sptes: bool = False

    def clear_policy(self) -> int:
        """See the table in the module docstring."""
        ad = self.kvm.ad_bits
        if not self.rules.kvm_tdp_atomic_aging:
            return VOLATILE if ad else PLAIN
        if ad:
            return ATOMIC
        return CMPXCHG_RETRY if self.rules.kvm_cmpxchg_retry else CMPXCHG_ONCE

    def arch_locks(self, notifier: str) -> tuple[str, ...]:
        """The TDP iterator runs under RCU in every version (no mmu_lock of its own).

        With shadow pages (a nested guest ran: kvm_memslots_have_rmaps), seed
        5/7 also walks the rmaps under the write lock, per range; v6.15 walks
        them under per-rmap bit locks, which empty rmaps do not take (the
        model maps no nested guest, so its rmaps are empty).
        """
        if self.nested and self.rules.kvm_arch_aging_locks:
            if (notifier == FAST_ONLY and self.rules.kvm_fast_only_tdp_answers
                    and not self.shadow_sptes):
                return (LOCK_RCU,)  # v5: no shadow SPTEs to walk, the TDP MMU answers
            return (LOCK_WRITE, LOCK_RCU)
        return (LOCK_RCU,)
