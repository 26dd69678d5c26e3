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
[vpn0, vpn1) whose SPTE state lives in `sptes[arr][gfn0 + vpn - vpn0]`, for
subscriber `sub`. The model of KVM (mglru.kvm) owns those arrays and turns the
per-subscriber call counts in `sec_stats` into lock acquisitions.

Future optimizations:
1. skip whole rows with a packed young bitmap when most PTEs are old.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# PTE bits (see lru_gen.helpers)
_PRESENT = 1
_YOUNG = 2
_DIRTY = 4
_SPECIAL = 8
# PMD states
_PMD_NONE = 0
_PMD_TABLE = 1
_PMD_LEAF = 2
# folio flags
_PG_referenced = 1 << 0
_PG_workingset = 1 << 1
_PG_dirty = 1 << 3
_PG_swapbacked = 1 << 4
_PG_swapcache = 1 << 5
_PG_head = 1 << 10
_PG_tail = 1 << 11
_PG_anon = 1 << 12
_REFS_MASK = 0b11 << 14
# SPTE bits (see mglru.kvm.spte)
SPTE_PRESENT = 1
SPTE_ACCESSED = 2
SPTE_HUGE = 4
# mm_stats items
_TOTAL, _OLD, _YOUNG_ST, _NL_TOTAL, _NL_FOUND, _NL_ADDED = 0, 1, 2, 3, 4, 5
# sec_stats columns
SEC_TEST_CALLS = 0
SEC_TEST_SLOT = 1
SEC_CLEAR_CALLS = 2
SEC_CLEAR_SLOT = 3
SEC_YOUNG = 4
SEC_VISITED = 5
SEC_CLEARED = 6
SEC_BATCHES = 7
NR_SEC_STATS = 8

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
def sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo, seg_hi,
              vpn, nr, clear, sec_stats, batch_calls):
    """mmu_notifier_{test,clear}_young over [vpn, vpn+nr) pages. Returns young.

    test_young stops at the first young subscriber; clear_young visits all and
    ORs (spec §4.10). Calls are counted per subscriber, and "found a memslot"
    separately because KVM only locks when one overlaps (spec §6.2).
    """
    young = False
    nsub = sec_stats.shape[0]
    for sub in range(nsub):
        found = False
        sub_young = False
        for s in range(seg_lo, seg_hi):
            if seg_sub[s] != sub:
                continue
            lo = max(vpn, seg_vpn0[s])
            hi = min(vpn + nr, seg_vpn1[s])
            if lo >= hi:
                continue
            found = True
            arr = sptes[seg_arr[s]]
            g = seg_gfn0[s] + (lo - seg_vpn0[s])
            gend = seg_gfn0[s] + (hi - seg_vpn0[s])
            while g < gend:
                f = arr[g]
                step = 1
                h = g
                if f & SPTE_HUGE:
                    h = g & ~np.int64(511)
                    f = arr[h]
                    step = h + 512 - g
                if f & SPTE_PRESENT:
                    sec_stats[sub, SEC_VISITED] += 1
                    if f & SPTE_ACCESSED:
                        sub_young = True
                        if clear:
                            arr[h] = f & ~np.uint8(SPTE_ACCESSED)
                            sec_stats[sub, SEC_CLEARED] += 1
                        elif not clear:
                            break
                g += step
            if sub_young and not clear:
                break
        if clear:
            sec_stats[sub, SEC_CLEAR_CALLS] += 1
            if found:
                sec_stats[sub, SEC_CLEAR_SLOT] += 1
        else:
            sec_stats[sub, SEC_TEST_CALLS] += 1
            if found:
                sec_stats[sub, SEC_TEST_SLOT] += 1
        if sub_young:
            sec_stats[sub, SEC_YOUNG] += 1
            young = True
            if not clear:
                break
    return young


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
              delta, stats, sec_stats, moved_out):
    """Walk PTE-table rows (in address order) clipped to the walk ranges.

    Returns the number of folios moved between generations (`walk->batched`).
    """
    last_window = -1
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
                             seg_hi, base, 512, True, sec_stats, batch_calls):
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
                                                  sec_stats, batch_calls)
                        if not sec_young:
                            n_old += 1
                            continue
                    head = _folio_ok(pfn, folio_flags, folio_gen, folio_memcg, node_start,
                                     node_end, memcg_id, can_swap)
                    if head < 0:
                        continue
                    if sec_on:
                        sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub, seg_lo,
                                  seg_hi, vpn, 1, True, sec_stats, batch_calls)
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
                    if batch_calls:
                        window = i >> 6
                        if window != last_window:
                            last_window = window
                            for sub in range(sec_stats.shape[0]):
                                sec_stats[sub, SEC_BATCHES] += 1
                    if sec_range(sptes, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub,
                                 seg_lo, seg_hi, vpn, 1, True, sec_stats, batch_calls):
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
