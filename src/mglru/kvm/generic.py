"""One model for riscv, loongarch, mips and powerpc (book3s): their kvm_age_gfn(); v4 4/7.

What differs from the base: `kvm->mmu_lock` is a spinlock, taken by the
common memslot walk (before the v4 series, and upstream) or, after v4 4/7, by each
arch's `kvm_age_gfn` / `kvm_test_age_gfn` per gfn range. The accessed bit is
cleared under that lock by a plain store.

Choices where the arches differ: every leaf of the range is aged and tested
(loongarch/powerpc walk the range; riscv and mips look only at the leaf of
`range->start`, the same answer whenever the range is one leaf, as the
aging walk's 4 KiB and THP ranges usually are); powerpc e500, whose handlers
return false without a lock, is not modelled.
"""

from __future__ import annotations

from typing import ClassVar

from mglru.kvm.accounting import LOCK_SPIN
from mglru.kvm.mmu import SecondaryMmuBase

__all__ = ["Generic"]


class Generic(SecondaryMmuBase):
    """riscv / loongarch / mips / powerpc. See the module docstring."""

    name: ClassVar[str] = "generic"
    mmu_lock: ClassVar[str] = LOCK_SPIN
    seed_v4_lock: ClassVar[str] = LOCK_SPIN
