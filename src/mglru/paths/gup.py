"""GUP of one page for a KVM fault, on Python ints.

Kernel: virt/kvm/kvm_main.c: hva_to_pfn() (hva_to_pfn_fast(), then the slow path's
get_user_pages); mm/swap.c: folio_mark_accessed().

Mechanism: `get_user_page` reaches the state `paths.fault.get_user_pages` reaches
for a one-page range, without building arrays: the guest faults one page at a
time, and the array path costs more than the fault itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mglru.mm.page import (
    HPAGE_PMD_NR,
    LRU_REFS_MASK,
    LRU_REFS_SHIFT,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_HUGE_ZERO,
    PMD_LEAF,
    PMD_SHIFT,
    PMD_TABLE,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_WRITE,
    PG_referenced,
    PG_unevictable,
    PG_workingset,
)
from mglru.paths.fault import _check_mapped, user_access

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.process import Process

__all__ = ["get_user_page", "mark_accessed_one"]


def mark_accessed_one(k: SimKernel, head: int) -> None:
    """`paths.fault.mark_accessed` of one folio (mm/swap.c: folio_mark_accessed())."""
    mem = k.mem
    f = int(mem.flags[head])
    if f & PG_unevictable:
        return
    refs = (f & LRU_REFS_MASK) >> LRU_REFS_SHIFT
    if not f & PG_referenced:
        new = (f & ~LRU_REFS_MASK) | PG_referenced if k.cfg.two_step_promotion \
            else f | PG_referenced
    elif k.cfg.two_step_promotion:
        new = f | PG_workingset if refs == 3 else f + (1 << LRU_REFS_SHIFT)
    elif not f & PG_workingset:
        new = f | PG_workingset
    else:
        new = f if refs == 3 else f + (1 << LRU_REFS_SHIFT)
    mem.flags[head] = new


def _translate_one(p: Process, addr: int) -> tuple[int, bool, bool, bool, bool]:
    """`paths.fault._translate` of the page at `addr`: (pfn, PMD leaf, writable, present,
    zero page)."""
    mm = p.mm
    vma = mm.find_vma(addr)
    if vma is None:
        _check_mapped(mm, addr, addr + PAGE_SIZE)  # raises as the array path does
    pt = mm.pt
    vpn = addr >> PAGE_SHIFT
    row = int(vma.rows[(vpn >> 9) - (vma.start >> PMD_SHIFT)])
    state = int(pt.pmd_state[row])
    sub = vpn & (HPAGE_PMD_NR - 1)
    if state in (PMD_LEAF, PMD_HUGE_ZERO):
        return int(pt.pmd_pfn[row]) + sub, True, state == PMD_LEAF, True, state == PMD_HUGE_ZERO
    idx = row * HPAGE_PMD_NR + sub
    flags = int(pt.pte_flags.reshape(-1)[idx])
    present = state == PMD_TABLE and bool(flags & PTE_PRESENT)
    return (int(pt.pte_pfn.reshape(-1)[idx]), False, bool(flags & PTE_WRITE), present,
            bool(flags & PTE_SPECIAL))


def get_user_page(k: SimKernel, p: Process, addr: int, write: bool) -> tuple[int, bool, bool]:
    """`paths.fault.get_user_pages` of the one page at `addr`: (pfn, PMD leaf, writable)."""
    pfn, leaf, writable, present, special = _translate_one(p, addr)
    if present and (writable or not write):
        if not special:  # GUP-fast: KVM marks the folio accessed when it drops it
            p.mm.use()
            mark_accessed_one(k, pfn & ~(HPAGE_PMD_NR - 1) if leaf else pfn)
        return pfn, leaf, writable
    user_access(k, p, addr & ~(PAGE_SIZE - 1), PAGE_SIZE, write)
    pfn, leaf, writable, _, _ = _translate_one(p, addr)
    return pfn, leaf, writable
