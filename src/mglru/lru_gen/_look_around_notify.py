"""The compiled window loop of lru_gen_look_around() when the mm has MMU notifiers.

Kernel: mm/vmscan.c: lru_gen_look_around() (v6.12: ptep_clear_young_notify() per
candidate PTE), virt/kvm/kvm_main.c: kvm_handle_hva_range() and kvm_age_gfn().

Mechanism: each candidate PTE whose folio is on this lruvec's memcg (and, where
the version skips them, on an MGLRU list) has its accessed bit tested and
cleared, then every subscriber is asked `clear_young` for its page: for each
of the subscriber's segments (memslots) holding the page, the leaf SPTE is
aged as `_walk_secondary.age_spte` does. What each call did is written to
`calls` ([call, subscriber] -> ranges, visited, cleared, cleared writable and
clean, young), for the subscriber to log (`account_clear_young`); the young
candidates' folios are updated afterwards in Python, in order (nothing the
loop reads depends on those updates: they never take a folio off its memcg
or its list). `look_around._harvest` calls it only when every subscriber
hands out its segments (`clear_young_segments`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.lru_gen._look_around_kernel import window_folio
from mglru.mm.page import PTE_DIRTY as _PTE_DIRTY, PTE_YOUNG as _PTE_YOUNG

invalidate_stale(__file__, "_walk_secondary.py", "_walk_folio.py", "_walk_state.py",
                 "_look_around_kernel.py")

from mglru.lru_gen._walk_secondary import (  # noqa: E402  (after the cache check)
    SPTE_ACCESSED as _ACC,
    SPTE_DIRTY as _SDIRTY,
    SPTE_PRESENT as _PRESENT,
    SPTE_WRITABLE as _SWRITABLE,
    age_spte,
)

__all__ = ["harvest_notify", "clear_young_one", "NR_SPTE_ARRAYS", "C_RANGES", "C_VISITED",
           "C_CLEARED", "C_CLEARED_WC", "C_YOUNG", "NR_C"]

#: SPTE arrays one call takes (a tuple of fixed length: unused ones are empty)
NR_SPTE_ARRAYS = 4
C_RANGES, C_VISITED, C_CLEARED, C_CLEARED_WC, C_YOUNG = range(5)
NR_C = 5


@njit(cache=True, nogil=True, _nrt=False)
def _clear_young_page(vpn, segs, sptes, call):
    """Every subscriber's `clear_young` of page `vpn`: `call[sub]` gets what its call did;
    returns whether one found the page young."""
    seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub = segs
    call[:, :] = 0
    young = False
    for s in range(len(seg_vpn0)):
        if vpn < seg_vpn0[s] or vpn >= seg_vpn1[s]:
            continue
        row = call[seg_sub[s]]
        row[C_RANGES] += 1
        st = age_spte(sptes[seg_arr[s]], seg_gfn0[s] + (vpn - seg_vpn0[s]), True)
        if st & _PRESENT:
            row[C_VISITED] += 1
            if st & _ACC:
                row[C_CLEARED] += 1
                row[C_CLEARED_WC] += np.int64((st & (_SWRITABLE | _SDIRTY)) == _SWRITABLE)
                row[C_YOUNG] = 1
                young = True
    return young


@njit(cache=True, nogil=True, _nrt=False)
def clear_young_one(vpn, segs, sptes, calls):
    """mmu_notifier_clear_young() of one page (the folio look-around starts from):
    `calls[0]` as in `harvest_notify`; returns whether a subscriber found it young."""
    return _clear_young_page(vpn, segs, sptes, calls[0])


@njit(cache=True, nogil=True, _nrt=False)
def harvest_notify(win_f, win_p, cand, folios, memcg_id, skip_unlisted, vpn0, segs, sptes,
                   calls, out):
    """Test-and-clear the window PTEs `cand` and their secondary bits; returns the calls made.

    `folios` = (flags, gen, memcg); `vpn0` is the window's first page; `segs` =
    (vpn0, vpn1, gfn0, array, subscriber) per segment, in each subscriber's call
    order. Per call `c`, `out[c]` = (folio head, PTE dirty, young).
    """
    flags, gen, memcg = folios
    n = 0
    for i in cand:
        head = window_folio(win_p[i], flags, gen, memcg, memcg_id, skip_unlisted)
        if head < 0:
            continue
        f = win_f[i]
        young = f & _PTE_YOUNG != 0
        win_f[i] = f & np.uint8(~_PTE_YOUNG & 0xFF)
        if _clear_young_page(vpn0 + i, segs, sptes, calls[n]):
            young = True
        out[n, 0] = head
        out[n, 1] = f & _PTE_DIRTY != 0
        out[n, 2] = young
        n += 1
    return n
