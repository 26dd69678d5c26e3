"""Compiled KVM page faults of a guest stream, for the cases that need no reclaim.

Kernel: arch/x86/kvm/mmu/mmu.c: kvm_tdp_page_fault() (the generic steps of every
arch's fault handler), virt/kvm/kvm_main.c: hva_to_pfn(), mm/memory.c:
do_anonymous_page() and do_swap_page().

Mechanism: `guest_hits` stops at an access that needs a KVM fault. When its
memslot lies in one 4 KiB anonymous VMA of the VMM, the SPTE needs no zap (no
remote TLB flush), and the host page is not mapped already (which GUP-fast
would take), `guest_fault` does what `kvm.vcpu._kvm_page_fault_one` does: the
host fault of GUP (`paths.fault._fault_anon_one`, through
`_host_fault.anon_fault` within the budget of `workload.host.fault_context`,
so neither try_charge() nor kswapd reclaims), then a small writable (or, for a
read of the zero page, read-only) SPTE, accessed. Anything else goes back to
the Python path. The host's counters are applied after the loop by
`workload.host.apply_faults`; the VM's by `workload.guest.run_guest`.

`host` = (per memslot of the address space: host vpn of its first gfn, row
offset, VMA kind or -1; the VMAs' page-table rows; pmd_state, pmd_flags, PTE
flags and pfns; folio flags; the fault context; the accesses faulted in; `out`
= [faults, the mm was used]; the fault's rooms and an empty pool of reclaimed
pages, see `workload.host_reclaim.fault_budget`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.kvm.spte import (
    SPTE_ACCESSED as _ACC,
    SPTE_DIRTY as _DIRTY,
    SPTE_HUGE as _HUGE,
    SPTE_PRESENT as _PRESENT,
    SPTE_WRITABLE as _WRITABLE,
)
from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.mm.page import (
    PMD_NONE as _PMD_NONE,
    PMD_TABLE as _PMD_TABLE,
    PTE_DIRTY as _PTE_DIRTY,
    PTE_PRESENT as _PTE_PRESENT,
    PTE_SPECIAL as _PTE_SPECIAL,
    PTE_WRITE as _PTE_WRITE,
    PTE_YOUNG as _PTE_YOUNG,
    PTRS_PER_PTE as _PTRS,
    ZERO_PFN as _ZERO_PFN,
)
from mglru.workload._host_fault import anon_fault

# numba keys the cache on this file only; anon_fault and what it calls are compiled in
invalidate_stale(__file__, "_host_fault.py", "../lru_gen/_list_kernel.py",
                 "../lru_gen/_evict_layout.py")

__all__ = ["guest_fault", "KIND_RECENCY", "O_FAULTS", "O_USED"]

#: the VMA has recency (vma_has_recency()): new folios are PG_active
KIND_RECENCY = 4
O_FAULTS, O_USED = 0, 1


@njit(cache=True, nogil=True, _nrt=False)
def guest_fault(g, slot, w, sptes, host):
    """KVM page fault of gfn `g` (memslot index `slot`, a write if `w`); False leaves it
    to Python, with nothing changed that Python would not set the same way again."""
    (slot_vpn0, slot_r0, slot_kind, rows, pmd_state, pmd_flags, pte_flags, pte_pfn, mem_flags,
     fault, fidx, out, lim, pool) = host
    kind = slot_kind[slot]
    if kind < 0 or out[O_FAULTS] >= len(fidx):
        return False
    if sptes[g] & (_PRESENT | _HUGE):  # the old translation is zapped and TLBs flushed
        return False
    vpn = slot_vpn0[slot] + g
    row = rows[slot_r0[slot] + (vpn >> 9)]
    st = pmd_state[row]
    if st != _PMD_NONE and st != _PMD_TABLE:
        return False
    idx = row * _PTRS + (vpn & (_PTRS - 1))
    f = pte_flags[idx]
    if st == _PMD_TABLE and f & _PTE_PRESENT and (not w or f & _PTE_WRITE):
        return False  # GUP-fast takes the mapped page and marks its folio accessed
    # user_access() of the page: lru_gen_use_mm(), then _fault_anon_one()
    out[O_USED] = 1
    if st == _PMD_NONE:
        pmd_state[row] = _PMD_TABLE
    pmd_flags[row] |= np.uint8(_PTE_YOUNG)
    if f & _PTE_PRESENT and not (w and f & _PTE_SPECIAL and pte_pfn[idx] == _ZERO_PFN):
        pte_flags[idx] = f | np.uint8(_PTE_YOUNG | ((_PTE_DIRTY | _PTE_WRITE) if w else 0))
    elif anon_fault(idx, w, kind & KIND_RECENCY, pte_flags, pte_pfn, mem_flags, fault, lim,
                    pool) < 0:
        return False
    writable = pte_flags[idx] & _PTE_WRITE != 0
    sptes[g] = np.uint8(_PRESENT | _ACC | (_DIRTY if w else 0) | (_WRITABLE if writable else 0))
    return True
