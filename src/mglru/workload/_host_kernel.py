"""Compiled loop over a host task's page accesses: the hardware's side of a hit.

For each access whose translation is present (and writable enough), the MMU
sets the accessed bit of the PTE (and of the non-leaf PMD above it), and the
dirty and write bits on a write; a write through a clean PTE of a shared file
mapping dirties the folio, as `paths.fault._fault_ptes_pinned` does for present
pages. A THP leaf gets its bits on the PMD. A fault on a 4 KiB anonymous VMA
goes to `_host_fault.anon_fault` while its budget lasts; the loop stops at the
first access that needs the Python fault path (a fault beyond the budget, a huge
zero page or an empty THP block, a file page, an address outside every VMA)
and returns its index.

Plain hits (every bit already set) go through a loop of their own
(`_plain_hits`); after `PLAIN_SPLIT` of them in a row, with ground truth stamped by
PTE slot or none, runs of one stamp are split between two threads (`_plain_split`):
past the CPU caches one core's outstanding misses bound the loop, and two cores
take about 1.3x the accesses (benchmarks/README.md).

The VMA table is flat: per VMA its first and end virtual page number, its
first row in `rows` (the page-table rows of its 2 MiB slots, concatenated) and
a kind (`KIND_THP`, `KIND_FILE`, `KIND_RECENCY` bits).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.mm._prefetch import prefetch
from mglru.mm.page import (
    PMD_LEAF as _PMD_LEAF,
    PMD_NONE as _PMD_NONE,
    PMD_TABLE as _PMD_TABLE,
    PTE_DIRTY as _PTE_DIRTY,
    PTE_PRESENT as _PTE_PRESENT,
    PTE_SPECIAL as _PTE_SPECIAL,
    PTE_WRITE as _PTE_WRITE,
    PTE_YOUNG as _PTE_YOUNG,
    PTRS_PER_PTE as _PTRS,
    PG_dirty as _PG_dirty,
)
from mglru.workload._host_fault import P_PMD_SKIP, R_FAULTS, anon_fault
from mglru.workload._host_reclaim import memcg_reclaim
from mglru.workload._stamp_kernel import stamp_at, stamp_of, stamp_run

invalidate_stale(__file__, "_host_fault.py", "_host_reclaim.py", "_stamp_kernel.py",
                 "../lru_gen/_list_kernel.py", "../mm/_prefetch.py", "../lru_gen/_evict_kernel.py",
                 "../lru_gen/_scan_kernel.py", "../lru_gen/_evict_ctrl.py",
                 "../lru_gen/_evict_layout.py", "../lru_gen/_evict_keep.py",
                 "../lru_gen/_look_around_kernel.py")

__all__ = ["host_hits", "KIND_THP", "KIND_FILE", "KIND_RECENCY", "PLAIN_BLOCK", "PLAIN_SHORT",
           "PLAIN_SPLIT"]

KIND_THP = 1
KIND_FILE = 2
KIND_RECENCY = 4  # vma_has_recency()


@njit(cache=True, nogil=True, _nrt=False)
def _find_vma(vstart, vend, vpn):
    lo, hi = 0, len(vstart)
    while lo < hi:  # last VMA starting at or below vpn
        mid = (lo + hi) >> 1
        if vstart[mid] <= vpn:
            lo = mid + 1
        else:
            hi = mid
    i = lo - 1
    if i >= 0 and vpn < vend[i]:
        return i
    return -1


#: how many accesses ahead the PTE lines are asked for, and (half as far, when stamps
#: go by pfn) the stamp's
_AHEAD = 16


@njit(cache=True, nogil=True, _nrt=False)
def _ask_ahead(vpns, j, hi, vma, rows, pte_flags, pte_pfn, last_ms, truth, by_slot):
    """Prefetch the PTE line of access j (and its stamp's, or the pfn's whose stamp it is)
    when j is in the current VMA `vma` = (start, end, first row less the start's)."""
    vs, ve, r0 = vma
    if j < hi and vs <= vpns[j] < ve:
        a = rows[r0 + (vpns[j] >> 9)] * _PTRS + (vpns[j] & (_PTRS - 1))
        prefetch(pte_flags, a)
        if truth:
            prefetch(last_ms if by_slot else pte_pfn, a)
    j -= _AHEAD // 2
    if truth and not by_slot and j < hi and vs <= vpns[j] < ve:
        a = np.int64(pte_pfn[rows[r0 + (vpns[j] >> 9)] * _PTRS + (vpns[j] & (_PTRS - 1))])
        if a < len(last_ms):
            prefetch(last_ms, a)


#: the PTE bits a read, and a write, finds set when it changes nothing in the page table
_HIT_R = _PTE_PRESENT | _PTE_YOUNG
_HIT_W = _PTE_PRESENT | _PTE_YOUNG | _PTE_DIRTY | _PTE_WRITE


#: accesses whose PTE indices the plain loop works out at a time (its `block` scratch)
PLAIN_BLOCK = 1024
#: accesses the plain loop takes one at a time before it goes by blocks: a miss-heavy
#: stream enters the loop at nearly every access and leaves it a few later
PLAIN_SHORT = 16
#: accesses of one stamp from which the plain loop runs on two threads (0: never); also
#: its one-thread start
PLAIN_SPLIT = 1 << 15
#: how many accesses ahead, within a block, the plain loop asks for the PTE's line and
#: the stamp's (or the pfn's, and half as far the stamp's at that pfn)
_PLAIN_AHEAD = 32


@njit(cache=True, nogil=True, _nrt=False)
def _is_plain(pte_flags, pmd_flags, idx, write):
    """Whether an access through PTE `idx` finds every bit it would set already set,
    under a young PTE table."""
    need = _HIT_R if write == 0 else _HIT_W
    return pte_flags[idx] & (need | _PTE_SPECIAL) == need and pmd_flags[idx >> 9] & _PTE_YOUNG != 0


@njit(cache=True, nogil=True, _nrt=False)
def _plain_block(vpns, i, n, vma, rows, block):
    """Store in block[:m] the flat PTE indices of accesses i..i+n-1 up to the first outside
    the VMA `vma` = (start, end, first row less the start's); returns m."""
    vs, ve, r0 = vma
    for b in range(n):
        vpn = vpns[i + b]
        if vpn < vs or vpn >= ve:
            return b
        block[b] = rows[r0 + (vpn >> 9)] * _PTRS + (vpn & (_PTRS - 1))
    return n


@njit(cache=True, nogil=True, _nrt=False)
def _plain_hits(vpns, writes, t_ns, i, hi, vma, pt, last_ms, pfn_of, scratch):
    """Apply accesses from i on while each finds its PTE in the plain (4 KiB,
    anonymous) VMA `vma` with every bit it would set already set, under a young PTE
    table; returns the first that does not (hi when all do).

    The common case of `host_hits` (a working set that fits, between agings) in a loop
    of its own: a PTE byte and a stamp per access, the time read only where the stamp
    changes. The first `short` accesses go one at a time (a miss-heavy stream leaves
    the loop a few accesses after it enters); after them, a block at a time: first the
    block's PTE indices (a pass over the stream with no random reads), then the PTEs
    and stamps, asking for the lines of the access `_PLAIN_AHEAD` later in the block,
    whose index is at hand (measured 1.1-1.5x over one pass at 1-16 GiB). An access
    it leaves (another VMA, a PTE to set bits in or fault in, the zero page, a PTE
    table the walk made old) goes back to `host_hits`.
    A present PTE's table is a table (`pmd_state` PMD_TABLE): every path that empties
    a PMD clears its PTEs. Stamps go to `last_ms` at the PTE's index, or at its pfn
    when `pfn_of` is the PTEs' pfns (None: at the index; `last_ms` None: no ground
    truth); numba compiles each case without the branches it does not take.
    `scratch` = (block, short): room for the indices (`PLAIN_BLOCK` of them) and the
    one-at-a-time run (`PLAIN_SHORT`).
    """
    vs, ve, r0 = vma
    pmd_flags, pte_flags, rows = pt
    block, short = scratch
    ms = np.int64(0)
    next_i = i  # the first access whose stamp is not `ms`
    first = min(hi, i + short)
    while i < first:
        vpn = vpns[i]
        if vpn < vs or vpn >= ve:
            return i
        idx = rows[r0 + (vpn >> 9)] * _PTRS + (vpn & (_PTRS - 1))
        if not _is_plain(pte_flags, pmd_flags, idx, writes[i]):
            return i
        ms, next_i = stamp_at(last_ms, pfn_of, idx, (t_ns, i, hi), (ms, next_i))
        i += 1
    while i < hi:
        n = min(len(block), hi - i)
        m = _plain_block(vpns, i, n, vma, rows, block)
        for b in range(m):
            if b + _PLAIN_AHEAD < m:  # the index at hand: a hint costs next to nothing
                a = block[b + _PLAIN_AHEAD]
                prefetch(pte_flags, a)
                if last_ms is not None:
                    if pfn_of is None:  # the stamp's line
                        prefetch(last_ms, a)
                    else:  # the pfn's, and the stamp of the pfn half as far
                        prefetch(pfn_of, a)
                        pa = np.int64(pfn_of[block[b + _PLAIN_AHEAD // 2]])
                        if pa < len(last_ms):
                            prefetch(last_ms, pa)
            idx = block[b]
            if not _is_plain(pte_flags, pmd_flags, idx, writes[i]):
                return i
            ms, next_i = stamp_at(last_ms, pfn_of, idx, (t_ns, i, hi), (ms, next_i))
            i += 1
        if m < n:
            return i
    return i


@njit(cache=True, nogil=True, parallel=True)
def _plain_split(vpns, writes, t_ns, lo, hi, vma, pt, last_ms, halves):
    """`_plain_hits` over [lo, hi) as two contiguous halves on two threads; returns the
    first access that is not a plain hit (hi if none).

    Only for accesses that share one stamp (or keep none), stamped by PTE slot: a
    page both halves access gets the same stamp from either thread, so the result
    does not depend on their order. When the first half stops early, the second
    half's stamps are ahead of the stream; they are the stamps those accesses get
    when the loop comes back to them, and nothing reads slot stamps in between
    (`workload.truth`: only a fold reads them).
    """
    blocks, ends = halves
    mid = (lo + hi) >> 1
    for h in prange(2):
        a = lo if h == 0 else mid
        b = mid if h == 0 else hi
        ends[h] = _plain_hits(vpns, writes, t_ns, a, b, vma, pt, last_ms, None, (blocks[h], 0))
    return ends[0] if ends[0] < mid else ends[1]


#: accesses a split run of the plain loop covers at most without ground truth
_SPLIT_CHUNK = 1 << 18


@njit(cache=True, nogil=True, _nrt=False)
def _plain_long(vpns, writes, t_ns, i, hi, vma, pt, last_ms, split, halves):
    """`_plain_hits` from access i on, after `split` plain hits in a row on one thread:
    runs of `split` accesses or more of one stamp (any run without ground truth,
    `last_ms` None) on two threads (`_plain_split`), shorter ones on this one. Stamps
    by PTE slot or none (`_plain_split`)."""
    end = i
    while i == end and i < hi:
        if last_ms is None:
            end = min(hi, i + _SPLIT_CHUNK)
        else:
            end = stamp_run(t_ns, i, hi)[1]
        if end - i < split:
            i = _plain_hits(vpns, writes, t_ns, i, end, vma, pt, last_ms, None,
                            (halves[0][0], 0))  # the one-thread loop's block
        else:
            i = _plain_split(vpns, writes, t_ns, i, end, vma, pt, last_ms, halves)
    return i


@njit(cache=True, nogil=True, _nrt=False)
def host_hits(vpns, writes, t_ns, lo, hi, vmas, pt, mem_flags, stamps, fault, reclaim,
              ahead, plain):
    """Apply accesses [lo, hi) until one needs the Python fault path; returns its index (or hi).

    `vmas` is the flat VMA table (start, end, first row, kind, rows) and `pt` the
    page table (pmd_state, pmd_flags, pmd_pfn, pte_flags, pte_pfn). `stamps` =
    (last_ms, by_slot): unless `last_ms` is empty (no ground truth), each applied
    access stores its time, in ms since boot plus one, in `last_ms` at the flat
    index of the PTE it went through when `by_slot`, else at the page's pfn (see
    `workload.truth`). `fault` is the context of
    `_host_fault.anon_fault`, ending with `fidx`, where the indices of the accesses
    it faulted in go; with a zero budget every fault stops the loop. `reclaim` =
    (rc, lim): the eviction run and the rooms of `_host_reclaim.memcg_reclaim`, which
    a charge at memory.max runs when `lim[L_ACTIVE]`. `ahead`: prefetch the lines of
    later accesses in the loop below (worth it once the tables outgrow the CPU caches;
    the plain-hit loop's blocks always do). `plain` = (blocks, ends, short, split): that
    loop's room for a block of PTE indices per thread (the first for one thread) and
    each thread's end, its one-at-a-time run and the runs it splits between two threads
    (see `_plain_hits`, `_plain_long`).
    """
    rc, lim = reclaim
    pool = (rc[10][4], rc[10][5], rc[9])  # the freed pages, their chunk ends, the state
    blocks, ends, short, split = plain
    vstart, vend, vrow0, vkind, rows = vmas
    pmd_state, pmd_flags, pmd_pfn, pte_flags, pte_pfn = pt
    res, fidx = fault[11], fault[12]
    last_ms, by_slot = stamps
    truth = len(last_ms) > 0  # ground truth kept
    v = -1
    # the current VMA's bounds, kind and rows, kept in locals (the stores below could
    # alias the tables for all the compiler knows, so it would reload them every time)
    vs = ve = r0 = kind = np.int64(0)
    i = lo
    while i < hi:
        vpn = vpns[i]
        if v < 0 or vpn < vs or vpn >= ve:  # most accesses stay in one VMA
            v = _find_vma(vstart, vend, vpn)
            if v < 0:
                return i
            vs, ve, kind = vstart[v], vend[v], vkind[v]
            r0 = vrow0[v] - (vs >> 9)
        if kind & (KIND_THP | KIND_FILE) == 0:
            vma = (vs, ve, r0)
            plain3 = (pmd_flags, pte_flags, rows)
            # three builds: whether there are stamps, and where, known when compiled; after
            # `split` plain hits in a row (stamps by slot or none), two threads go on
            stop = hi if not split or (truth and not by_slot) else min(hi, i + split)
            if not truth:
                i = _plain_hits(vpns, writes, t_ns, i, stop, vma, plain3, None, None,
                                (blocks[0], short))
                if i == stop < hi:
                    i = _plain_long(vpns, writes, t_ns, i, hi, vma, plain3, None, split,
                                    (blocks, ends))
            elif by_slot:
                i = _plain_hits(vpns, writes, t_ns, i, stop, vma, plain3, last_ms, None,
                                (blocks[0], short))
                if i == stop < hi:
                    i = _plain_long(vpns, writes, t_ns, i, hi, vma, plain3, last_ms, split,
                                    (blocks, ends))
            else:
                i = _plain_hits(vpns, writes, t_ns, i, hi, vma, plain3, last_ms, pte_pfn,
                                (blocks[0], short))
            if i == hi:
                return hi
            vpn = vpns[i]
            if vpn < vs or vpn >= ve:
                continue  # another VMA's
        if ahead:  # the lines of later accesses in this VMA: a hint, nothing is read
            _ask_ahead(vpns, i + _AHEAD, hi, (vs, ve, r0), rows, pte_flags, pte_pfn, last_ms,
                       truth, by_slot)
        w = writes[i] != 0
        row = rows[r0 + (vpn >> 9)]
        st = pmd_state[row]
        sub = vpn & (_PTRS - 1)
        if kind & KIND_THP and kind & KIND_FILE == 0:
            head = vpn & ~np.int64(_PTRS - 1)  # the 2 MiB block's first page
            if head >= vs and head + _PTRS <= ve:
                if st == _PMD_LEAF:
                    pmd_flags[row] |= np.uint8(_PTE_YOUNG | (_PTE_DIRTY if w else 0))
                    if truth:
                        last_ms[row * _PTRS + sub if by_slot else np.int64(pmd_pfn[row]) + sub] = \
                            stamp_of(t_ns[i])
                    i += 1
                    continue
                if st != _PMD_TABLE:
                    return i
        idx = row * _PTRS + sub
        f = pte_flags[idx]
        if f & _PTE_PRESENT == 0 or (w and f & _PTE_SPECIAL and pte_pfn[idx] == 0):
            # not present, or a write to the zero page (copy-on-write): a fault
            if kind & (KIND_THP | KIND_FILE) or res[R_FAULTS] >= len(fidx):
                return i
            if i != fault[1][P_PMD_SKIP]:
                if st == _PMD_NONE:
                    pmd_state[row] = _PMD_TABLE
                pmd_flags[row] |= np.uint8(_PTE_YOUNG)
            nf = res[R_FAULTS]
            pfn = anon_fault(idx, w, kind & KIND_RECENCY, pte_flags, pte_pfn, mem_flags, fault,
                             lim, pool)
            while pfn == -2:  # the charge reclaims first
                if not memcg_reclaim(rc, lim, fault):
                    return i
                pfn = anon_fault(idx, w, kind & KIND_RECENCY, pte_flags, pte_pfn, mem_flags,
                                 fault, lim, pool)
            if pfn < 0:
                return i
            fidx[nf] = i
            if truth:
                last_ms[idx if by_slot else pfn] = stamp_of(t_ns[i])
            i += 1
            continue
        if st == _PMD_NONE:
            pmd_state[row] = _PMD_TABLE
        if pmd_flags[row] & _PTE_YOUNG == 0:
            pmd_flags[row] |= np.uint8(_PTE_YOUNG)
        if w:
            if kind & KIND_FILE and f & _PTE_DIRTY == 0:
                mem_flags[np.int64(pte_pfn[idx])] |= np.uint16(_PG_dirty)
            pte_flags[idx] = f | np.uint8(_PTE_YOUNG | _PTE_DIRTY | _PTE_WRITE)
        elif f & _PTE_YOUNG == 0:
            pte_flags[idx] = f | np.uint8(_PTE_YOUNG)
        if truth:
            last_ms[idx if by_slot else np.int64(pte_pfn[idx])] = stamp_of(t_ns[i])
        i += 1
    return hi
