"""The compiled inner loop of scan_folios() / sort_folio() / isolate_folio() (mm/vmscan.c).

Mechanism (v6.10-v6.14): one call pops folios from the tail of one
generation list (given tail-first as a cached array, re-validated per folio
against its `lru` word), sorts the ones that stay on MGLRU (unevictable,
promoted, protected by their tier, ineligible, under writeback) and isolates
candidates, within the kernel's budgets (MAX_LRU_BATCH folios, at most 64
isolated or skipped). List moves take keys from the head/tail counters
passed in `ctr` (see lru_gen.lists).

Outputs: `out` (isolated head pfns), `wb` (dirty file folios the flusher must
start), and `res` = [scanned, isolated, isolated folios, pos, dirty file folios,
remaining, more, skipped, skipped folios]. The cached order holds the list as it
was when built: folios added at the list's head since (a reclaim's put-back, say)
come after it. When the order runs out before the budgets do and the list still
holds folios this scan has not seen, `more` is 1: the caller rebuilds the order and
calls again with `more` still set, and the scan goes on from its counts in `res`,
through the rebuilt order less its newest `skipped folios` entries (the folios this
scan skipped, back at the list's head; scan_folios() does not see them again).

Future optimizations:
1. keep the tail-first order incrementally instead of rebuilding the cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen.lists import LRU_LIST_SHIFT as _LIST_SHIFT
from mglru.mm.page import (
    LRU_REFS_MASK as _REFS_MASK,
    LRU_REFS_SHIFT as _REFS_SHIFT,
    PG_anon as _PG_anon,
    PG_dirty as _PG_dirty,
    PG_head as _PG_head,
    PG_lru as _PG_lru,
    PG_reclaim as _PG_reclaim,
    PG_referenced as _PG_referenced,
    PG_swapcache as _PG_swapcache,
    PG_unevictable as _PG_unevictable,
    PG_workingset as _PG_workingset,
    PG_writeback as _PG_writeback,
)


@njit(cache=True, nogil=True, _nrt=False)
def _tier(f, two_step):
    field = (f & _REFS_MASK) >> _REFS_SHIFT
    ws = (f & _PG_workingset) != 0
    if two_step:
        refs = field + 1 if f & _PG_referenced else 0
        if ws:
            return 3, refs, ws
        if refs <= 1:
            return 0, refs, ws
        if refs == 2:
            return 1, refs, ws
        return 2, refs, ws
    refs = field + (1 if ws else 0)  # v6.10 folio_lru_refs(); tier = order_base_2(refs + 1)
    # refs is 0..4 (refs field 3 plus PG_workingset): order_base_2(5) = 3
    tier = 0 if refs == 0 else (1 if refs == 1 else (2 if refs <= 3 else 3))
    return tier, refs, ws


@njit(cache=True, nogil=True, _nrt=False)
def scan_list(tail, pos, remaining, folios, lists, ctl, outp):
    """Pop from the tail of list `old_gen` (see the module).

    The groups are plain tuples (numba types those in C; a named tuple costs
    about 1.5 us a field per call):

    * `tail` = (cand, snap): cand[pos:] is the list's cached tail-first
      order, snap its folios' `lru` words when cached;
    * `folios` = (flags, gen, lru), per pfn;
    * `lists` = (nr_pages, nr_listed, protected, ctr): the lruvec's counts
      [gen][type], this tier's protected counts and the list-key counters;
    * `ctl` = (old_gen, typ, tier_idx, two_step, refs_flags, shift, gfp_io);
    * `outp` = (out, wb, res).
    """
    cand, snap = tail
    flags, gen, lru = folios
    nr_pages, nr_listed, protected, ctr = lists
    old_gen, typ, tier_idx, two_step, refs_flags, shift, gfp_io = ctl
    out, wb, res = outp
    sorted_ = 0
    if res[6]:  # the rest of a scan whose cached order ran out (see the module)
        scanned, isolated, n_out, n_wb = res[0], res[1], res[2], res[4]
        skipped, parked = res[7], res[8]
        end = cand.shape[0] - parked
    else:
        scanned = isolated = skipped = parked = 0
        n_out = n_wb = 0
        end = cand.shape[0]
    new_old = (old_gen + 1) % 4
    skip_start = n_out  # skipped folios are parked at the end of `out` (reversed)
    n_skip = 0
    cap = out.shape[0]
    while pos < end:
        pfn = cand[pos]
        pos += 1
        if lru[pfn] != snap[pos - 1]:
            continue  # moved since the cache was built
        f = np.int64(flags[pfn])
        nr = 512 if f & _PG_head else 1
        scanned += nr
        g = np.int64(gen[pfn]) - 1
        tier, refs, ws = _tier(f, two_step)
        lazy_ws = two_step and refs + (1 if ws else 0) == 5
        dest = -1
        at_tail = False
        if f & _PG_unevictable:
            # unevictable: off MGLRU, onto the unevictable list
            nr_pages[g, typ] -= nr
            nr_listed[old_gen, typ] -= 1
            gen[pfn] = 0
            lru[pfn] = 0
            sorted_ += nr
        elif g != old_gen:
            dest = g  # promoted
        else:
            bump = False
            reclaiming = False
            if tier > tier_idx or lazy_ws:
                bump = True  # protected
                if not lazy_ws and tier >= shift:
                    protected[tier - shift] += nr
            elif not f & _PG_lru:
                bump = True  # ineligible
                at_tail = True
            elif f & _PG_writeback or (typ == 1 and f & _PG_dirty):
                bump = True  # waiting for writeback
                reclaiming = True
                if f & _PG_dirty and not f & _PG_writeback:
                    wb[n_wb] = pfn
                    n_wb += 1
            if bump:
                nf = f & ~refs_flags
                if reclaiming:
                    nf |= _PG_reclaim
                flags[pfn] = np.uint16(nf)
                gen[pfn] = np.uint8(new_old + 1)
                nr_pages[old_gen, typ] -= nr
                nr_pages[new_old, typ] += nr
                dest = new_old
            else:
                # isolate_folio()
                ok = True
                if not gfp_io and (f & _PG_dirty or (f & _PG_anon and not f & _PG_swapcache)):
                    ok = False
                if ok:
                    if not f & _PG_referenced:
                        f &= ~np.int64(_REFS_MASK)
                    f &= ~np.int64(_PG_reclaim | _PG_lru)
                    flags[pfn] = np.uint16(f)
                    nr_pages[old_gen, typ] -= nr
                    nr_listed[old_gen, typ] -= 1
                    gen[pfn] = 0
                    lru[pfn] = 0
                    out[n_out] = pfn
                    n_out += 1
                    isolated += nr
                else:
                    n_skip += 1
                    out[cap - n_skip] = pfn
                    skipped += nr
        if dest >= 0:
            sorted_ += nr
            nr_listed[old_gen, typ] -= 1
            nr_listed[dest, typ] += 1
            if at_tail:
                key = ctr[1]
                ctr[1] -= 1
            else:
                ctr[0] += 1
                key = ctr[0]
            lru[pfn] = np.uint32(((dest + 1) << _LIST_SHIFT) | key)
        remaining -= 1
        if remaining == 0 or max(isolated, skipped) >= 64:
            break
    # skipped folios are spliced back to the head of the list, in scan order
    for i in range(n_skip):
        pfn = out[cap - 1 - i]
        ctr[0] += 1
        lru[pfn] = np.uint32(((old_gen + 1) << _LIST_SHIFT) | ctr[0])
    parked += n_skip
    res[0] = scanned
    res[1] = isolated
    res[2] = n_out
    res[3] = pos
    res[4] = n_wb
    res[5] = remaining
    # the order ran out with the budgets left, and the list holds folios not seen yet
    res[6] = 1 if (pos >= end and remaining and max(isolated, skipped) < 64
                   and nr_listed[old_gen, typ] > parked) else 0
    res[7] = skipped
    res[8] = parked
    return skip_start
