"""arm64 stage-2 page tables (Access Flag). arch/arm64/kvm/mmu.c: kvm_age_gfn(); v4 6/7.

What differs from the base: upstream never selects lockless aging, so the
common code holds mmu_lock for write and the stage-2 walk is exclusive (the
AF "try-set" is a plain store that cannot fail). v4 6/7 takes the lock for
*read* and makes the walk shared: the AF is cleared by compare-exchange, and
a lost race makes stage2_age_walker() return -EAGAIN. The age walker does not
set KVM_PGTABLE_WALK_HANDLE_FAULT, so kvm_pgtable_walk_continue() ignores it
(arch/arm64/kvm/hyp/pgtable.c, 6.12): the walk visits the remaining leaves,
kvm_pgtable_walk() returns 0 and the `WARN_ON()` around it stays quiet. The
lost leaf keeps its Access Flag; young was noted before the try-set, so the
call reports young. TLB invalidation is left to
clear_flush_young (arm64 does not elide it). A test walks every leaf of the
range: the stage-2 walker has no early exit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from mglru.kvm.accounting import LOCK_READ, LOCK_WRITE, AgingEvent
from mglru.kvm.mmu import PLAIN, TRYSET_EAGAIN, SecondaryMmuBase
from mglru.kvm.spte import SPTE_ACCESSED, leaf_heads

if TYPE_CHECKING:
    from mglru.kvm.memslot import KvmGfnRange

__all__ = ["Arm64"]


class Arm64(SecondaryMmuBase):
    """arm64 stage 2. See the module docstring."""

    name: ClassVar[str] = "arm64"
    mmu_lock: ClassVar[str] = LOCK_WRITE
    seed_v4_lock: ClassVar[str] = LOCK_READ

    def clear_policy(self) -> int:
        """Shared walk with a racy try-set under seed-v4; exclusive otherwise."""
        return TRYSET_EAGAIN if self.rules.kvm_arch_aging_locks else PLAIN

    def kvm_test_age_gfn(self, rng: KvmGfnRange, ev: AgingEvent) -> bool:
        """The stage-2 walker visits every leaf of the range (no early exit): kvm_age_gfn()."""
        arr = self.sptes[rng.slot.as_id]
        heads = leaf_heads(arr, rng.start, rng.end)
        ev.visited += len(heads)
        return bool((arr[heads] & SPTE_ACCESSED).any())
