"""The compiled inner loop of the page-table walk (walk_pmd_range / walk_pte_range).

Spec §3.6-3.8 and §3.12, seed 2/7. One call walks a run of PTE-table rows of
one mm for one lruvec and returns deltas that `walk.walk_mm` applies once, as
the kernel batches them in `walk->nr_pages` (STYLE: batched deltas are applied
once). The function is written once for every modelled version; the caller
passes the version's behaviour as small integer modes:

pte_mode
    0  v6.10: get_pte_pfn() checks present/zero/special only; an old PTE is
       counted MM_LEAF_OLD; the node range is checked in get_pfn_folio().
    1  seed v4 (2/7): node range in get_pte_pfn(); an old PTE asks
       test_young() first (if the cap allows) and is MM_LEAF_OLD if neither
       MMU saw an access; then clear_young() and the primary bit.
    2  v6.12 clear_young_notify: get_pte_pfn() rejects old PTEs only when
       the mm has no notifiers; after get_pfn_folio(), one primary
       test-and-clear OR clear_young() per candidate.
thp_mode
    0  v6.10: old THP PMDs are MM_LEAF_OLD; primary bit only.
    1  seed v4: get_pmd_pfn() with node filter; old and no notifiers ->
       MM_LEAF_OLD; lru_gen_pmdp_test_and_clear_young() in the locked pass.
    2  v6.12: get_pmd_pfn() accepts young-or-notifiers; pmdp_clear_young_notify.
sec_on
    whether notifier calls are made from the walk at all (v4: the Kconfig
    and cap 0x8; notify: the mm has notifiers).
batch_calls
    v3-bitmap: one notifier call covers the candidate PTEs of a 64-PTE window.

Secondary MMUs are seen through *segments*: a run of host virtual pages
[vpn0, vpn1) whose SPTE state lives in `sptes[arr][gfn0 + vpn - vpn0]` (no
SPTEs past the array's end), for subscriber `sub`. The model of KVM
(mglru.kvm) owns those arrays and turns the per-subscriber call counts in
`sec_stats` into lock acquisitions. The notifier work itself lives in
`_walk_secondary`; the per-PTE loop below is its fallback for tables that
need exact call order.

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
    LRU_REFS_MASK as _REFS_MASK,
    PMD_LEAF as _PMD_LEAF,
    PMD_TABLE as _PMD_TABLE,
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

invalidate_stale(__file__, "_walk_secondary.py")

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
    YOUNG_PTE,
    pte_sec_row,
    pte_sec_row_simple,
    sec_range,
    simple_layout,
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


@njit(cache=True)
def _folio_ok(pfn, folio_flags, folio_gen, folio_memcg, node_start, node_end, memcg_id,
              can_swap):
    """get_pfn_folio(): on an MGLRU list, this node, this memcg, type allowed."""
    if pfn < node_start or pfn >= node_end:
        return -1
    head = pfn
    if folio_flags[pfn] & _PG_tail:
        head = pfn & ~np.int64(511)
    if folio_gen[head] == 0:
        return -1
    if folio_memcg[head] != memcg_id:
        return -1
    if not can_swap and (folio_flags[head] & _PG_swapbacked):
        return -1
    return head


@njit(cache=True)
def _update_folio(head, dirty, new_gen, folio_flags, folio_gen, two_step, refs_flags, delta):
    """walk_update_folio() + folio_update_gen(). Returns 1 if the folio moved gens."""
    f = folio_flags[head]
    if dirty and not (f & _PG_dirty):
        if not ((f & _PG_anon) and (f & _PG_swapbacked) and not (f & _PG_swapcache)):
            f |= _PG_dirty
    old = np.int64(folio_gen[head]) - 1
    if two_step and not (f & (_PG_referenced | _PG_workingset)):
        # first sighting only marks the folio (spec §2.6, v6.14+)
        folio_flags[head] = (f & ~np.uint16(_REFS_MASK)) | _PG_referenced
        return 0
    f = f & ~np.uint16(refs_flags)
    if two_step:
        f |= _PG_workingset
    folio_flags[head] = f
    folio_gen[head] = new_gen + 1
    if old >= 0 and old != new_gen:
        nr = 512 if f & _PG_head else 1
        typ = 0 if f & _PG_swapbacked else 1
        delta[old, typ] -= nr
        delta[new_gen, typ] += nr
        return 1
    return 0


@njit(cache=True)
def _pte_young_only(row, lo, hi, pte_pfn, pte_flags, folio_flags, folio_gen, folio_memcg,
                    node_start, node_end, memcg_id, can_swap, new_gen, two_step, refs_flags,
                    node_first, delta, stats, moved_out):
    """walk_pte_range() over [lo, hi) of one table when only primary bits matter.

    NOTE: the hot loop of a large walk. It repeats get_pfn_folio() and
    folio_update_gen() by hand because numba's IR inlining of the helpers
    made it 5x slower (measured: 77 ms vs 14 ms for 4 Mi PTEs).
    """
    young_n = 0
    moved = 0
    n_old = 0
    run_key = -1
    run_n = 0
    pfns = pte_pfn[row]
    flags = pte_flags[row]
    for i in range(lo, hi):
        f = flags[i]
        if (f & (_PRESENT | _SPECIAL)) != _PRESENT:
            continue
        pfn = np.int64(pfns[i])
        if pfn < 1024:  # the (huge) zero page
            continue
        in_node = node_start <= pfn < node_end
        if not (f & _YOUNG):
            if not node_first or in_node:
                n_old += 1
            continue
        if not in_node:
            continue
        ffl = np.int64(folio_flags[pfn])
        head = pfn
        if ffl & _PG_tail:
            head = pfn & ~np.int64(511)
            ffl = np.int64(folio_flags[head])
        g = np.int64(folio_gen[head])
        if g == 0 or np.int64(folio_memcg[head]) != memcg_id:
            continue
        if not can_swap and (ffl & _PG_swapbacked):
            continue
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
        if g - 1 != new_gen:
            # run-length accumulate: consecutive folios usually share (old gen, type)
            key = (g - 1) * 2 + (0 if ffl & _PG_swapbacked else 1)
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
    stats[_YOUNG_ST] += young_n
    stats[_OLD] += n_old
    moved_out[0] += moved
    return young_n


@njit(cache=True)
def walk_rows(rows, pmd_addr, pmd_state, pmd_flags, pmd_pfn, pte_pfn, pte_flags,
              rng_start, rng_end,
              folio_flags, folio_gen, folio_memcg, node_start, node_end, memcg_id, new_gen,
              can_swap, force_scan, nonleaf_clear, bloom_read, has_read, bloom_write,
              has_write, mm_id, pte_mode, thp_mode, sec_on, has_notifiers, two_step,
              refs_flags, suitable_n,
              sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, batch_calls,
              delta, stats, sec_stats, moved_out, ptl_busy):
    """Walk PTE-table rows (in address order) clipped to the walk ranges.

    `ptl_busy[row]` marks PTE tables whose lock another CPU holds (a test hook).

    Returns the number of folios moved between generations (`walk->batched`).
    """
    last_window = -1
    win_young = np.zeros(sec_stats.shape[0], np.int8)
    # scratch for pte_sec_row, one slot per PTE of a table
    s_cls = np.zeros(512, np.int8)
    s_answered = np.zeros(512, np.int8)
    s_fnd = np.zeros(512, np.int64)
    s_ysub = np.zeros(512, np.int8)
    s_heads = np.zeros(512, np.int64)
    # the SPTE arrays of the last simple layout (typed-list lookups are slow)
    one_sub = sec_stats.shape[0] == 1 and not batch_calls
    c_s0 = c_s1 = -1
    c_arr0 = c_arr1 = sptes[0]
    r_i = 0
    nrng = rng_start.shape[0]
    nseg = seg_vpn0.shape[0]
    seg_i = 0
    for ri in range(rows.shape[0]):
        row = rows[ri]
        base = pmd_addr[row] >> 12  # vpn of the first PTE slot
        vpn2 = pmd_addr[row] >> 21
        end = base + 512
        while r_i < nrng and rng_end[r_i] <= base:
            r_i += 1
        if r_i >= nrng or rng_start[r_i] >= end:
            continue  # no walked VMA in this table
        while seg_i < nseg and seg_vpn1[seg_i] <= base:
            seg_i += 1
        seg_lo = seg_i
        seg_hi = seg_i
        while seg_hi < nseg and seg_vpn0[seg_hi] < end:
            seg_hi += 1
        state = pmd_state[row]
        if state != _PMD_TABLE and state != _PMD_LEAF:
            stats[_TOTAL] += 1  # none or huge zero page
            continue
        if state == _PMD_LEAF:
            stats[_TOTAL] += 1
            pfn = np.int64(pmd_pfn[row])
            young_p = (pmd_flags[row] & _YOUNG) != 0
            if thp_mode == 0:
                if not young_p:
                    stats[_OLD] += 1
                    continue
                if pfn < node_start or pfn >= node_end:
                    continue
            else:
                if pfn < node_start or pfn >= node_end:
                    continue
                if not young_p and not has_notifiers:
                    stats[_OLD] += 1
                    continue
            # the locked pass (walk_pmd_range_locked)
            head = _folio_ok(pfn, folio_flags, folio_gen, folio_memcg, node_start, node_end,
                             memcg_id, can_swap)
            if head < 0:
                continue
            young = young_p
            pmd_flags[row] &= ~np.uint8(_YOUNG)
            if sec_on and (thp_mode != 2 or has_notifiers):
                if sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo,
                             seg_hi, base, 512, True, sec_stats, True, win_young):
                    young = True
            if not young:
                stats[_OLD] += 1
                continue
            stats[_YOUNG_ST] += 1
            moved_out[0] += _update_folio(head, (pmd_flags[row] & _DIRTY) != 0, new_gen,
                                                  folio_flags, folio_gen, two_step, refs_flags, delta)
            continue
        # a PTE table
        stats[_NL_TOTAL] += 1
        if nonleaf_clear:
            if not (pmd_flags[row] & _YOUNG):
                continue
            pmd_flags[row] &= ~np.uint8(_YOUNG)
        k0, k1 = bloom_keys(mm_id, vpn2)
        if not force_scan and has_read and not _bloom_test(bloom_read, k0, k1):
            continue
        stats[_NL_FOUND] += 1
        if ptl_busy[row]:
            # spin_trylock() failed: reported "suitable" without a scan (spec §3.7 quirk)
            stats[_NL_ADDED] += 1
            if has_write:
                _bloom_set(bloom_write, k0, k1)
            continue
        total = 0
        young_n = 0
        n_old = 0
        j = r_i
        while j < nrng and rng_start[j] < end:
            lo = max(base, rng_start[j]) - base
            hi = min(end, rng_end[j]) - base
            total += hi - lo
            if not (sec_on and has_notifiers):
                # the common case: primary accessed bits only
                young_n += _pte_young_only(row, lo, hi, pte_pfn, pte_flags, folio_flags,
                                           folio_gen, folio_memcg, node_start, node_end,
                                           memcg_id, can_swap, new_gen, two_step, refs_flags,
                                           pte_mode != 0, delta, stats, moved_out)
                j += 1
                continue
            if pte_mode != 0 and seg_hi > seg_lo:
                # secondary MMUs (see _walk_secondary): one loop for the usual layout
                got = -1
                s0, s1, nseg2 = simple_layout(seg_vpn0, seg_vpn1, seg_lo, seg_hi, base + lo,
                                              base + hi)
                if one_sub and nseg2:
                    if s0 != c_s0:
                        c_arr0 = sptes[seg_arr[s0]]
                        c_s0 = s0
                    if nseg2 == 2 and s1 != c_s1:
                        c_arr1 = sptes[seg_arr[s1]]
                        c_s1 = s1
                    off0 = seg_gfn0[s0] + base - seg_vpn0[s0]
                    off1 = seg_gfn0[s1] + base - seg_vpn0[s1] if nseg2 == 2 else off0
                    # an array covers the whole table or (no SPTEs there) none of it
                    use0 = off0 + hi <= c_arr0.shape[0]
                    use1 = nseg2 == 2 and off1 + hi <= c_arr1.shape[0]
                    if (use0 or off0 + lo >= c_arr0.shape[0]) and (
                            nseg2 == 1 or use1 or off1 + lo >= c_arr1.shape[0]):
                        got = pte_sec_row_simple(
                            pte_pfn[row], pte_flags[row], lo, hi, folio_flags, folio_gen,
                            folio_memcg, node_start, node_end, memcg_id, can_swap, new_gen,
                            two_step, refs_flags, pte_mode, c_arr0, off0, use0, c_arr1, off1,
                            use1, nseg2, delta, stats, sec_stats, moved_out)
                if got < 0:  # other layouts: in phases, then the folio updates here
                    got = pte_sec_row(row, lo, hi, pte_pfn, pte_flags, folio_flags, folio_gen,
                                      folio_memcg, node_start, node_end, memcg_id, can_swap,
                                      pte_mode, base, sptes, seg_vpn0, seg_vpn1, seg_gfn0,
                                      seg_arr, seg_sub, seg_lo, seg_hi, batch_calls, stats,
                                      sec_stats, s_cls, s_answered, s_fnd, s_ysub, s_heads)
                    for i in range(lo, hi):
                        if got < 0 or s_cls[i] != YOUNG_PTE:
                            continue
                        f = pte_flags[row, i]
                        pte_flags[row, i] = f & ~np.uint8(_YOUNG)
                        stats[_YOUNG_ST] += 1
                        moved_out[0] += _update_folio(s_heads[i], (f & _DIRTY) != 0, new_gen,
                                                      folio_flags, folio_gen, two_step,
                                                      refs_flags, delta)
                if got >= 0:
                    young_n += got
                    j += 1
                    continue
            for i in range(lo, hi):
                vpn = base + i
                f = pte_flags[row, i]
                if not (f & _PRESENT):
                    continue
                pfn = np.int64(pte_pfn[row, i])
                if pfn < 1024 or (f & _SPECIAL):  # zero page / special mapping
                    continue
                young_p = (f & _YOUNG) != 0
                if pte_mode == 0:
                    if not young_p:
                        n_old += 1
                        continue
                    head = _folio_ok(pfn, folio_flags, folio_gen, folio_memcg, node_start,
                                     node_end, memcg_id, can_swap)
                    if head < 0:
                        continue
                    pte_flags[row, i] = f & ~np.uint8(_YOUNG)
                elif pte_mode == 1:
                    if pfn < node_start or pfn >= node_end:
                        continue
                    if not young_p:
                        sec_young = False
                        if sec_on:
                            sec_young = sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr,
                                                  seg_sub, seg_lo, seg_hi, vpn, 1, False,
                                                  sec_stats, True, win_young)
                        if not sec_young:
                            n_old += 1
                            continue
                    head = _folio_ok(pfn, folio_flags, folio_gen, folio_memcg, node_start,
                                     node_end, memcg_id, can_swap)
                    if head < 0:
                        continue
                    if sec_on:
                        sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo,
                                  seg_hi, vpn, 1, True, sec_stats, True, win_young)
                    if young_p:
                        pte_flags[row, i] = f & ~np.uint8(_YOUNG)
                else:
                    if pfn < node_start or pfn >= node_end:
                        continue
                    if not young_p and not has_notifiers:
                        continue
                    head = _folio_ok(pfn, folio_flags, folio_gen, folio_memcg, node_start,
                                     node_end, memcg_id, can_swap)
                    if head < 0:
                        continue
                    young = young_p
                    if young_p:
                        pte_flags[row, i] = f & ~np.uint8(_YOUNG)
                    count = True
                    if batch_calls:
                        # v3: one call per 64-PTE window (a bitmap of its candidates)
                        window = vpn >> 6
                        count = window != last_window
                        if count:
                            last_window = window
                            for sub in range(sec_stats.shape[0]):
                                sec_stats[sub, SEC_BATCHES] += 1
                    if sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub,
                                 seg_lo, seg_hi, vpn, 1, True, sec_stats, count, win_young):
                        young = True
                    if not young:
                        continue
                young_n += 1
                stats[_YOUNG_ST] += 1
                moved_out[0] += _update_folio(head, (f & _DIRTY) != 0, new_gen,
                                                      folio_flags, folio_gen, two_step,
                                                      refs_flags, delta)
            j += 1
        stats[_TOTAL] += total
        stats[_OLD] += n_old
        # suitable_to_scan(): dense tables carry over to the next generation
        if young_n * suitable_n >= total:
            stats[_NL_ADDED] += 1
            if has_write:
                _bloom_set(bloom_write, k0, k1)
    return moved_out[0]
