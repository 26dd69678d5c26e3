"""Secondary PTE state: one byte per guest frame (what kvm_age_gfn() reads).

Each address space of a VM has a `uint8` array indexed by gfn. The low three
bits are the contract with the compiled aging walk (`lru_gen._walk_kernel`):
PRESENT, ACCESSED and HUGE (a 2 MiB leaf: every gfn of the 512-aligned block
has HUGE and the leaf's state lives on the head gfn). The bits above are the
KVM model's own.

ACCESSED means "the guest used this translation since it was last aged":
the hardware Accessed bit of an A/D-enabled x86 SPTE, the arm64 Access Flag,
or, for an x86 SPTE without A/D bits, *not* access-tracked (aging strips R/X
and the next guest access takes a fast page fault that restores them).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

# the bits are the aging walk's SPTE contract (lru_gen._walk_secondary): one definition
from mglru.lru_gen._walk_kernel import (
    SPTE_ACCESSED,
    SPTE_DIRTY,
    SPTE_HUGE,
    SPTE_PRESENT,
    SPTE_WRITABLE,
)

__all__ = ["SPTE_PRESENT", "SPTE_ACCESSED", "SPTE_HUGE", "SPTE_WRITABLE", "SPTE_DIRTY",
           "HPAGE_GFNS", "leaf_heads", "leaf_head_one", "grow"]

#: gfns per 2 MiB leaf
HPAGE_GFNS = 512


def leaf_heads(sptes: npt.NDArray[np.uint8], g0: int, g1: int) -> npt.NDArray[np.int64]:
    """Head gfns of the present leaf SPTEs covering gfns [g0, g1), in gfn order."""
    g1 = min(g1, len(sptes))
    if g1 <= g0:
        return np.empty(0, np.int64)
    f = sptes[g0:g1]
    gfns = np.arange(g0, g1, dtype=np.int64)
    heads = np.where(f & SPTE_HUGE, gfns & ~np.int64(HPAGE_GFNS - 1), gfns)
    if len(heads) > 1:
        heads = heads[np.concatenate(([True], heads[1:] != heads[:-1]))]
    return heads[(sptes[heads] & SPTE_PRESENT) != 0]


def leaf_head_one(sptes: npt.NDArray[np.uint8], g: int) -> int:
    """`leaf_heads` of the one gfn `g`: the head of its present leaf, or -1."""
    if g >= len(sptes):
        return -1
    head = g & ~(HPAGE_GFNS - 1) if sptes[g] & SPTE_HUGE else g
    return head if sptes[head] & SPTE_PRESENT else -1


def grow(sptes: npt.NDArray[np.uint8], n: int) -> npt.NDArray[np.uint8]:
    """The array, grown (zero-filled, lazily mapped) to hold at least `n` gfns."""
    if len(sptes) >= n:
        return sptes
    n = -(-n // HPAGE_GFNS) * HPAGE_GFNS
    out = np.zeros(n, np.uint8)
    out[: len(sptes)] = sptes
    return out
