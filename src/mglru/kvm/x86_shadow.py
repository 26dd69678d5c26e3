"""x86 shadow MMU: SPTEs found through per-gfn rmaps (`mmu.c`).

Kernel: arch/x86/kvm/mmu/mmu.c: kvm_rmap_age_gfn_range(); v4 5/7.

Used when the TDP MMU is off (`tdp_mmu=False`: shadow paging or the legacy
TDP MMU). What differs from the base: after v4 4/7 the rmap walk takes
mmu_lock for write per gfn range (5/7 keeps it: "harvesting age information
from the shadow MMU is still done while holding the MMU write lock"); v6.15
ages rmaps without mmu_lock, taking each non-empty rmap's bit lock. A/D-enabled
SPTEs have their Accessed bit cleared atomically (clear_bit); without A/D bits
the SPTE is marked for access tracking, by a plain store under the lock or by
one cmpxchg (v6.15) whose lost race is tolerated.

The model's guest maps each gfn once, so an rmap holds at most one SPTE per
level (aliases are not modelled).
"""

from __future__ import annotations

from typing import ClassVar

from mglru.kvm.accounting import LOCK_RMAP, LOCK_WRITE
from mglru.kvm.mmu import ATOMIC, CMPXCHG_ONCE, PLAIN, SecondaryMmuBase

__all__ = ["X86Shadow"]


class X86Shadow(SecondaryMmuBase):
    """The x86 shadow MMU (rmaps). See the module docstring."""

    name: ClassVar[str] = "x86_shadow"
    mmu_lock: ClassVar[str] = LOCK_WRITE
    selects_lockless_aging: ClassVar[bool] = True
    elides_tlb_flush: ClassVar[bool] = True
    seed_v4_lock: ClassVar[str] = LOCK_WRITE

    def clear_policy(self) -> int:
        """clear_bit with A/D bits; access tracking otherwise (cmpxchg once in v6.15)."""
        if self.kvm.ad_bits:
            return ATOMIC
        return CMPXCHG_ONCE if self.rules.kvm_lockless_aging else PLAIN

    def arch_locks(self, notifier: str) -> tuple[str, ...]:
        """seed-v4: write lock per range; v6.15: one rmap bit lock per rmap visited."""
        if self.rules.kvm_lockless_aging:
            return (LOCK_RMAP,)
        return super().arch_locks(notifier)
