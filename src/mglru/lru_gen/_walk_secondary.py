"""The compiled secondary-MMU part of the aging walk (seed v4 2/7, v6.12).

Mechanism: what `walk_pte_range()` and `walk_pmd_range_locked()` (mm/vmscan.c)
do through `mmu_notifier_test_young()` / `mmu_notifier_clear_young()` (v4)
or `ptep_clear_young_notify()` (v6.12), and what KVM's `kvm_test_age_gfn()` /
`kvm_age_gfn()` then do to each leaf SPTE. Secondary MMUs are seen through
the segments of `_walk_state.SecondaryMmu` (see `mglru.kvm.spte` for the SPTE
bits). A notifier test stops at the first subscriber that saw an access, a
clear visits all and ORs; KVM handles every memslot range of a call and ORs,
and a test stops within a range at its first accessed SPTE. Every call is
counted per subscriber in `sec_stats` (columns SEC_*), which the subscriber
turns into lock acquisitions (`account_aging`). `age_spte` is the one place
an SPTE is tested or cleared.

Three engines of `walk_pte_range` compute the same thing over a PTE range:

* `pte_range_notify_simple`: the usual layout (one subscriber whose one or
  two segments, a memslot and its SMM alias, cover the range), in call
  order in one loop (the hot loop of `mglru bench aging --vm`);
* `pte_range_notify_phased`: other layouts (several subscribers, a memslot
  boundary in the table, v3 batching) in phases: all test_young calls, the
  folio filter, all clear_young calls. Phases match per-PTE calls unless a
  2 MiB SPTE sits under a 4 KiB host table (one SPTE shared by several
  PTEs): a test phase meeting one backs out (-1);
* `pte_range_notify_each`: one `sec_range` call per PTE, for what is left.

Future optimizations:
1. skip the test phase for tables whose SPTEs are all old (a per-table
   accessed summary kept by the KVM model).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.lru_gen.helpers import MM_LEAF_OLD as _OLD, MM_LEAF_YOUNG as _YOUNG_ST
from mglru.mm.page import (
    NR_RESERVED_PFNS as _RESERVED,
    PTE_DIRTY as _DIRTY,
    PTE_PRESENT as _PRESENT,
    PTE_SPECIAL as _SPECIAL,
    PTE_YOUNG as _YOUNG,
)

invalidate_stale(__file__, "_walk_folio.py", "_walk_state.py")

from mglru.lru_gen._walk_folio import (  # noqa: E402  (after the cache check)
    flush_batch,
    get_pfn_folio,
    new_batch,
    walk_update_folio,
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
SEC_TEST_SLOT = 1       # ... that found a memslot (only those take the MMU lock)
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

_PA = SPTE_PRESENT | SPTE_ACCESSED
_HUGE_MASK = ~np.int64(511)
# pte_range_notify_phased classes
_SKIP, _CAND_YOUNG, _CAND_OLD = 0, 1, 2


@njit(cache=True, nogil=True, _nrt=False)
def age_spte(arr, gfn, clear):
    """kvm_test_age_gfn() (clear false) or kvm_age_gfn() on the leaf SPTE of `gfn`.

    Returns the leaf's bits before the call, with SPTE_HUGE if `gfn` lies in
    a 2 MiB leaf (whose state is on its head gfn); 0 past the array's end
    (no SPTE there). A clear drops the accessed bit of a present leaf.
    """
    if gfn >= arr.shape[0]:
        return 0
    st = np.int64(arr[gfn])
    huge = st & SPTE_HUGE
    if huge:
        gfn &= _HUGE_MASK
        st = np.int64(arr[gfn])
    if clear and (st & _PA) == _PA:
        arr[gfn] = np.uint8(st & ~SPTE_ACCESSED)
    return st | huge


@njit(cache=True, nogil=True, _nrt=False)
def _is_wc(st):
    """A cleared SPTE that was writable and clean (its volatile bits)."""
    return (st & (SPTE_WRITABLE | SPTE_DIRTY)) == SPTE_WRITABLE


@njit(cache=True, nogil=True)
def sec_range(sptes, sec, seg_lo, seg_hi, vpn, nr, clear, count_call, win_young):
    """mmu_notifier_{test,clear}_young over [vpn, vpn+nr) pages. Returns young.

    `seg_lo:seg_hi` are the segments that may overlap. With `count_call`
    false the pages join the previous call (v3 bitmap batch); `win_young[sub]`
    keeps the batch's young answer counted once.
    """
    young = False
    ss = sec.sec_stats
    for sub in range(ss.shape[0]):
        ranges = visited = cleared = wc = 0
        sub_young = False
        for s in range(seg_lo, seg_hi):
            if sec.seg_sub[s] != sub:
                continue
            lo = max(vpn, sec.seg_vpn0[s])
            hi = min(vpn + nr, sec.seg_vpn1[s])
            if lo >= hi:
                continue
            ranges += 1
            arr = sptes[sec.seg_arr[s]]
            g = sec.seg_gfn0[s] + (lo - sec.seg_vpn0[s])
            gend = min(sec.seg_gfn0[s] + (hi - sec.seg_vpn0[s]), arr.shape[0])
            while g < gend:
                st = age_spte(arr, g, clear)
                step = (g & _HUGE_MASK) + 512 - g if st & SPTE_HUGE else 1
                if st & SPTE_PRESENT:
                    visited += 1
                    if st & SPTE_ACCESSED:
                        sub_young = True
                        if not clear:
                            break
                        cleared += 1
                        wc += _is_wc(st)
                g += step
        ss[sub, SEC_VISITED] += visited
        ss[sub, SEC_CLEARED] += cleared
        ss[sub, SEC_CLEARED_WC] += wc
        if count_call:
            win_young[sub] = 0
            if clear:
                ss[sub, SEC_CLEAR_CALLS] += 1
                ss[sub, SEC_CLEAR_RANGES] += ranges
                if ranges:
                    ss[sub, SEC_CLEAR_SLOT] += 1
            else:
                ss[sub, SEC_TEST_CALLS] += 1
                ss[sub, SEC_TEST_RANGES] += ranges
                ss[sub, SEC_TEST_VISITED] += visited
                if ranges:
                    ss[sub, SEC_TEST_SLOT] += 1
        if sub_young:
            young = True
            if not win_young[sub]:
                win_young[sub] = 1
                ss[sub, SEC_YOUNG] += 1
                if not clear:
                    ss[sub, SEC_TEST_YOUNG] += 1
            if not clear:
                break
    return young


@njit(cache=True, nogil=True)
def _notify_phase(sptes, sec, seg_lo, seg_hi, base, lo, hi, want, clear, scratch):
    """All test_young (clear false) or clear_young calls of one table, subscriber by subscriber.

    Pages with `cls[i] & want` are called; `answered[i]` ends up 1 where some
    subscriber saw an access (a test skips later subscribers after that). A
    test phase that meets a 2 MiB SPTE stops and returns False.
    """
    cls, answered, fnd, ysub = scratch.cls, scratch.answered, scratch.fnd, scratch.ysub
    ss = sec.sec_stats
    for i in range(lo, hi):
        answered[i] = 0
    for sub in range(ss.shape[0]):
        for i in range(lo, hi):
            fnd[i] = 0
            ysub[i] = 0
        visited = cleared = wc = 0
        for s in range(seg_lo, seg_hi):
            if sec.seg_sub[s] != sub:
                continue
            a = max(base + lo, sec.seg_vpn0[s]) - base
            b = min(base + hi, sec.seg_vpn1[s]) - base
            if a >= b:
                continue
            arr = sptes[sec.seg_arr[s]]
            off = sec.seg_gfn0[s] + base - sec.seg_vpn0[s]
            for i in range(a, b):
                if not (cls[i] & want) or answered[i] and not clear:
                    continue
                fnd[i] += 1
                st = age_spte(arr, off + i, clear)
                if st & SPTE_HUGE and not clear:
                    return False  # see the module: call order matters
                if st & SPTE_PRESENT:
                    visited += 1
                    if st & SPTE_ACCESSED:
                        ysub[i] = 1
                        if clear:
                            cleared += 1
                            wc += _is_wc(st)
        calls = slots = ranges = young = 0
        last_win = -1
        win_young = False
        for i in range(lo, hi):
            if not (cls[i] & want) or answered[i] and not clear:
                continue
            count = True
            if sec.batch_calls:  # v3: one call per 64-PTE window
                w = (base + i) >> 6
                count = w != last_win
                if count:
                    last_win = w
                    win_young = False
                    ss[sub, SEC_BATCHES] += 1
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
        ss[sub, SEC_VISITED] += visited
        ss[sub, SEC_YOUNG] += young
        if clear:
            ss[sub, SEC_CLEAR_CALLS] += calls
            ss[sub, SEC_CLEAR_SLOT] += slots
            ss[sub, SEC_CLEAR_RANGES] += ranges
            ss[sub, SEC_CLEARED] += cleared
            ss[sub, SEC_CLEARED_WC] += wc
        else:
            ss[sub, SEC_TEST_CALLS] += calls
            ss[sub, SEC_TEST_SLOT] += slots
            ss[sub, SEC_TEST_RANGES] += ranges
            ss[sub, SEC_TEST_VISITED] += visited
            ss[sub, SEC_TEST_YOUNG] += young
    return True


@njit(cache=True, nogil=True, _nrt=False)
def simple_layout(sec, seg_lo, seg_hi, v0, v1):
    """(s0, s1, n): the n (1 or 2) segments overlapping [v0, v1) if each covers it all, else n=0."""
    n = 0
    s0 = s1 = -1
    for s in range(seg_lo, seg_hi):
        if sec.seg_vpn0[s] >= v1 or sec.seg_vpn1[s] <= v0:
            continue
        if sec.seg_vpn0[s] > v0 or sec.seg_vpn1[s] < v1 or n == 2:
            return -1, -1, 0
        if n == 0:
            s0 = s
        else:
            s1 = s
        n += 1
    return s0, s1, n


@njit(cache=True, nogil=True, _nrt=False)
def pte_range_notify_simple(pfns, flags, lo, hi, fo, w, sec, layout):
    """walk_pte_range() over [lo, hi) of a table covered by one subscriber's segments.

    `layout` is (arr0, off0, arr1, off1, nseg): the SPTE arrays of the one or
    two segments and the gfn of the table's first PTE slot in each. A
    segment whose array ends before the table (an address space with no
    SPTEs, e.g. no vCPU entered SMM) is still a memslot range, with nothing
    to visit. Returns (young PTEs, folios moved).
    """
    arr0, off0, arr1, off1, nseg = layout
    t_calls = t_vis = t_young = 0
    c_calls = c_vis = c_young = cleared = wc = 0
    young_n = n_old = 0
    batch = new_batch()
    for i in range(lo, hi):
        f = flags[i]
        if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
            continue
        pfn = np.int64(pfns[i])
        if pfn < _RESERVED or pfn < w.node_start or pfn >= w.node_end:  # get_pte_pfn()
            continue
        young_p = (f & _YOUNG) != 0
        if sec.test_before_clear and not young_p:
            # test_young(): kvm_test_age_gfn per memslot range, ORed
            t_calls += 1
            st = age_spte(arr0, off0 + i, False)
            y = (st & _PA) == _PA
            t_vis += st & SPTE_PRESENT
            if nseg == 2:
                st = age_spte(arr1, off1 + i, False)
                y |= (st & _PA) == _PA
                t_vis += st & SPTE_PRESENT
            if not y:
                n_old += 1
                continue
            t_young += 1
        head = get_pfn_folio(pfn, fo, w)
        if head < 0:
            continue
        # clear_young(): every memslot range
        c_calls += 1
        st = age_spte(arr0, off0 + i, True)
        c_vis += st & SPTE_PRESENT
        sy = (st & _PA) == _PA
        if sy:
            cleared += 1
            wc += _is_wc(st)
        if nseg == 2:
            st = age_spte(arr1, off1 + i, True)
            c_vis += st & SPTE_PRESENT
            if (st & _PA) == _PA:
                sy = True
                cleared += 1
                wc += _is_wc(st)
        if sy:
            c_young += 1
        elif sec.clear_notify and not young_p:
            continue
        if young_p:
            flags[i] = f & np.uint8(0xFF ^ _YOUNG)
        young_n += 1
        batch = walk_update_folio(head, (f & _DIRTY) != 0, fo, w, batch)
    ss = sec.sec_stats
    ss[0, SEC_TEST_CALLS] += t_calls
    ss[0, SEC_TEST_SLOT] += t_calls
    ss[0, SEC_TEST_RANGES] += t_calls * nseg  # every memslot range is handled
    ss[0, SEC_TEST_VISITED] += t_vis
    ss[0, SEC_TEST_YOUNG] += t_young
    ss[0, SEC_CLEAR_CALLS] += c_calls
    ss[0, SEC_CLEAR_SLOT] += c_calls
    ss[0, SEC_CLEAR_RANGES] += c_calls * nseg
    ss[0, SEC_VISITED] += t_vis + c_vis
    ss[0, SEC_YOUNG] += t_young + c_young
    ss[0, SEC_CLEARED] += cleared
    ss[0, SEC_CLEARED_WC] += wc
    w.mm_stats[_YOUNG_ST] += young_n
    w.mm_stats[_OLD] += n_old
    return young_n, flush_batch(batch, w)


@njit(cache=True, nogil=True)
def pte_range_notify_phased(pfns, flags, base, lo, hi, fo, w, sec, sptes, seg_lo, seg_hi,
                            scratch):
    """walk_pte_range() over [lo, hi) of one table, its notifier calls in phases.

    get_pte_pfn() and get_pfn_folio() first; with `test_before_clear` the
    old PTEs' test_young calls (before the folio filter), then the
    candidates' clear_young calls. Returns (young PTEs, folios moved), or
    (-1, 0) with nothing done when the table maps a 2 MiB SPTE (see the
    module).
    """
    cls, heads = scratch.cls, scratch.heads
    n_old_cand = 0
    for i in range(lo, hi):
        cls[i] = _SKIP
        f = flags[i]
        if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
            continue
        pfn = np.int64(pfns[i])
        if pfn < _RESERVED or pfn < w.node_start or pfn >= w.node_end:
            continue
        head = get_pfn_folio(pfn, fo, w)
        heads[i] = head
        if f & _YOUNG:
            if head >= 0:
                cls[i] = _CAND_YOUNG
        elif sec.test_before_clear:
            cls[i] = _CAND_OLD  # test_young comes before the folio filter
            n_old_cand += 1
        elif head >= 0:
            cls[i] = _CAND_OLD
    n_old = 0
    if sec.test_before_clear and n_old_cand:
        saved = sec.sec_stats.copy()
        if not _notify_phase(sptes, sec, seg_lo, seg_hi, base, lo, hi, _CAND_OLD, False,
                             scratch):
            sec.sec_stats[:] = saved
            return -1, 0
        for i in range(lo, hi):
            if cls[i] == _CAND_OLD and not scratch.answered[i]:
                n_old += 1
                cls[i] = _SKIP
            elif cls[i] == _CAND_OLD and heads[i] < 0:
                cls[i] = _SKIP
    _notify_phase(sptes, sec, seg_lo, seg_hi, base, lo, hi, _CAND_YOUNG | _CAND_OLD, True,
                  scratch)
    young_n = 0
    batch = new_batch()
    for i in range(lo, hi):
        c = cls[i]
        if c == _SKIP or (sec.clear_notify and c == _CAND_OLD and not scratch.answered[i]):
            continue
        f = flags[i]
        flags[i] = f & np.uint8(0xFF ^ _YOUNG)
        young_n += 1
        batch = walk_update_folio(heads[i], (f & _DIRTY) != 0, fo, w, batch)
    w.mm_stats[_OLD] += n_old
    w.mm_stats[_YOUNG_ST] += young_n
    return young_n, flush_batch(batch, w)


@njit(cache=True, nogil=True)
def pte_range_notify_each(pfns, flags, base, lo, hi, fo, w, sec, sptes, seg_lo, seg_hi,
                          scratch):
    """walk_pte_range() over [lo, hi) of one table, one notifier call per PTE.

    The exact call order for any layout. Returns (young PTEs, folios moved).
    """
    win_young = scratch.win_young
    young_n = n_old = 0
    batch = new_batch()
    for i in range(lo, hi):
        vpn = base + i
        f = flags[i]
        if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
            continue
        pfn = np.int64(pfns[i])
        if pfn < _RESERVED or pfn < w.node_start or pfn >= w.node_end:
            continue
        young_p = (f & _YOUNG) != 0
        if sec.test_before_clear and not young_p:
            if not sec_range(sptes, sec, seg_lo, seg_hi, vpn, 1, False, True, win_young):
                n_old += 1
                continue
        head = get_pfn_folio(pfn, fo, w)
        if head < 0:
            continue
        if young_p:
            flags[i] = f & np.uint8(0xFF ^ _YOUNG)
        count = True
        if sec.batch_calls:
            # v3: one call per 64-PTE window (a bitmap of its candidates)
            window = vpn >> 6
            count = window != scratch.last_window[0]
            if count:
                scratch.last_window[0] = window
                for sub in range(sec.sec_stats.shape[0]):
                    sec.sec_stats[sub, SEC_BATCHES] += 1
        sy = sec_range(sptes, sec, seg_lo, seg_hi, vpn, 1, True, count, win_young)
        if sec.clear_notify and not (young_p or sy):
            continue
        young_n += 1
        batch = walk_update_folio(head, (f & _DIRTY) != 0, fo, w, batch)
    w.mm_stats[_OLD] += n_old
    w.mm_stats[_YOUNG_ST] += young_n
    return young_n, flush_batch(batch, w)
