"""Compiled one-page faults of a host stream.

Kernel: mm/memory.c do_anonymous_page() and do_swap_page() (synchronous device, bypass),
mm/workingset.c lru_gen_refault(), include/linux/mm_inline.h lru_gen_add_folio().

Mechanism: `host_hits` stops at an access that needs the kernel. If it is a
fault on a 4 KiB anonymous VMA (a first touch, a write to the zero page, or a
swap entry), `anon_fault` does what `paths.fault._fault_anon_one` does, on the
same arrays: it checks the rooms the caller gave (`lim`: pages below
memory.max, pages above the node's low watermark), takes the page the
allocator would hand out next (the last one the loop's own reclaim freed, else
the next of `next_pfns`, prepared by the caller), feeds a refault back to the
tier controller and restores PG_workingset / refs, adds the folio to its
generation, and maps it. With no room below memory.max it returns -2 when the
caller lets the loop reclaim (`lim[L_ACTIVE]`, see `_host_reclaim`), else it
stops there; anything else it cannot finish exactly (the low watermark, a THP
or file VMA, the swap cache, an order key running out) goes back to Python.

The counters it touches live in Python objects (vmstat and memcg events, the
swap device's free-slot list, the page counter); they are returned in `res`
and the caller applies them before Python code can read them.

`par` = [memcg id, nid, max_seq, min_seq anon, min_seq file, nr_hist_gens,
folio_seq_by_workingset, independent_min_seq, refault_stats_only_recent,
two_step_promotion, active_add_resets_tier, swap cache, PMD skip]: a non-zero
"swap cache" (the device is not synchronous, or some slot is in the swap cache) leaves
every swap-in to `paths.fault`; "PMD skip" is the index of an access whose fault already
set its PMD's bits before its charge reclaimed (`host_hits` leaves them as they are);
`res` = [pages allocated from `next_pfns`, order head, pgfault, pgmajfault, workingset
refault, activate, restore, slots freed, faults, stopped at a room].
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._evict_layout import (
    S_CHARGED as _S_CHARGED,
    S_NCHUNKS as _S_NCHUNKS,
    S_NFREED as _S_NFREED,
)
from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.lru_gen._list_kernel import lru_tier
from mglru.lru_gen.lists import LRU_LIST_SHIFT as _LIST_SHIFT, ORDER_MASK as _ORDER_MASK
from mglru.mm.page import (
    LRU_REFS_MASK as _REFS_MASK,
    LRU_REFS_SHIFT as _REFS_SHIFT,
    LRU_REFS_WIDTH as _REFS_WIDTH,
    PTE_DIRTY as _PTE_DIRTY,
    PTE_PRESENT as _PTE_PRESENT,
    PTE_SPECIAL as _PTE_SPECIAL,
    PTE_SWAP as _PTE_SWAP,
    PTE_WRITE as _PTE_WRITE,
    PTE_YOUNG as _PTE_YOUNG,
    ZERO_PFN as _ZERO_PFN,
    PG_active as _PG_active,
    PG_anon as _PG_anon,
    PG_lru as _PG_lru,
    PG_referenced as _PG_referenced,
    PG_swapbacked as _PG_swapbacked,
    PG_workingset as _PG_workingset,
)

# numba keys the cache on this file only; lru_tier is compiled into it
invalidate_stale(__file__, "../lru_gen/_list_kernel.py", "../lru_gen/_evict_layout.py")

__all__ = ["anon_fault", "NR_LIM", "L_ACTIVE", "L_MEMCG_ROOM", "L_NODE_ROOM", "L_RESUME",
           "L_SWAPPINESS", "L_POPPED", "L_EMPTIED", "L_MAXEV", "L_SLOTS_MOVED", "L_REASON",
           "L_X", "L_RECLAIMS", "WHY_EXIT", "WHY_OVER", "RESUME_LOOP",
           "RESUME_AFTER", "NR_PAR",
           "NR_RES", "P_PMD_SKIP", "P_SWAP_CACHE", "R_ACTIVATE", "R_ALLOC",
           "R_FAULTS", "R_FREED", "R_HEAD", "R_MAJ", "R_PGFAULT", "R_REFAULT", "R_RESTORE",
           "R_STOP"]

P_MEMCG, P_NID, P_MAX_SEQ, P_MIN_SEQ, P_HIST, P_BY_WS, P_INDEP, P_ONLY_RECENT, P_TWO_STEP, \
    P_RESET_TIER, P_SWAP_CACHE, P_PMD_SKIP = 0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12
NR_PAR = 13
R_ALLOC, R_HEAD, R_PGFAULT, R_MAJ, R_REFAULT, R_ACTIVATE, R_RESTORE, R_FREED, R_FAULTS, \
    R_STOP = range(10)
NR_RES = 10
# lim[]: the rooms a fault checks, and what the compiled reclaim (_host_reclaim) reports
(L_ACTIVE, L_MEMCG_ROOM, L_NODE_ROOM, L_RESUME, L_SWAPPINESS, L_POPPED, L_EMPTIED,
 L_MAXEV, L_SLOTS_MOVED, L_REASON, L_X, L_RECLAIMS) = range(12)
NR_LIM = 12
# lim[L_REASON]: why the loop stopped in a charge (0: it did not)
WHY_EXIT, WHY_OVER = 1, 2
# lim[L_RESUME]: the charge's reclaim goes on (Python did what the eviction loop handed
# back): in the loop at the run's priority, or after the shrink at that priority ended
RESUME_LOOP, RESUME_AFTER = 1, 2
_MAX_NR_GENS = 4
_MIN_NR_GENS = 2


@njit(cache=True, nogil=True, _nrt=False)
def _refault(flags, shadow, par, refaulted, res):
    """lru_gen_refault() of an anon page in a fault; returns the new flags."""
    s = shadow & ~(np.int64(1) << 62)
    if (s >> 10) & 0xFFFF != par[P_MEMCG] or (s >> 1) & 0x1FF != par[P_NID]:
        return flags
    token = s >> 26
    workingset = s & 1
    seq = token >> _REFS_WIDTH
    if par[P_INDEP]:
        recent = abs(par[P_MAX_SEQ] - seq) < _MAX_NR_GENS
    else:
        recent = seq == par[P_MIN_SEQ]
    only_recent = par[P_ONLY_RECENT]
    if recent or not only_recent:
        res[R_REFAULT] += 1
    if not recent:
        return flags
    hist = par[P_MIN_SEQ] % par[P_HIST]
    low = token & ((1 << _REFS_WIDTH) - 1)
    if par[P_TWO_STEP]:
        refs = low + 1
        tier = lru_tier(refs, workingset)
    else:  # v6.10: refs = stored refs + workingset, tier = order_base_2(refs + 1)
        refs = low + workingset
        tier = 0
        while (1 << tier) <= refs:
            tier += 1
    refaulted[hist, 0, tier] += 1
    if not only_recent:
        res[R_ACTIVATE] += 1
    if par[P_TWO_STEP]:
        if workingset:
            flags |= _PG_workingset
            res[R_RESTORE] += 1
        else:
            flags = (flags & ~_REFS_MASK) | ((refs - 1) << _REFS_SHIFT)
    else:  # v6.10: in a fault
        flags |= _REFS_MASK | _PG_workingset
        res[R_RESTORE] += 1
    return flags


@njit(cache=True, nogil=True, _nrt=False)
def _add_folio(pfn, flags, par, mem_gen, mem_lru, mem_flags, nr_pages, nr_listed, res):
    """lru_gen_add_folio() of one anon 4 KiB folio (see lru_gen.folio._folio_seq_one)."""
    max_seq = par[P_MAX_SEQ]
    min_seq = par[P_MIN_SEQ]
    ws = flags & _PG_workingset
    if not par[P_BY_WS]:
        seq = max_seq if flags & _PG_active else max_seq - 1  # anon, not in the swap cache
    elif flags & _PG_active:
        seq = max_seq if ws else max_seq - 1
    else:
        seq = max_seq - 1
    seq = max(seq, min_seq) if par[P_BY_WS] else seq
    gen = seq % _MAX_NR_GENS
    mem_gen[pfn] = gen + 1
    res[R_HEAD] += 1
    mem_lru[pfn] = ((gen + 1) << _LIST_SHIFT) | res[R_HEAD]
    if par[P_RESET_TIER] and flags & _PG_active:  # an active folio starts tier 0
        flags &= ~(_REFS_MASK | _PG_referenced)
    mem_flags[pfn] = (flags & ~_PG_active) | _PG_lru
    nr_pages[gen, 0] += 1
    nr_listed[gen, 0] += 1


@njit(cache=True, nogil=True, _nrt=False)
def _take_pfn(next_pfns, res, lim, pool):
    """The page alloc_pages(nid, 1) would return: the last one reclaim freed in this
    call (the free lists' last chunk), else the next of `next_pfns`; -1 if none."""
    freed, ends, st = pool
    top = st[_S_NFREED]
    if lim[L_ACTIVE] and top:
        top -= 1
        st[_S_NFREED] = top
        n = st[_S_NCHUNKS]
        if top == (ends[n - 2] if n >= 2 else 0):  # its chunk is used up
            st[_S_NCHUNKS] = n - 1
            lim[L_EMPTIED] += 1
        else:
            ends[n - 1] = top
        lim[L_POPPED] += 1
        return freed[top]
    if res[R_ALLOC] >= len(next_pfns):
        return -1
    res[R_ALLOC] += 1
    return next_pfns[res[R_ALLOC] - 1]


@njit(cache=True, nogil=True, _nrt=False)
def anon_fault(idx, write, recency, pte_flags, pte_pfn, mem_flags, fault, lim, pool):
    """Fault in PTE `idx` of a 4 KiB anon VMA; returns its pfn, -1 to leave it to Python,
    or -2 when its charge must reclaim first (with `lim[L_ACTIVE]`, see _host_reclaim).

    `fault` is the context `workload.host.fault_context` builds (the allocator's next
    pfns, the parameters, the folio and lruvec arrays, the swap shadows, the results);
    `lim` the rooms before memory.max and the low watermark; `pool` the pages the
    compiled reclaim freed in this call (its freed-page buffer, chunk ends and state).
    """
    (next_pfns, par, mem_gen, mem_lru, mem_memcg, nr_pages, nr_listed, refaulted, shadow,
     freed, hint, res, _) = fault
    f = pte_flags[idx]
    if f & _PTE_SWAP and par[P_SWAP_CACHE]:  # the swap cache may be involved: Python
        return -1
    wbits = (_PTE_DIRTY | _PTE_WRITE) if write else 0
    if not f & _PTE_SWAP and not write:  # read fault: the zero page
        res[R_PGFAULT] += 1
        res[R_FAULTS] += 1
        pte_pfn[idx] = _ZERO_PFN
        pte_flags[idx] = _PTE_PRESENT | _PTE_YOUNG | _PTE_SPECIAL
        return _ZERO_PFN
    # try_charge() first, then the allocation (and its watermark check)
    if lim[L_MEMCG_ROOM] < 1 or lim[L_RESUME]:
        if lim[L_ACTIVE]:
            return -2
        res[R_STOP] = 1  # the caller may charge (and reclaim) first, then come back
        return -1
    if lim[L_NODE_ROOM] < 1:
        res[R_STOP] = 1
        return -1
    if res[R_HEAD] + 1 > _ORDER_MASK:
        return -1
    pfn = _take_pfn(next_pfns, res, lim, pool)
    if pfn < 0:
        res[R_STOP] = 1
        return -1
    lim[L_MEMCG_ROOM] -= 1
    lim[L_NODE_ROOM] -= 1
    pool[2][_S_CHARGED] += 1
    res[R_PGFAULT] += 1
    res[R_FAULTS] += 1
    flags = np.int64(_PG_swapbacked | _PG_anon | (_PG_active if recency else 0))
    if f & _PTE_SWAP:
        res[R_MAJ] += 1
        slot = np.int64(pte_pfn[idx])
        if shadow[slot]:
            flags = _refault(flags, shadow[slot], par, refaulted, res)
        shadow[slot] = 0
        freed[res[R_FREED]] = slot
        res[R_FREED] += 1
    mem_memcg[pfn] = par[P_MEMCG]
    _add_folio(pfn, flags, par, mem_gen, mem_lru, mem_flags, nr_pages, nr_listed, res)
    if len(hint):
        hint[pfn] = idx
    pte_pfn[idx] = pfn
    pte_flags[idx] = _PTE_PRESENT | _PTE_YOUNG | wbits
    return pfn
