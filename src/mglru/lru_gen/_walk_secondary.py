"""The compiled secondary-MMU part of the aging walk. Spec §3.6-3.7, §4.10, §8.3, seed 2/7.

Split from `_walk_kernel` (which calls it) along the line the kernel draws:
everything here is what `walk_pte_range` / `walk_pmd_range_locked` do through
`mmu_notifier_{test,clear}_young`. Secondary MMUs are seen through *segments*:
a run of host virtual pages [vpn0, vpn1) whose SPTE state lives in
`sptes[arr][gfn0 + vpn - vpn0]`, owned by subscriber `sub` (see
`mglru.kvm.spte` for the SPTE bits). Every call is counted per subscriber in
`sec_stats` (columns SEC_*), which the subscriber turns into lock
acquisitions (`account_aging`).

Two engines compute the same thing:

* `sec_range`: one notifier call over [vpn, vpn+nr) pages, in call order
  (THP PMDs, and the per-PTE fallback in `_walk_kernel`).
* per PTE table: the usual layout (one subscriber whose one or two segments,
  a memslot and its SMM alias, cover the table) runs one loop in call order,
  `pte_sec_row_simple` (the hot loop of `bench aging --vm`; `walk_rows` finds
  the layout with `simple_layout` and keeps its SPTE arrays across tables,
  since a typed-list lookup costs microseconds). Other layouts (several
  subscribers, a memslot boundary in the table, v3 batching) go through
  `pte_sec_row` in phases: all test_young calls, the folio filter, all
  clear_young calls. Phases match per-PTE calls unless a 2 MiB SPTE sits
  under a 4 KiB host table (one SPTE shared by several PTEs): a test phase
  meeting one backs out and the table is walked per PTE (-1).

NOTE: numba's on-disk cache of `walk_rows` would not notice edits here;
`_jit_cache.invalidate_stale` (called by `_walk_kernel`) drops it when they happen.

Future optimizations:
1. skip the test phase for tables whose SPTEs are all old (a per-table
   accessed summary kept by the KVM model).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen.helpers import MM_LEAF_OLD as _OLD, MM_LEAF_YOUNG as _YOUNG_ST
from mglru.mm.page import (
    LRU_REFS_MASK as _REFS_MASK,
    PTE_DIRTY as _DIRTY,
    PTE_PRESENT as _PRESENT,
    PTE_SPECIAL as _SPECIAL,
    PTE_YOUNG as _YOUNG,
    PG_anon as _PG_anon,
    PG_dirty as _PG_dirty,
    PG_head as _PG_head,
    PG_referenced as _PG_referenced,
    PG_swapbacked as _PG_swapbacked,
    PG_swapcache as _PG_swapcache,
    PG_tail as _PG_tail,
    PG_workingset as _PG_workingset,
)

# SPTE bits, owned here and shared with mglru.kvm.spte: present; accessed; huge (a
# 2 MiB leaf, state on the 512-aligned head gfn); writable (the guest may write
# through it); dirty (A/D-enabled SPTEs saw a write)
SPTE_PRESENT = 1
SPTE_ACCESSED = 2
SPTE_HUGE = 4
SPTE_WRITABLE = 8
SPTE_DIRTY = 16
# sec_stats columns, per subscriber and mm walk
SEC_TEST_CALLS = 0      # test_young calls
SEC_TEST_SLOT = 1       # ... that found a memslot (spec §6.2: only those lock)
SEC_CLEAR_CALLS = 2     # clear_young calls (one per 64-PTE window for v3 bitmaps)
SEC_CLEAR_SLOT = 3      # ... that found a memslot
SEC_YOUNG = 4           # calls that answered young
SEC_VISITED = 5         # present leaf SPTEs examined
SEC_CLEARED = 6         # accessed bits cleared
SEC_BATCHES = 7         # v3: 64-PTE windows with candidates
SEC_TEST_RANGES = 8     # memslot ranges handed to kvm_test_age_gfn
SEC_CLEAR_RANGES = 9    # ... to kvm_age_gfn
SEC_TEST_VISITED = 10   # part of SEC_VISITED seen by test calls
SEC_TEST_YOUNG = 11     # part of SEC_YOUNG from test calls
SEC_CLEARED_WC = 12     # cleared SPTEs that were writable and clean (volatile bits)
NR_SEC_STATS = 13


# pte_sec_row classes; YOUNG_PTE marks what the caller updates
_SKIP, _CAND_YOUNG, _CAND_OLD, YOUNG_PTE = 0, 1, 2, 4


@njit(cache=True)
def sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo, seg_hi,
              vpn, nr, clear, sec_stats, count_call, win_young):
    """mmu_notifier_{test,clear}_young over [vpn, vpn+nr) pages. Returns young.

    test_young stops at the first young subscriber; clear_young visits all and
    ORs (spec §4.10). Each overlapping segment is one arch handler call (a
    memslot range); KVM calls every one and ORs (spec §6.1), and a test stops
    within a range at its first accessed SPTE (checklist 37). With `count_call`
    false the pages join the previous call (v3 bitmap batch); `win_young[sub]`
    keeps the batch's young answer counted once.
    """
    young = False
    nsub = sec_stats.shape[0]
    for sub in range(nsub):
        ranges = 0
        visited = 0
        sub_young = False
        for s in range(seg_lo, seg_hi):
            if seg_sub[s] != sub:
                continue
            lo = max(vpn, seg_vpn0[s])
            hi = min(vpn + nr, seg_vpn1[s])
            if lo >= hi:
                continue
            ranges += 1
            arr = sptes[seg_arr[s]]
            g = seg_gfn0[s] + (lo - seg_vpn0[s])
            gend = min(seg_gfn0[s] + (hi - seg_vpn0[s]), arr.shape[0])  # no SPTEs beyond
            while g < gend:
                f = arr[g]
                step = 1
                h = g
                if f & SPTE_HUGE:
                    h = g & ~np.int64(511)
                    f = arr[h]
                    step = h + 512 - g
                if f & SPTE_PRESENT:
                    visited += 1
                    if f & SPTE_ACCESSED:
                        sub_young = True
                        if not clear:
                            break
                        arr[h] = f & ~np.uint8(SPTE_ACCESSED)
                        sec_stats[sub, SEC_CLEARED] += 1
                        if (f & (SPTE_WRITABLE | SPTE_DIRTY)) == SPTE_WRITABLE:
                            sec_stats[sub, SEC_CLEARED_WC] += 1
                g += step
        sec_stats[sub, SEC_VISITED] += visited
        if count_call:
            win_young[sub] = 0
            if clear:
                sec_stats[sub, SEC_CLEAR_CALLS] += 1
                sec_stats[sub, SEC_CLEAR_RANGES] += ranges
                if ranges:
                    sec_stats[sub, SEC_CLEAR_SLOT] += 1
            else:
                sec_stats[sub, SEC_TEST_CALLS] += 1
                sec_stats[sub, SEC_TEST_RANGES] += ranges
                sec_stats[sub, SEC_TEST_VISITED] += visited
                if ranges:
                    sec_stats[sub, SEC_TEST_SLOT] += 1
        if sub_young:
            young = True
            if not win_young[sub]:
                win_young[sub] = 1
                sec_stats[sub, SEC_YOUNG] += 1
                if not clear:
                    sec_stats[sub, SEC_TEST_YOUNG] += 1
            if not clear:
                break
    return young


@njit(cache=True)
def _notify_phase(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo, seg_hi,
                  base, lo, hi, cls, want, clear, answered, fnd, ysub, sec_stats, batch_calls):
    """All test_young (clear=False) or clear_young calls of one table, subscriber by subscriber.

    Pages with `cls[i] & want` are called; `answered[i]` ends up 1 where some
    subscriber saw an access (a test skips later subscribers after that). A
    test phase that meets a 2 MiB SPTE stops and returns False.
    """
    for i in range(lo, hi):
        answered[i] = 0
    for sub in range(sec_stats.shape[0]):
        for i in range(lo, hi):
            fnd[i] = 0
            ysub[i] = 0
        visited = 0
        cleared = 0
        wc = 0
        for s in range(seg_lo, seg_hi):
            if seg_sub[s] != sub:
                continue
            a = max(base + lo, seg_vpn0[s]) - base
            b = min(base + hi, seg_vpn1[s]) - base
            if a >= b:
                continue
            arr = sptes[seg_arr[s]]
            off = seg_gfn0[s] + base - seg_vpn0[s]
            for i in range(a, b):
                if not (cls[i] & want) or answered[i] and not clear:
                    continue
                fnd[i] += 1
                g = off + i
                if g >= arr.shape[0]:
                    continue  # no SPTEs beyond the array
                f = arr[g]
                if f & SPTE_HUGE:
                    if not clear:
                        return False  # see pte_sec_row: call order matters
                    g &= ~np.int64(511)
                    f = arr[g]
                if f & SPTE_PRESENT:
                    visited += 1
                    if f & SPTE_ACCESSED:
                        ysub[i] = 1
                        if clear:
                            arr[g] = f & ~np.uint8(SPTE_ACCESSED)
                            cleared += 1
                            if (f & (SPTE_WRITABLE | SPTE_DIRTY)) == SPTE_WRITABLE:
                                wc += 1
        calls = 0
        slots = 0
        ranges = 0
        young = 0
        last_win = -1
        win_young = False
        for i in range(lo, hi):
            if not (cls[i] & want) or answered[i] and not clear:
                continue
            count = True
            if batch_calls:  # v3: one call per 64-PTE window
                w = (base + i) >> 6
                count = w != last_win
                if count:
                    last_win = w
                    win_young = False
                    sec_stats[sub, SEC_BATCHES] += 1
            else:
                win_young = False
            if count:
                calls += 1
                ranges += fnd[i]
                if fnd[i]:
                    slots += 1
            if ysub[i] and not win_young:
                young += 1
                win_young = True
        for i in range(lo, hi):
            if ysub[i]:
                answered[i] = 1
        sec_stats[sub, SEC_VISITED] += visited
        sec_stats[sub, SEC_YOUNG] += young
        if clear:
            sec_stats[sub, SEC_CLEAR_CALLS] += calls
            sec_stats[sub, SEC_CLEAR_SLOT] += slots
            sec_stats[sub, SEC_CLEAR_RANGES] += ranges
            sec_stats[sub, SEC_CLEARED] += cleared
            sec_stats[sub, SEC_CLEARED_WC] += wc
        else:
            sec_stats[sub, SEC_TEST_CALLS] += calls
            sec_stats[sub, SEC_TEST_SLOT] += slots
            sec_stats[sub, SEC_TEST_RANGES] += ranges
            sec_stats[sub, SEC_TEST_VISITED] += visited
            sec_stats[sub, SEC_TEST_YOUNG] += young
    return True


@njit(cache=True)
def pte_sec_row_simple(pfns, flags, lo, hi, folio_flags, folio_gen, folio_memcg, node_start,
                       node_end, memcg_id, can_swap, new_gen, two_step, refs_flags, pte_mode,
                       arr0, off0, use0, arr1, off1, use1, nseg, delta, stats, sec_stats,
                       moved_out):
    """walk_pte_range() over one table whose one or two segments (one subscriber) cover it.

    The usual layout (a VM's memslot, mirrored in x86's SMM address space):
    each PTE's calls run in call order, in one loop, with both SPTE arrays at
    hand (NOTE: the hot loop of `mglru bench aging --vm`). A segment whose
    array ends before the table (`use0`/`use1` false: an address space with no
    SPTEs, e.g. no vCPU entered SMM) is still a memslot range, with nothing
    to visit.
    """
    t_calls = t_ranges = t_vis = t_young = 0
    c_calls = c_ranges = c_vis = c_young = cleared = wc = 0
    young_n = n_old = moved = 0
    run_key = -1
    run_n = 0
    hmask = ~np.int64(511)
    for i in range(lo, hi):
        f = flags[i]
        if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
            continue
        pfn = np.int64(pfns[i])
        if pfn < 1024 or pfn < node_start or pfn >= node_end:
            continue
        young_p = (f & _YOUNG) != 0
        if pte_mode == 1 and not young_p:
            # test_young(): kvm_test_age_gfn per memslot range, ORed
            t_calls += 1
            t_ranges += nseg  # every memslot range is handled; results are ORed
            y = False
            if use0:
                g = off0 + i
                st = arr0[g]
                if st & SPTE_HUGE:
                    st = arr0[g & hmask]
                y = (st & (SPTE_PRESENT | SPTE_ACCESSED)) == (SPTE_PRESENT | SPTE_ACCESSED)
                t_vis += st & SPTE_PRESENT
            if use1:
                g = off1 + i
                st = arr1[g]
                if st & SPTE_HUGE:
                    st = arr1[g & hmask]
                y |= (st & (SPTE_PRESENT | SPTE_ACCESSED)) == (SPTE_PRESENT | SPTE_ACCESSED)
                t_vis += st & SPTE_PRESENT
            if not y:
                n_old += 1
                continue
            t_young += 1
        head = pfn
        if folio_flags[pfn] & _PG_tail:
            head = pfn & hmask
        ffl = np.int64(folio_flags[head])
        gen = np.int64(folio_gen[head])
        if gen == 0 or np.int64(folio_memcg[head]) != memcg_id or (
                not can_swap and ffl & _PG_swapbacked):
            continue
        # clear_young(): every memslot range
        c_calls += 1
        c_ranges += nseg
        sy = False
        if use0:
            g = off0 + i
            st = arr0[g]
            if st & SPTE_HUGE:
                g &= hmask
                st = arr0[g]
            c_vis += st & SPTE_PRESENT
            if (st & (SPTE_PRESENT | SPTE_ACCESSED)) == (SPTE_PRESENT | SPTE_ACCESSED):
                sy = True
                arr0[g] = st & ~np.uint8(SPTE_ACCESSED)
                cleared += 1
                wc += (st & (SPTE_WRITABLE | SPTE_DIRTY)) == SPTE_WRITABLE
        if use1:
            g = off1 + i
            st = arr1[g]
            if st & SPTE_HUGE:
                g &= hmask
                st = arr1[g]
            c_vis += st & SPTE_PRESENT
            if (st & (SPTE_PRESENT | SPTE_ACCESSED)) == (SPTE_PRESENT | SPTE_ACCESSED):
                sy = True
                arr1[g] = st & ~np.uint8(SPTE_ACCESSED)
                cleared += 1
                wc += (st & (SPTE_WRITABLE | SPTE_DIRTY)) == SPTE_WRITABLE
        if sy:
            c_young += 1
        elif pte_mode == 2 and not young_p:
            continue
        if young_p:
            flags[i] = f & np.uint8(0xFF ^ _YOUNG)
        young_n += 1
        if (f & _DIRTY) and not (ffl & _PG_dirty):
            if not ((ffl & _PG_anon) and (ffl & _PG_swapbacked) and not (ffl & _PG_swapcache)):
                ffl |= _PG_dirty
        if two_step and not (ffl & (_PG_referenced | _PG_workingset)):
            folio_flags[head] = np.uint16((ffl & ~np.int64(_REFS_MASK)) | _PG_referenced)
            continue
        ffl &= ~refs_flags
        if two_step:
            ffl |= _PG_workingset
        folio_flags[head] = np.uint16(ffl)
        folio_gen[head] = np.uint8(new_gen + 1)
        if gen - 1 != new_gen:
            key = (gen - 1) * 2 + (0 if ffl & _PG_swapbacked else 1)
            if key != run_key:
                if run_n:
                    delta[run_key >> 1, run_key & 1] -= run_n
                    delta[new_gen, run_key & 1] += run_n
                run_key = key
                run_n = 0
            run_n += 512 if ffl & _PG_head else 1
            moved += 1
    if run_n:
        delta[run_key >> 1, run_key & 1] -= run_n
        delta[new_gen, run_key & 1] += run_n
    ss = sec_stats
    ss[0, SEC_TEST_CALLS] += t_calls
    ss[0, SEC_TEST_SLOT] += t_calls
    ss[0, SEC_TEST_RANGES] += t_ranges
    ss[0, SEC_TEST_VISITED] += t_vis
    ss[0, SEC_TEST_YOUNG] += t_young
    ss[0, SEC_CLEAR_CALLS] += c_calls
    ss[0, SEC_CLEAR_SLOT] += c_calls
    ss[0, SEC_CLEAR_RANGES] += c_ranges
    ss[0, SEC_VISITED] += t_vis + c_vis
    ss[0, SEC_YOUNG] += t_young + c_young
    ss[0, SEC_CLEARED] += cleared
    ss[0, SEC_CLEARED_WC] += wc
    stats[_YOUNG_ST] += young_n
    stats[_OLD] += n_old
    moved_out[0] += moved
    return young_n


@njit(cache=True)
def simple_layout(seg_vpn0, seg_vpn1, seg_lo, seg_hi, v0, v1):
    """(s0, s1, n): the n (1 or 2) segments overlapping [v0, v1) if each covers it all, else n=0."""
    n = 0
    s0 = s1 = -1
    for s in range(seg_lo, seg_hi):
        if seg_vpn0[s] >= v1 or seg_vpn1[s] <= v0:
            continue
        if seg_vpn0[s] > v0 or seg_vpn1[s] < v1 or n == 2:
            return -1, -1, 0
        if n == 0:
            s0 = s
        else:
            s1 = s
        n += 1
    return s0, s1, n


@njit(cache=True)
def pte_sec_row(row, lo, hi, pte_pfn, pte_flags, folio_flags, folio_gen, folio_memcg,
                node_start, node_end, memcg_id, can_swap, pte_mode, base, sptes, seg_vpn0,
                seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo, seg_hi, batch_calls, stats,
                sec_stats, cls, answered, fnd, ysub, heads):
    """walk_pte_range() over [lo, hi) of one table of an mm with notifiers. Spec §3.7, §8.3.

    pte_mode 1 (seed v4): old in-node PTEs ask test_young first (MM_LEAF_OLD
    if no MMU saw an access; the folio filter comes after), candidates then
    get clear_young, and are young. pte_mode 2 (v6.12): every in-node
    candidate that passes the folio filter gets clear_young; young if either
    MMU saw an access. Marks the young PTEs `cls[i] == YOUNG_PTE` with their
    folio in `heads[i]` for the caller to update, and returns how many, or
    -1 (nothing done) when the table maps a 2 MiB SPTE (see the module).
    """
    pfns = pte_pfn[row]
    flags = pte_flags[row]
    n_old_cand = 0
    # get_pte_pfn() (present, not zero/special, in this node), then get_pfn_folio()
    for i in range(lo, hi):
        cls[i] = _SKIP
        f = flags[i]
        if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
            continue
        pfn = np.int64(pfns[i])
        if pfn < 1024 or pfn < node_start or pfn >= node_end:
            continue
        head = pfn
        if folio_flags[pfn] & _PG_tail:
            head = pfn & ~np.int64(511)
        if folio_gen[head] == 0 or np.int64(folio_memcg[head]) != memcg_id or (
                not can_swap and folio_flags[head] & _PG_swapbacked):
            head = -1
        heads[i] = head
        if f & _YOUNG:
            if head >= 0:
                cls[i] = _CAND_YOUNG
        elif pte_mode == 1:
            cls[i] = _CAND_OLD  # test_young comes before the folio filter
            n_old_cand += 1
        elif head >= 0:
            cls[i] = _CAND_OLD
    n_old = 0
    if pte_mode == 1 and n_old_cand:
        saved = sec_stats.copy()
        if not _notify_phase(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo,
                             seg_hi, base, lo, hi, cls, _CAND_OLD, False, answered, fnd, ysub,
                             sec_stats, False):
            sec_stats[:] = saved
            return -1
        for i in range(lo, hi):
            if cls[i] == _CAND_OLD and not answered[i]:
                n_old += 1
                cls[i] = _SKIP
            elif cls[i] == _CAND_OLD and heads[i] < 0:
                cls[i] = _SKIP
    _notify_phase(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo, seg_hi,
                  base, lo, hi, cls, _CAND_YOUNG | _CAND_OLD, True, answered, fnd, ysub,
                  sec_stats, batch_calls)
    young_n = 0
    for i in range(lo, hi):
        c = cls[i]
        if c == _SKIP or (pte_mode == 2 and c == _CAND_OLD and not answered[i]):
            cls[i] = _SKIP
            continue
        cls[i] = YOUNG_PTE
        young_n += 1
    stats[_OLD] += n_old
    return young_n
