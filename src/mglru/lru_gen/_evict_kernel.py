"""The compiled eviction loop: try_to_shrink_lruvec() / evict_folios() batch after batch.

Kernel: mm/vmscan.c: try_to_shrink_lruvec(), get_nr_to_scan(), should_run_aging(),
evict_folios(), isolate_folios(), get_type_to_scan(), get_tier_idx(),
try_to_inc_min_seq(), reset_ctrl_pos(), shrink_folio_list(); mm/workingset.c:
lru_gen_eviction().

Mechanism: `evict_loop` runs the loop of one lruvec as a state machine whose
state lives in the int64 array `st` (phase, budgets, the batch in hand and the
counters still to be applied by Python). It does in one call what the Python
path does batch by batch: the PID choice of type and tier, the compiled
`scan_list`, try_to_inc_min_seq, and shrink_folio_list with the put-back for
batches of 4 KiB anonymous folios each mapped by one PTE of a task without
secondary MMUs: a batch of cold folios only is swapped out and freed at once
(the case `_shrink_batch` vectorises), one that also holds young or referenced
folios goes through `_evict_keep.keep_shrink` (references, look-around,
put-back). Whatever it cannot do it hands back at a point where the Python path
can take over and then resume it (`X_*`): aging with the budget it sets
(`X_AGE`), completing writeback (`X_WBEND`), an iteration or a batch whose PID
counters outgrow int64 (`X_ITER`, `X_EVICT`), a list whose cached tail order must be rebuilt or
renumbered (`X_PREP`), dirty file folios for the flusher (`X_WB`), a batch that
needs the per-folio path (`X_SHRINK`: THP, file, shmem, multiply mapped or
mlocked folios, secondary MMUs), a swap map to grow (`X_GROW`),
a full buffer of freed pages or Bloom filter inserts (`X_FLUSH`), the PMDs and
VMAs of several tasks to pack for a batch that keeps folios (`X_PMD`). See
`lru_gen.evict_fast` for the Python side.

Future optimizations:
1. THP and file folios, and tasks with secondary MMUs, in the loop too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._evict_ctrl import (
    _evictable,
    _inc_min_seq,
    _min_evictable,
    _nr_to_scan,
    _pid_small,
    _tier_idx,
    _type_to_scan,
)
from mglru.lru_gen._evict_keep import keep_ok, keep_shrink, shadow_of
from mglru.lru_gen._evict_layout import (
    C_ABORT_AT_GOAL,
    C_FAST_OK,
    C_GFP_IO,
    C_HAS_IDLE,
    C_KEEP_OK,
    C_KSWAPD,
    C_MAX_SEQ,
    C_MEMCG_ID,
    C_NID,
    C_NPROCS,
    C_NR_HIST,
    C_NR_TO_RECLAIM,
    C_PMD_READY,
    C_REFS_FLAGS,
    C_ROOT,
    C_RULES_6_1,
    C_SHIFT,
    C_SWAPPINESS,
    C_SWCAP,
    C_TWO_STEP,
    M_GEN,
    M_POS,
    M_PRESENT,
    M_TAIL,
    PH_AFTER,
    PH_EVICT,
    PH_ISOLATED,
    PH_POSTSCAN,
    PH_SCAN,
    PH_SHRINK,
    PH_START,
    S_ATTEMPT,
    S_DELTA,
    S_EVICTED_ANON,
    S_FREED,
    S_GROW,
    S_ISO_SCANNED,
    S_NBLOOM,
    S_NCHUNKS,
    S_NEV,
    S_NFREED,
    S_NKEEP,
    S_NOUT,
    S_NR_RECLAIMED,
    S_NR_SCANNED,
    S_NR_TO_SCAN,
    S_NWB,
    S_PGSCAN,
    S_PGSTEAL,
    S_PHASE,
    S_RET,
    S_SCAN_MORE,
    S_SCAN_RES,
    S_SCANNED,
    S_SEQ,
    S_SWNEXT,
    S_SWNFREE,
    S_SWREST,
    S_SWUSED,
    S_SWWANT,
    S_TYPE,
    S_WB_PENDING,
    X_AGE,
    X_DONE,
    X_EVICT,
    X_FLUSH,
    X_GROW,
    X_ITER,
    X_PMD,
    X_PREP,
    X_SHRINK,
    X_WB,
    X_WBEND,
)
from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.lru_gen._scan_kernel import scan_list
from mglru.mm.page import (
    PTE_PRESENT as _PTE_PRESENT,
    PTE_SPECIAL as _PTE_SPECIAL,
    PTE_SWAP as _PTE_SWAP,
    PTE_YOUNG as _PTE_YOUNG,
    PG_anon as _PG_anon,
    PG_head as _PG_head,
    PG_referenced as _PG_referenced,
    PG_swapbacked as _PG_swapbacked,
    PG_swapcache as _PG_swapcache,
    PG_writeback as _PG_writeback,
)

invalidate_stale(__file__, "_scan_kernel.py", "_evict_ctrl.py", "_evict_layout.py",
                 "_evict_keep.py", "_look_around_kernel.py")
_BATCH = 64  # MIN_LRU_BATCH
_MAX_BATCH = 4096  # MAX_LRU_BATCH
_ORDER_MASK = (1 << 29) - 1


@njit(cache=True, nogil=True, _nrt=False)
def _pinned(pinned, pfn):
    i = np.searchsorted(pinned, pfn)
    return i < pinned.shape[0] and pinned[i] == pfn


@njit(cache=True, nogil=True, _nrt=False)
def _batch_is_fast(folios, procs, cf, out, n, pinned, owner, swap_free):
    """Whether shrink_anon_batch would take every folio of the batch (see _shrink_batch)."""
    flags, _gen, _lru, memcg, _idle, hint = folios
    pflags, ppfn, pinfo = procs
    if not cf[C_FAST_OK]:
        return False
    swap_pages = 0
    for i in range(n):
        f = np.int64(flags[out[i]])
        if f & _PG_swapbacked:
            swap_pages += 512 if f & _PG_head else 1
    if swap_pages > swap_free:
        return False
    both = _PG_anon | _PG_swapbacked
    for i in range(n):
        pfn = out[i]
        f = np.int64(flags[pfn])
        if f & both != both or f & (_PG_head | _PG_writeback | _PG_swapcache):
            return False  # a swap-cache folio keeps its slot: per folio
        if not cf[C_TWO_STEP] and f & _PG_referenced:
            return False
        if np.int64(memcg[pfn]) != cf[C_MEMCG_ID] or _pinned(pinned, pfn):
            return False
        h = np.int64(hint[pfn])
        nmaps = 0
        for p in range(cf[C_NPROCS]):
            if h >= pinfo[p, 0]:
                continue
            pf = np.int64(pflags[p][h])
            if pf & (_PTE_PRESENT | _PTE_SPECIAL) != _PTE_PRESENT:
                continue
            if np.int64(ppfn[p][h]) != pfn:
                continue
            nmaps += 1
            owner[i] = p
            if pinfo[p, 1] or pinfo[p, 2] or pf & _PTE_YOUNG:
                return False  # secondary MMUs, VM_LOCKED or a young PTE: per folio
        if nmaps != 1:
            return False
    return True


@njit(cache=True, nogil=True, _nrt=False)
def _fast_shrink(folios, lv, procs, swap, cf, st, out, n, owner, freed):
    """shrink_anon_batch + _free_folios for a batch of fast folios only."""
    flags, gen, lru, memcg, idle, hint = folios
    evicted = lv[5]
    min_seq = lv[7]
    pflags, ppfn, _pinfo = procs
    shadow, free_slots = swap
    two_step = cf[C_TWO_STEP]
    ms = min_seq[0]
    hist = ms % cf[C_NR_HIST]
    base = (cf[C_MEMCG_ID] << 10) | (cf[C_NID] << 1) | (1 << 62)
    nfree = st[S_SWNFREE]
    nxt = st[S_SWNEXT]
    nf = st[S_NFREED]
    for i in range(n):
        pfn = out[i]
        val, tier = shadow_of(np.int64(flags[pfn]), ms, two_step, base)
        evicted[hist, 0, tier] += 1
        if nfree:
            nfree -= 1
            slot = free_slots[nfree]
        else:
            slot = nxt
            nxt += 1
        shadow[slot] = val
        h = np.int64(hint[pfn])
        p = owner[i]
        pflags[p][h] = _PTE_SWAP
        ppfn[p][h] = slot
        flags[pfn] = 0
        gen[pfn] = 0
        lru[pfn] = 0
        memcg[pfn] = 0
        if cf[C_HAS_IDLE]:
            idle[pfn] = 0
        freed[nf] = pfn
        nf += 1
    st[S_SWNFREE] = nfree
    st[S_SWNEXT] = nxt
    st[S_SWUSED] += n
    st[S_NFREED] = nf
    st[S_FREED] += n
    st[S_NR_RECLAIMED] += n
    return n


@njit(cache=True, nogil=True, _nrt=False)
def evict_loop(folios, lv, caches, ctr, procs, pmd, swap, pinned, cf, st, bufs):
    """Run try_to_shrink_lruvec()'s loop from phase st[S_PHASE] until an exit (see module).

    * `folios` = (flags, gen, lru, memcg, page_idle, rmap hint), per pfn;
    * `lv` = (nr_pages, nr_listed, avg_refaulted, avg_total, protected, evicted,
      refaulted, min_seq), the lruvec's (zone axis dropped);
    * `caches` = (cand0, snap0, cand1, snap1, cm): the cached tail orders per type;
    * `ctr` = [order_head, order_tail];
    * `procs` = (PTE flags per process, PTE pfns per process, [[ptes, notifiers,
      locked, mm id, first PMD row, first VMA, VMAs]]);
    * `pmd` = (PMD state, PMD pfn, PMD address, [[vma start, end, flags]]) of all
      processes, packed;
    * `swap` = (shadow, the last of the device's free slots), its counters in st;
    * `bufs` = (out, wb, scan result, owner, freed, chunk ends, Bloom inserts, vma rows,
      scratch: the batch's marks, then a look-around window's candidates).
    """
    nr_pages, nr_listed, _a, _b, prot, _e, _f, min_seq = lv
    flags, gen, lru, _m, _i, _h = folios
    cand0, snap0, cand1, snap1, cm = caches
    out, wb, res, owner, freed, chunks, bloom, vrow, _scratch = bufs
    sw = cf[C_SWAPPINESS]
    max_seq = cf[C_MAX_SEQ]
    while True:
        ph = st[S_PHASE]
        if ph == PH_START:
            if not _pid_small(lv, cf):
                return X_ITER
            nr, aging = _nr_to_scan(lv, cf, st)
            if aging:
                return X_AGE  # Python ages and sets the budget, then PH_EVICT
            if nr <= 0:
                st[S_RET] = 1 if nr < 0 else 0
                return X_DONE
            st[S_NR_TO_SCAN] = nr
            st[S_PHASE] = PH_EVICT
        elif ph == PH_EVICT:  # evict_folios()
            if not _pid_small(lv, cf):
                return X_EVICT
            if st[S_WB_PENDING]:
                return X_WBEND  # it first completes writeback (in Python)
            nev = 0
            for t in range(2):
                if _evictable(t, sw):
                    nev += 1
            st[S_TYPE] = _type_to_scan(lv, cf)
            st[S_ATTEMPT] = 0
            st[S_NEV] = nev
            st[S_PHASE] = PH_SCAN
        elif ph == PH_SCAN:
            t = st[S_TYPE]
            if st[S_ATTEMPT] >= st[S_NEV]:
                st[S_ISO_SCANNED] = 0
                st[S_NOUT] = 0
                st[S_PHASE] = PH_ISOLATED
                continue
            if not _evictable(t, sw):
                st[S_TYPE] = 1 - t
                st[S_ATTEMPT] += 1
                continue
            tier = _tier_idx(lv, cf, t)
            g = min_seq[t] % 4
            if max_seq - min_seq[t] + 1 == 2 or not nr_listed[g, t]:
                st[S_SCAN_RES] = 0
                st[S_NOUT] = 0
                st[S_PHASE] = PH_POSTSCAN
                continue
            if ctr[0] + _MAX_BATCH >= _ORDER_MASK or ctr[1] <= _MAX_BATCH:
                return X_PREP
            cand = cand0 if t == 0 else cand1
            snap = snap0 if t == 0 else snap1
            if (not cm[t, M_PRESENT] or cm[t, M_GEN] != g or cm[t, M_TAIL] != ctr[1]
                    or cm[t, M_POS] >= cand.shape[0]):
                return X_PREP
            hist = min_seq[t] % cf[C_NR_HIST]
            if st[S_SCAN_MORE]:  # the rest of the scan, through the rebuilt order
                st[S_SCAN_MORE] = 0
                budget = res[5]
            else:
                res[:] = 0
                budget = _MAX_BATCH
            scan_list((cand, snap), cm[t, M_POS], budget, (flags, gen, lru),
                      (nr_pages, nr_listed, prot[hist, t], ctr),
                      (g, t, tier, cf[C_TWO_STEP] != 0, cf[C_REFS_FLAGS], cf[C_SHIFT],
                       cf[C_GFP_IO] != 0),
                      (out, wb, res))
            scanned, isolated, n_out, pos, n_wb, remaining = (
                res[0], res[1], res[2], res[3], res[4], res[5])
            cm[t, M_POS] = pos
            cm[t, M_TAIL] = ctr[1]
            if res[6]:  # the cached order ran out first: rebuilt, the scan goes on
                st[S_SCAN_MORE] = 1
                cm[t, M_POS] = cand.shape[0]
                return X_PREP
            st[S_NR_SCANNED] += scanned
            st[S_PGSCAN + t] += isolated
            st[S_SCAN_RES] = scanned if isolated or not remaining else 0
            st[S_NOUT] = n_out
            st[S_PHASE] = PH_POSTSCAN
            if n_wb:
                st[S_NWB] = n_wb
                st[S_WB_PENDING] = 1
                return X_WB
        elif ph == PH_POSTSCAN:
            if st[S_SCAN_RES]:
                st[S_ISO_SCANNED] = st[S_SCAN_RES]
                st[S_PHASE] = PH_ISOLATED
            else:
                st[S_TYPE] = 1 - st[S_TYPE]
                st[S_ATTEMPT] += 1
                st[S_PHASE] = PH_SCAN
        elif ph == PH_ISOLATED:
            scanned = st[S_ISO_SCANNED] + (1 if _inc_min_seq(lv, cf) else 0)
            if _min_evictable(min_seq, sw) + 2 > max_seq:
                scanned = 0
            st[S_ISO_SCANNED] = scanned
            if not st[S_NOUT]:
                st[S_DELTA] = scanned
                st[S_PHASE] = PH_AFTER
                continue
            if st[S_TYPE] == 0:
                st[S_EVICTED_ANON] = 1
            st[S_PHASE] = PH_SHRINK
        elif ph == PH_SHRINK:
            n = st[S_NOUT]
            fast = _batch_is_fast(folios, procs, cf, out, n, pinned, owner,
                                  cf[C_SWCAP] - st[S_SWUSED])
            if not fast and cf[C_KEEP_OK] and not cf[C_PMD_READY]:
                return X_PMD  # the PMDs and VMAs of several tasks, packed on demand
            if not fast and not keep_ok(folios, procs, pmd, cf, out, n, owner, vrow,
                                        cf[C_SWCAP] - st[S_SWUSED], ctr):
                return X_SHRINK
            if st[S_NFREED] + n > freed.shape[0] or 2 * (st[S_NBLOOM] + n) > bloom.shape[0]:
                return X_FLUSH
            if st[S_SWNFREE] < n and st[S_SWREST]:
                st[S_SWWANT] = n  # more of the device's free slots than the loop was given
                return X_FLUSH
            fresh = n - min(n, st[S_SWNFREE])
            if st[S_SWNEXT] + fresh > swap[0].shape[0]:
                st[S_GROW] = st[S_SWNEXT] + fresh
                return X_GROW
            if fast:
                nr = _fast_shrink(folios, lv, procs, swap, cf, st, out, n, owner, freed)
            else:
                nr = keep_shrink(folios, lv, procs, pmd, swap, pinned, cf, st, ctr, n, bufs)
                st[S_NKEEP] += 1
            if nr:
                chunks[st[S_NCHUNKS]] = st[S_NFREED]
                st[S_NCHUNKS] += 1
            st[S_PGSTEAL + st[S_TYPE]] += nr
            st[S_DELTA] = st[S_ISO_SCANNED]
            st[S_PHASE] = PH_AFTER
        else:  # PH_AFTER: the rest of try_to_shrink_lruvec()'s loop body
            delta = st[S_DELTA]
            if not delta:
                st[S_RET] = 0
                return X_DONE
            st[S_SCANNED] += delta
            st[S_PHASE] = PH_START
            if st[S_SCANNED] >= st[S_NR_TO_SCAN]:
                st[S_RET] = 0
                return X_DONE
            goal = st[S_NR_RECLAIMED] >= cf[C_NR_TO_RECLAIM]
            if cf[C_RULES_6_1] and not cf[C_KSWAPD]:
                if max_seq - st[S_SEQ] > 1 or (goal and st[S_EVICTED_ANON]):
                    st[S_RET] = 0
                    return X_DONE
                if not cf[C_ROOT]:
                    continue
            if (cf[C_ROOT] or cf[C_ABORT_AT_GOAL]) and goal:
                st[S_RET] = 0
                return X_DONE
