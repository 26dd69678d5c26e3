"""The compiled shrink of a batch that keeps folios: references, look-around, put-back.

Kernel: mm/vmscan.c: shrink_folio_list(), folio_check_references() (6.1, 6.12; the
lru_gen_set_refs() form from the v6.14 rework), lru_gen_look_around(), evict_folios()
(the put-back, move_folios_to_lru()); mm/rmap.c: folio_referenced();
include/linux/mm_inline.h: lru_gen_folio_seq(), lru_gen_add_folio(), lru_gen_del_folio();
mm/workingset.c: lru_gen_eviction().

Mechanism: for a batch whose every folio is a 4 KiB anonymous folio mapped by
exactly one PTE of a task without secondary MMUs or mlocked VMAs (`keep_ok`),
`keep_shrink` does what `eviction.reclaim_isolated` does through
`vmscan.shrink_folio_list`, in the same order: first the cold folios the batched
swap-out takes (`_shrink_batch`), then the others one by one (the pre-v6.14
"look-around marked it referenced" shortcut, folio_referenced() with
look-around and, where the version does, the target's ptep_clear_flush_young,
PG_idle/PG_young, the verdict, swap-out of what is still reclaimable), then the
put-back of the kept folios (the version's activation rule, their generation,
list order, flags and page counts). Look-around's Bloom filter inserts are
queued for Python (`bufs[6]`); nothing reads the filter during eviction.
Everything else stays with the Python path (the caller hands the batch back).

Future optimizations:
1. THP, file and multiply mapped folios, and secondary MMUs, in the same kernel.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.lru_gen._evict_layout import (
    C_HAS_BLOOM,
    C_HAS_IDLE,
    C_KEEP_OK,
    C_LA_MODE,
    C_MAX_SEQ,
    C_MEMCG_ID,
    C_NID,
    C_NODE_HI,
    C_NODE_LO,
    C_NPROCS,
    C_NR_HIST,
    C_REFS_FLAGS,
    C_RESETS_TIER,
    C_SEQ_BY_WS,
    C_SKIP_LONE,
    C_TWO_STEP,
    LA_CLEAR_FLUSH,
    S_FREED,
    S_NBLOOM,
    S_NFREED,
    S_NR_RECLAIMED,
    S_SWNEXT,
    S_SWNFREE,
    S_SWUSED,
)
from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.lru_gen._look_around_kernel import harvest_window, look_around_window
from mglru.mm.page import (
    LRU_REFS_MASK as _REFS_MASK,
    LRU_REFS_SHIFT as _REFS_SHIFT,
    LRU_REFS_WIDTH as _REFS_WIDTH,
    PMD_LEAF as _PMD_LEAF,
    PTE_DIRTY as _PTE_DIRTY,
    PTE_PRESENT as _PTE_PRESENT,
    PTE_SPECIAL as _PTE_SPECIAL,
    PTE_SWAP as _PTE_SWAP,
    PTE_YOUNG as _PTE_YOUNG,
    PG_active as _PG_active,
    PG_anon as _PG_anon,
    PG_dirty as _PG_dirty,
    PG_head as _PG_head,
    PG_lru as _PG_lru,
    PG_reclaim as _PG_reclaim,
    PG_referenced as _PG_referenced,
    PG_swapbacked as _PG_swapbacked,
    PG_swapcache as _PG_swapcache,
    PG_tail as _PG_tail,
    PG_unevictable as _PG_unevictable,
    PG_workingset as _PG_workingset,
    PG_writeback as _PG_writeback,
)
from mglru.mm.process import VM_SPECIAL as _VM_SPECIAL

invalidate_stale(__file__, "_evict_layout.py", "_look_around_kernel.py")
_LIST_SHIFT = 29
_ORDER_MASK = (1 << 29) - 1
_WINDOW = 64  # MIN_LRU_BATCH PTEs
_MAX_BATCH = 4096  # MAX_LRU_BATCH: a batch's marks come first in the scratch buffer
_NOT_4K_ANON = (_PG_head | _PG_tail | _PG_writeback | _PG_dirty | _PG_unevictable
                | _PG_swapcache)
_REFS_V6_14 = _REFS_MASK | _PG_referenced
# columns of the per-task info (see evict_fast._procs): PTEs, notifiers, VM_LOCKED,
# mm id, then where its PMD rows and VMAs start in the packed arrays, and its VMA count
_P_ROW0, _P_VMA0, _P_NVMA = 4, 5, 6


@njit(cache=True, nogil=True, inline="always")
def _pinned(pinned, pfn):
    i = np.searchsorted(pinned, pfn)
    return i < pinned.shape[0] and pinned[i] == pfn


@njit(cache=True, nogil=True, inline="always")
def shadow_of(f, ms, two_step, base):
    """lru_gen_eviction() of a 4 KiB anon folio with flags `f`: (shadow entry, tier).

    `ms` is the anon min_seq, `base` the shadow's memcg, node and marker bits.
    """
    field = (f & _REFS_MASK) >> _REFS_SHIFT
    ws = 1 if f & _PG_workingset else 0
    if two_step:
        refs = field + 1 if f & _PG_referenced else 0
        if ws:
            tier = 3
        elif refs <= 1:
            tier = 0
        elif refs == 2:
            tier = 1
        else:
            tier = 2
    else:
        refs = field + ws
        tier = 0 if refs == 0 else (1 if refs == 1 else (2 if refs <= 3 else 3))
        ws = 1 if refs > 0 else 0
    token = (ms << _REFS_WIDTH) | max(refs - 1, 0)
    return (token << 26) | base | ws, tier


@njit(cache=True, nogil=True, inline="always")
def _take_slot(free_slots, st):
    """A swap slot: the device's free list first (from its end), as SwapDevice.alloc."""
    if st[S_SWNFREE]:
        st[S_SWNFREE] -= 1
        return free_slots[st[S_SWNFREE]]
    st[S_SWNEXT] += 1
    return st[S_SWNEXT] - 1


@njit(cache=True, nogil=True, inline="always")
def _only_mapping(hint, pflags, ppfn, pinfo, pmd, nprocs, pfn):
    """(task, vma row) of the one PTE mapping `pfn`, or (-1, -1).

    Both ways the Python path finds mappings must agree (the rmap hint probed in
    every task as `_shrink_batch` does, and `rmap.folio_mappings`), and the task
    must have no MMU notifier and no VM_LOCKED VMA.
    """
    pst, ppmd, paddr, vmas = pmd
    h = np.int64(hint[pfn])
    row = h // 512
    owner = -1
    for p in range(nprocs):
        if h >= pinfo[p, 0]:
            continue
        pf = np.int64(pflags[p][h])
        same = np.int64(ppfn[p][h]) == pfn
        probe = same and pf & (_PTE_PRESENT | _PTE_SPECIAL) == _PTE_PRESENT
        r = pinfo[p, _P_ROW0] + row
        if pst[r] == _PMD_LEAF:
            if probe or (h % 512 == 0 and np.int64(ppmd[r]) == pfn):
                return -1, -1
            continue
        if same and (pf & _PTE_PRESENT) != 0:
            if not probe or owner >= 0:
                return -1, -1
            owner = p
    if owner < 0 or pinfo[owner, 1] or pinfo[owner, 2]:
        return -1, -1
    addr = paddr[pinfo[owner, _P_ROW0] + row] + ((h % 512) << 12)
    v0 = pinfo[owner, _P_VMA0]
    for j in range(v0, v0 + pinfo[owner, _P_NVMA]):
        if vmas[j, 0] <= addr < vmas[j, 1]:
            return owner, j
    return -1, -1


@njit(cache=True, nogil=True)
def keep_ok(folios, procs, pmd, cf, out, n, owner, vrow, swap_free, ctr):
    """Whether `keep_shrink` can take the batch (see the module); fills owner/vrow."""
    flags, _gen, _lru, memcg, _idle, hint = folios
    pflags, ppfn, pinfo = procs
    if not cf[C_KEEP_OK] or n > swap_free or ctr[0] + (_WINDOW + 1) * n > _ORDER_MASK:
        return False
    both = _PG_anon | _PG_swapbacked
    nprocs = cf[C_NPROCS]
    for i in range(n):
        pfn = out[i]
        f = np.int64(flags[pfn])
        if f & both != both or f & _NOT_4K_ANON or np.int64(memcg[pfn]) != cf[C_MEMCG_ID]:
            return False
        p, j = _only_mapping(hint, pflags, ppfn, pinfo, pmd, nprocs, pfn)
        if p < 0:
            return False
        owner[i] = p
        vrow[i] = j
    return True


@njit(cache=True, nogil=True, inline="always")
def _seq(min_seq, cf, f):
    """lru_gen_folio_seq() when not reclaiming (see folio.lru_gen_folio_seq)."""
    max_seq = cf[C_MAX_SEQ]
    ms = min_seq[0 if f & _PG_swapbacked else 1]
    anon_not_sc = (f & _PG_swapbacked) != 0 and (f & _PG_swapcache) == 0
    reclaim_wb = (f & _PG_reclaim) != 0 and (f & (_PG_dirty | _PG_writeback)) != 0
    if not cf[C_SEQ_BY_WS]:
        if f & _PG_active:
            return max_seq
        if anon_not_sc or reclaim_wb:
            return max_seq - 1
        return ms if ms + 2 >= max_seq else ms + 1
    ws = f & _PG_workingset
    if f & _PG_active:
        seq = max_seq if ws else max_seq - 1
    elif anon_not_sc or reclaim_wb:
        seq = max_seq - 1
    else:
        seq = max_seq - 2 if ws else max_seq - 3
    return max(seq, ms)


@njit(cache=True, nogil=True, inline="always")
def _add(flags, gen, lru, nr_pages, nr_listed, min_seq, cf, ctr, pfn):
    """lru_gen_add_folio() of one folio, not reclaiming: at its list's head."""
    f = np.int64(flags[pfn])
    if f & _PG_unevictable:
        return
    g = _seq(min_seq, cf, f) % 4
    gen[pfn] = g + 1
    ctr[0] += 1
    lru[pfn] = ((g + 1) << _LIST_SHIFT) | ctr[0]
    new = (f & ~_PG_active) | _PG_lru
    if cf[C_RESETS_TIER] and f & _PG_active:
        new &= ~(_REFS_MASK | _PG_referenced)
    flags[pfn] = new
    t = 0 if f & _PG_swapbacked else 1
    nr_pages[g, t] += 512 if f & _PG_head else 1
    nr_listed[g, t] += 1


@njit(cache=True, nogil=True, inline="always")
def _set_refs(flags, pfn):
    """lru_gen_set_refs(): the first sighting marks, the second activates."""
    f = np.int64(flags[pfn])
    if not f & (_PG_referenced | _PG_workingset):
        flags[pfn] = (f & ~_REFS_V6_14) | _PG_referenced
        return False
    flags[pfn] = (f & ~_REFS_V6_14) | _PG_workingset
    return True


@njit(cache=True, nogil=True)
def _harvest_refs(win_f, win_p, cand, flags, gen, lru, memcg, nr_pages, nr_listed, min_seq,
                  cf, ctr):
    """The window loop of look-around without a walk from v6.14 (look_around._harvest).

    A young neighbour is marked (lru_gen_set_refs()); on its second sighting it is
    activated: off its list and back at the head of max_seq's.
    """
    new_gen = cf[C_MAX_SEQ] % 4
    young = 0
    for i in cand:
        pfn = np.int64(win_p[i])
        head = pfn & ~np.int64(511) if flags[pfn] & _PG_tail else pfn
        if np.int64(memcg[head]) != cf[C_MEMCG_ID]:
            continue
        if cf[C_SKIP_LONE] and gen[head] == 0:
            continue
        dirty = win_f[i] & _PTE_DIRTY
        win_f[i] &= np.uint8(~_PTE_YOUNG & 0xFF)
        young += 1
        f = np.int64(flags[head])
        anon = (f & _PG_anon) != 0 and (f & _PG_swapbacked) != 0 and (f & _PG_swapcache) == 0
        if dirty != 0 and (f & _PG_dirty) == 0 and not anon:
            flags[head] = f | _PG_dirty
        old_gen = np.int64(gen[head]) - 1
        if not _set_refs(flags, head) or old_gen < 0 or old_gen == new_gen:
            continue
        # lru_gen_del_folio(), folio_activate(), lru_gen_add_folio()
        f = np.int64(flags[head])
        t = 0 if f & _PG_swapbacked else 1
        nr = 512 if f & _PG_head else 1
        nr_pages[old_gen, t] -= nr
        nr_listed[(np.int64(lru[head]) >> _LIST_SHIFT) - 1, t] -= 1
        flags[head] = (f & ~_PG_lru) | _PG_active
        gen[head] = 0
        lru[head] = 0
        _add(flags, gen, lru, nr_pages, nr_listed, min_seq, cf, ctr, head)
    return young


@njit(cache=True, nogil=True, _nrt=False)
def _look_around(task, v, folios, lv, cf, ctr, bufs, st, h, j):
    """lru_gen_look_around() on PTE `h` of `task` (its PTE bits, pfns, PMD addresses and
    mm id), in VMA `j` of the table `v`; returns referenced. `bufs`: evict_loop's."""
    ff, fp, paddr, mm_id = task
    _out, _wb, _res, _owner, _freed, _chunks, bloom, _vrow, scratch = bufs
    flags, gen, lru, memcg, _idle, _hint = folios
    nr_pages, nr_listed, _a, _b, _c, _e, _d, min_seq = lv
    mode = cf[C_LA_MODE]
    young = 0
    if not ff[h] & _PTE_YOUNG:
        return False
    if mode != LA_CLEAR_FLUSH:
        # no notifier: the target's primary bit decides (seed-v4: secondary first)
        ff[h] &= np.uint8(~_PTE_YOUNG & 0xFF)
        young = 1
    if v[j, 2] & _VM_SPECIAL:
        return True
    addr = paddr[h // 512] + ((h % 512) << 12)
    start, end = look_around_window(addr, v[j, 0], v[j, 1], _WINDOW)
    if cf[C_SKIP_LONE] and end - start == 4096:
        return True  # the PMD's span in the VMA is this page alone (never cut)
    base = h - ((addr - start) >> 12)
    n = (end - start) >> 12
    win_f = ff[base:base + n]
    win_p = fp[base:base + n]
    cand = scratch[_MAX_BATCH:_MAX_BATCH + n]
    nc = 0
    for i in range(n):
        f = np.int64(win_f[i])
        q = np.int64(win_p[i])
        if (f & (_PTE_PRESENT | _PTE_SPECIAL) == _PTE_PRESENT and f & _PTE_YOUNG
                and cf[C_NODE_LO] <= q < cf[C_NODE_HI]):
            cand[nc] = i
            nc += 1
    if cf[C_TWO_STEP]:
        young += _harvest_refs(win_f, win_p, cand[:nc], flags, gen, lru, memcg, nr_pages,
                               nr_listed, min_seq, cf, ctr)
    else:
        young += harvest_window(win_f, win_p, cand[:nc], flags, gen, memcg, nr_pages,
                                cf[C_MEMCG_ID], cf[C_SKIP_LONE] != 0, cf[C_MAX_SEQ] % 4,
                                False, False, cf[C_REFS_FLAGS])
    if cf[C_HAS_BLOOM] and young * 8 >= n:
        k = st[S_NBLOOM]
        bloom[2 * k] = mm_id
        bloom[2 * k + 1] = start >> 21
        st[S_NBLOOM] = k + 1
    return True


@njit(cache=True, nogil=True, _nrt=False)
def keep_shrink(folios, lv, procs, pmd, swap, pinned, cf, st, ctr, n, bufs):
    """shrink_folio_list() and evict_folios()'s put-back of a `keep_ok` batch (the first
    `n` of evict_loop's `bufs`' batch, owners and VMA rows).

    Returns the pages reclaimed; the freed pfns are appended to `bufs`' freed pages
    in batch order.
    """
    out, _wb, _res, owner, freed, _chunks, _bloom, vrow, scratch = bufs
    flags, gen, lru, memcg, idle, hint = folios
    nr_pages, nr_listed, _a, _b, _c, evicted, _d, min_seq = lv
    pflags, ppfn, pinfo = procs
    paddr_all, vmas = pmd[2], pmd[3]
    shadow, free_slots = swap
    two_step = cf[C_TWO_STEP]
    has_idle = cf[C_HAS_IDLE]
    ms = min_seq[0]
    hist = ms % cf[C_NR_HIST]
    sbase = (cf[C_MEMCG_ID] << 10) | (cf[C_NID] << 1) | (1 << 62)
    done = scratch[:n]
    done[:] = 0
    # the batched swap-out of cold folios (_shrink_batch) comes first, then the rest
    # one by one (shrink_folio_list()'s loop)
    for step in range(2):
        for i in range(n):
            if done[i]:
                continue
            pfn = out[i]
            p = owner[i]
            ff = pflags[p]
            h = np.int64(hint[pfn])
            if step == 0:
                if _pinned(pinned, pfn) or ff[h] & _PTE_YOUNG:
                    continue
                if not two_step and flags[pfn] & _PG_referenced:
                    continue
            elif not two_step and flags[pfn] & _PG_referenced:
                continue  # "folio_update_gen() tried to promote this page?": kept
            else:
                # folio_referenced()
                referenced = 0
                r0 = pinfo[p, _P_ROW0]
                task = (ff, ppfn[p], paddr_all[r0:r0 + pinfo[p, 0] // 512], pinfo[p, 3])
                if _look_around(task, vmas, folios, lv, cf, ctr, bufs, st, h, vrow[i]):
                    referenced += 1
                if cf[C_LA_MODE] == LA_CLEAR_FLUSH and ff[h] & _PTE_YOUNG:
                    ff[h] &= np.uint8(~_PTE_YOUNG & 0xFF)
                    referenced += 1
                if has_idle:
                    if referenced:
                        idle[pfn] &= np.uint8(0xFE)
                    if idle[pfn] & 2:
                        idle[pfn] &= np.uint8(0xFD)
                        referenced += 1
                # folio_check_references()
                keep = referenced > 0
                if two_step:
                    activate = keep and _set_refs(flags, pfn)
                else:
                    f = np.int64(flags[pfn])
                    flags[pfn] = f & ~_PG_referenced
                    if keep:
                        flags[pfn] = f | _PG_referenced
                    activate = keep and ((f & _PG_referenced) != 0 or referenced > 1)
                if activate:
                    flags[pfn] |= _PG_active
                if keep or _pinned(pinned, pfn):
                    continue
            # swap-out: lru_gen_eviction(), a slot, the swap PTE, the folio freed
            val, tier = shadow_of(np.int64(flags[pfn]), ms, two_step, sbase)
            evicted[hist, 0, tier] += 1
            slot = _take_slot(free_slots, st)
            shadow[slot] = val
            ff[h] = _PTE_SWAP
            ppfn[p][h] = slot
            flags[pfn] = 0
            gen[pfn] = 0
            lru[pfn] = 0
            memcg[pfn] = 0
            if has_idle:
                idle[pfn] = 0
            done[i] = 1
    nr = 0
    nf = st[S_NFREED]
    for i in range(n):
        if done[i]:
            freed[nf] = out[i]
            nf += 1
            nr += 1
    st[S_NFREED] = nf
    st[S_SWUSED] += nr
    st[S_FREED] += nr
    st[S_NR_RECLAIMED] += nr
    # the put-back, in shrink order: each kept folio is mapped, so none is retried
    for i in range(n):
        if done[i]:
            continue
        pfn = out[i]
        f = np.int64(flags[pfn])
        if not two_step:
            flags[pfn] = (f & ~cf[C_REFS_FLAGS]) | _PG_active
        elif _seq(min_seq, cf, f) == min_seq[0 if f & _PG_swapbacked else 1]:
            flags[pfn] = (f & ~_REFS_V6_14) | _PG_active
    for i in range(n):
        if not done[i]:
            _add(flags, gen, lru, nr_pages, nr_listed, min_seq, cf, ctr, out[i])
    return nr
