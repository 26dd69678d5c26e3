"""The compiled page-table walk of aging: walk_pmd_range() down to walk_pte_range().

Mechanism (mm/vmscan.c, v6.10-v6.14, and the seed series v4 2/7): one call of
`walk_pmd_range` walks a run of PTE-table rows of one mm (in address order,
clipped to the walked VMAs) for one lruvec and returns the folios it moved;
the page deltas build up in `walk->nr_pages` and `walk.walk_mm` applies them
once per run, as `reset_batch_size()` does. Per PMD entry:

* a THP leaf passes get_pmd_pfn() and goes to `walk_pmd_range_locked`
  (pmdp_test_and_clear_young, plus the notifier's clear_young over its 512
  pages when the walk reaches secondary MMUs);
* a PTE table is skipped unless its non-leaf accessed bit (when the walk
  clears it, should_clear_pmd_young()) and the Bloom filter of `max_seq`
  say it may hold young PTEs; then `walk_pte_range`, and suitable_to_scan()
  decides whether it goes into the next generation's filter.

`walk_pte_range` walks each VMA range of the table (the kernel's
get_next_vma() restart) for primary accessed bits (the hot loop of
`mglru bench aging`); `walk_pte_range_notify` does it in an mm whose
notifiers the walk calls, with the engines of `_walk_secondary`. Every loop
finds folios with `get_pfn_folio` and updates them with `walk_update_folio`
(`_walk_folio`).
The state comes grouped as in `_walk_state`; the behaviour of the modelled
version as flags there (`get_pfn_checks_node`, `test_before_clear`,
`clear_notify`, `batch_calls`).

Future optimizations:
1. skip whole rows with a packed young bitmap when most PTEs are old.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.lru_gen.helpers import (
    MM_LEAF_OLD as _OLD,
    MM_LEAF_TOTAL as _TOTAL,
    MM_LEAF_YOUNG as _YOUNG_ST,
    MM_NONLEAF_ADDED as _NL_ADDED,
    MM_NONLEAF_FOUND as _NL_FOUND,
    MM_NONLEAF_TOTAL as _NL_TOTAL,
)
from mglru.mm.page import (
    NR_RESERVED_PFNS as _RESERVED,
    PMD_LEAF as _PMD_LEAF,
    PMD_TABLE as _PMD_TABLE,
    PTE_DIRTY as _DIRTY,
    PTE_PRESENT as _PRESENT,
    PTE_SPECIAL as _SPECIAL,
    PTE_YOUNG as _YOUNG,
)

# numba keys its cache on this file only: drop it when a compiled callee changes
invalidate_stale(__file__, "_walk_secondary.py", "_walk_folio.py", "_walk_state.py")

from mglru.lru_gen._walk_folio import (  # noqa: E402  (after the cache check)
    flush_batch,
    get_pfn_folio,
    new_batch,
    walk_update_folio,
)
from mglru.lru_gen._walk_secondary import (  # noqa: E402, F401  (re-exported: the SEC_* contract)
    NR_SEC_STATS,
    SEC_BATCHES,
    SEC_CLEAR_CALLS,
    SEC_CLEAR_RANGES,
    SEC_CLEAR_SLOT,
    SEC_CLEARED,
    SEC_CLEARED_WC,
    SEC_TEST_CALLS,
    SEC_TEST_RANGES,
    SEC_TEST_SLOT,
    SEC_TEST_VISITED,
    SEC_TEST_YOUNG,
    SEC_VISITED,
    SEC_YOUNG,
    SPTE_ACCESSED,
    SPTE_DIRTY,
    SPTE_HUGE,
    SPTE_PRESENT,
    SPTE_WRITABLE,
    pte_range_notify_each,
    pte_range_notify_phased,
    pte_range_notify_simple,
    sec_range,
    simple_layout,
)
from mglru.lru_gen._walk_state import (  # noqa: E402
    Folios,
    PageTable,
    PteScratch,
    SecondaryMmu,
    WalkArgs,
)

_GOLDEN_RATIO_64 = np.uint64(0x61C8864680B583EB)


@njit(cache=True, inline="always")
def bloom_keys(mm_id, pmd_vpn2):
    """Two 15-bit keys from hash_ptr() of the PMD entry's (synthetic) address."""
    ptr = np.uint64((np.int64(mm_id) << 36) | (np.int64(pmd_vpn2) << 3))
    h = (ptr * _GOLDEN_RATIO_64) >> np.uint64(34)
    return np.int64(h & np.uint64(0x7FFF)), np.int64(h >> np.uint64(15))


@njit(cache=True, inline="always")
def _bloom_test(filt, k0, k1):
    b0 = (filt[k0 >> 6] >> np.uint64(k0 & 63)) & np.uint64(1)
    b1 = (filt[k1 >> 6] >> np.uint64(k1 & 63)) & np.uint64(1)
    return b0 != 0 and b1 != 0


@njit(cache=True, inline="always")
def _bloom_set(filt, k0, k1):
    filt[k0 >> 6] |= np.uint64(1) << np.uint64(k0 & 63)
    filt[k1 >> 6] |= np.uint64(1) << np.uint64(k1 & 63)


@njit(cache=True, nogil=True)
def bloom_set_many(filt, pairs):
    """Insert each (mm id, PMD index) row of `pairs` (look-around's inserts, see
    `bloom.update_bloom_filters`)."""
    for i in range(pairs.shape[0]):
        k0, k1 = bloom_keys(pairs[i, 0], pairs[i, 1])
        _bloom_set(filt, k0, k1)


@njit(cache=True, nogil=True, _nrt=False)
def walk_pte_range(row, r_i, pt, fo, w):
    """walk_pte_range() on PTE table `row` when only primary accessed bits matter.

    Walks each walked VMA range of the table (`r_i`: the first that may
    overlap it), as the kernel restarts with get_next_vma(). Returns (PTEs
    walked, young, folios moved). NOTE: the hot loop of a large walk; it and
    its helpers are compiled without reference counting, so a helper call
    costs what inlining it by hand did (see `_walk_folio`).
    """
    base = pt.pmd_addr[row] >> 12  # vpn of the first PTE slot
    end = base + 512
    pfns = pt.pte_pfn[row]
    flags = pt.pte_flags[row]
    total = young_n = n_old = 0
    batch = new_batch()
    j = r_i
    while j < w.rng_start.shape[0] and w.rng_start[j] < end:
        lo = max(base, w.rng_start[j]) - base
        hi = min(end, w.rng_end[j]) - base
        j += 1
        total += hi - lo
        for i in range(lo, hi):
            f = flags[i]
            if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
                continue
            pfn = np.int64(pfns[i])
            if pfn < _RESERVED:  # is_zero_pfn(): the (huge) zero page
                continue
            if not (f & _YOUNG):
                if not w.get_pfn_checks_node or w.node_start <= pfn < w.node_end:
                    n_old += 1
                continue
            head = get_pfn_folio(pfn, fo, w)
            if head < 0:
                continue
            young_n += 1
            batch = walk_update_folio(head, (f & _DIRTY) != 0, fo, w, batch)
            # NOTE: after the folio update, so that it reuses get_pfn_folio()'s loads
            flags[i] = f & np.uint8(0xFF ^ _YOUNG)
    w.mm_stats[_YOUNG_ST] += young_n
    w.mm_stats[_OLD] += n_old
    return total, young_n, flush_batch(batch, w)


@njit(cache=True, nogil=True)
def _spte_layout(base, lo, hi, sec, sptes, seg_lo, seg_hi, cache):
    """The simple layout of [lo, hi) for `pte_range_notify_simple`, if it has one.

    Returns (ok, layout, cache): `cache` keeps the last layout's SPTE arrays
    across tables, since a typed-list lookup costs microseconds.
    """
    c_s0, c_s1, c_arr0, c_arr1 = cache
    s0, s1, nseg = simple_layout(sec, seg_lo, seg_hi, base + lo, base + hi)
    ok = sec.sec_stats.shape[0] == 1 and not sec.batch_calls and nseg > 0
    if ok:
        if s0 != c_s0:
            c_arr0 = sptes[sec.seg_arr[s0]]
            c_s0 = s0
        if nseg == 2 and s1 != c_s1:
            c_arr1 = sptes[sec.seg_arr[s1]]
            c_s1 = s1
    off0 = sec.seg_gfn0[s0] + base - sec.seg_vpn0[s0] if ok else 0
    off1 = sec.seg_gfn0[s1] + base - sec.seg_vpn0[s1] if ok and nseg == 2 else off0
    # an array covers the whole range or (no SPTEs there) none of it
    ok = ok and (off0 + hi <= c_arr0.shape[0] or off0 + lo >= c_arr0.shape[0]) and (
        nseg == 1 or off1 + hi <= c_arr1.shape[0] or off1 + lo >= c_arr1.shape[0])
    return ok, (c_arr0, off0, c_arr1, off1, nseg), (c_s0, c_s1, c_arr0, c_arr1)


@njit(cache=True, nogil=True)
def walk_pte_range_notify(row, r_i, pt, fo, w, sec, sptes, seg_lo, seg_hi, scratch, cache):
    """walk_pte_range() on PTE table `row` of an mm whose notifiers the walk calls.

    As `walk_pte_range`, each VMA range with the fastest engine of
    `_walk_secondary` that fits it; `seg_lo:seg_hi` are the segments that
    may overlap the table. Returns (PTEs walked, young, moved, cache).
    """
    base = pt.pmd_addr[row] >> 12  # vpn of the first PTE slot
    end = base + 512
    pfns = pt.pte_pfn[row]
    flags = pt.pte_flags[row]
    total = young_n = moved = 0
    j = r_i
    while j < w.rng_start.shape[0] and w.rng_start[j] < end:
        lo = max(base, w.rng_start[j]) - base
        hi = min(end, w.rng_end[j]) - base
        j += 1
        total += hi - lo
        y = -1
        m = 0
        if seg_hi > seg_lo:
            ok, layout, cache = _spte_layout(base, lo, hi, sec, sptes, seg_lo, seg_hi, cache)
            if ok:
                y, m = pte_range_notify_simple(pfns, flags, lo, hi, fo, w, sec, layout)
            else:
                y, m = pte_range_notify_phased(pfns, flags, base, lo, hi, fo, w, sec, sptes,
                                               seg_lo, seg_hi, scratch)
        if y < 0:
            y, m = pte_range_notify_each(pfns, flags, base, lo, hi, fo, w, sec, sptes, seg_lo,
                                         seg_hi, scratch)
        young_n += y
        moved += m
    return total, young_n, moved, cache


@njit(cache=True, nogil=True)
def walk_pmd_range_locked(row, pt, fo, w, sec, sptes, seg_lo, seg_hi, scratch):
    """walk_pmd_range_locked() on one THP leaf that passed get_pmd_pfn(). Returns moved."""
    head = get_pfn_folio(np.int64(pt.pmd_pfn[row]), fo, w)
    if head < 0:
        return 0
    young = (pt.pmd_flags[row] & _YOUNG) != 0
    pt.pmd_flags[row] &= ~np.uint8(_YOUNG)
    if sec.on:
        base = pt.pmd_addr[row] >> 12
        if sec_range(sptes, sec, seg_lo, seg_hi, base, 512, True, True, scratch.win_young):
            young = True
    if not young:
        w.mm_stats[_OLD] += 1
        return 0
    w.mm_stats[_YOUNG_ST] += 1
    batch = walk_update_folio(head, (pt.pmd_flags[row] & _DIRTY) != 0, fo, w, new_batch())
    return flush_batch(batch, w)


@njit(cache=True, nogil=True)
def walk_pmd_range(rows, pt, fo, w, sec, sptes, scratch):
    """walk_pmd_range() over PTE-table rows in address order, clipped to the walk ranges.

    `pt`, `fo`, `w`, `sec`, `scratch` are the groups of `_walk_state`;
    `sptes` the typed list of SPTE arrays the segments index. Returns the
    folios moved between generations (`walk->batched`).
    """
    cache = (np.int64(-1), np.int64(-1), sptes[0], sptes[0])
    moved = 0
    r_i = 0
    nrng = w.rng_start.shape[0]
    nseg = sec.seg_vpn0.shape[0]
    seg_i = 0
    for ri in range(rows.shape[0]):
        row = rows[ri]
        base = pt.pmd_addr[row] >> 12
        end = base + 512
        while r_i < nrng and w.rng_end[r_i] <= base:
            r_i += 1
        if r_i >= nrng or w.rng_start[r_i] >= end:
            continue  # no walked VMA in this table
        while seg_i < nseg and sec.seg_vpn1[seg_i] <= base:
            seg_i += 1
        seg_hi = seg_i
        while seg_hi < nseg and sec.seg_vpn0[seg_hi] < end:
            seg_hi += 1
        state = pt.pmd_state[row]
        if state != _PMD_TABLE and state != _PMD_LEAF:
            w.mm_stats[_TOTAL] += 1  # none or huge zero page
            continue
        if state == _PMD_LEAF:
            w.mm_stats[_TOTAL] += 1
            # get_pmd_pfn(), and the old-PMD test before the locked pass
            pfn = np.int64(pt.pmd_pfn[row])
            old = not (pt.pmd_flags[row] & _YOUNG)
            in_node = w.node_start <= pfn < w.node_end
            if w.get_pfn_checks_node and not in_node:
                continue
            if old and (not w.get_pfn_checks_node or not sec.has_notifiers):
                w.mm_stats[_OLD] += 1
                continue
            if not in_node:
                continue
            moved += walk_pmd_range_locked(row, pt, fo, w, sec, sptes, seg_i, seg_hi, scratch)
            continue
        # a PTE table
        w.mm_stats[_NL_TOTAL] += 1
        if w.nonleaf_clear:
            if not (pt.pmd_flags[row] & _YOUNG):
                continue
            pt.pmd_flags[row] &= ~np.uint8(_YOUNG)
        k0, k1 = bloom_keys(w.mm_id, pt.pmd_addr[row] >> 21)
        if not w.force_scan and w.has_read and not _bloom_test(w.bloom_read, k0, k1):
            continue
        w.mm_stats[_NL_FOUND] += 1
        if pt.ptl_busy[row]:
            # spin_trylock() failed: not scanned; from v6.14 walk_pte_range() still
            # reports it "suitable", so it enters the next Bloom filter
            if w.contended_suitable:
                w.mm_stats[_NL_ADDED] += 1
                if w.has_write:
                    _bloom_set(w.bloom_write, k0, k1)
            continue
        if sec.on and sec.has_notifiers:
            total, young_n, m, cache = walk_pte_range_notify(row, r_i, pt, fo, w, sec, sptes,
                                                             seg_i, seg_hi, scratch, cache)
        else:
            # NOTE: a call of a reference-counted function costs an incref and a
            # decref of every array it is handed; this one has none
            total, young_n, m = walk_pte_range(row, r_i, pt, fo, w)
        moved += m
        w.mm_stats[_TOTAL] += total
        # suitable_to_scan(): dense tables carry over to the next generation
        if young_n * w.suitable_n >= total:
            w.mm_stats[_NL_ADDED] += 1
            if w.has_write:
                _bloom_set(w.bloom_write, k0, k1)
    return moved


@njit(cache=True, nogil=True)
def walk_rows(rows, pt, fo, w, sec, sptes, scratch):
    """`walk_pmd_range` from Python: the groups as plain tuples in their fields' order.

    NOTE: numba types a plain tuple argument in C but a named tuple field by
    field in Python (measured: 216 us a call with named tuples, 88 us with
    plain ones), so the named tuples are built on this side.
    """
    return walk_pmd_range(rows, PageTable(*pt), Folios(*fo), WalkArgs(*w), SecondaryMmu(*sec),
                          sptes, PteScratch(*scratch))
