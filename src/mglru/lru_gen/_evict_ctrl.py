"""The controls of the compiled eviction loop: PID, scan budget, min_seq (mm/vmscan.c).

Kernel: mm/vmscan.c: get_type_to_scan(), get_tier_idx(), read_ctrl_pos(),
should_run_aging(), get_nr_to_scan(), try_to_inc_min_seq(), reset_ctrl_pos().
The Python originals are in `lru_gen.pid`, `lru_gen.eviction` and `lru_gen.aging`;
these compiled twins take the lruvec as the `lv` tuple and the configuration as
the `cf` array of `_evict_kernel.evict_loop`, and must stay their exact equals
(tests/eviction/test_evict_compiled.py).

Future optimizations:
1. none pending: a few dozen integer operations per batch.
"""

from __future__ import annotations

from numba import njit

from mglru.lru_gen._evict_layout import (
    C_INDEPENDENT,
    C_KSWAPD,
    C_MAX_SEQ,
    C_MEMORY_MIN,
    C_NR_HIST,
    C_ON_THREE,
    C_ONLINE,
    C_PRIORITY,
    C_RULES_6_1,
    C_SHIFT,
    C_SWAPPINESS,
    C_UNPROTECTED,
    S_CHARGED,
    S_FREED,
)

_ANON_ONLY = 201  # SWAPPINESS_ANON_ONLY
_DEF_PRIORITY = 12
_BATCH = 64  # MIN_LRU_BATCH
_PID_LIMIT = 1 << 26  # beyond it the controller's products could overflow int64


@njit(cache=True, nogil=True, _nrt=False)
def _evictable(t, swappiness):
    return swappiness != 0 if t == 0 else swappiness != _ANON_ONLY


@njit(cache=True, nogil=True, _nrt=False)
def _pos(lv, cf, t, lo, hi):
    """read_ctrl_pos(): (refaulted, total) of tiers [lo, hi) of type t."""
    _nr_pages, _nr_listed, avg_ref, avg_tot, prot, evicted, refaulted, min_seq = lv
    hist = min_seq[t] % cf[C_NR_HIST]
    shift = cf[C_SHIFT]
    r = 0
    tot = 0
    for i in range(lo, hi):
        r += avg_ref[t, i] + refaulted[hist, t, i]
        tot += avg_tot[t, i] + evicted[hist, t, i]
        if i >= shift:
            tot += prot[hist, t, i - shift]
    return r, tot


@njit(cache=True, nogil=True, _nrt=False)
def _positive(sp_r, sp_t, sp_g, pv_r, pv_t, pv_g):
    return pv_r < _BATCH or pv_r * (sp_t + _BATCH) * sp_g <= (sp_r + 1) * pv_t * pv_g


@njit(cache=True, nogil=True, _nrt=False)
def _pid_small(lv, cf):
    """Whether every controller input is small enough for int64 arithmetic."""
    for t in range(2):
        r, tot = _pos(lv, cf, t, 0, 4)
        if r >= _PID_LIMIT or tot >= _PID_LIMIT:
            return False
    return True


@njit(cache=True, nogil=True, _nrt=False)
def _type_to_scan(lv, cf):
    sw = cf[C_SWAPPINESS]
    if sw <= 1:
        return 1
    if sw >= 200:
        return 0
    sp_r, sp_t = _pos(lv, cf, 0, 0, 4)
    pv_r, pv_t = _pos(lv, cf, 1, 0, 4)
    return 1 if _positive(sp_r, sp_t, sw, pv_r, pv_t, 200 - sw) else 0


@njit(cache=True, nogil=True, _nrt=False)
def _tier_idx(lv, cf, t):
    sp_r, sp_t = _pos(lv, cf, t, 0, 1)
    tier = 1
    while tier < 4:
        pv_r, pv_t = _pos(lv, cf, t, tier, tier + 1)
        if not _positive(sp_r, sp_t, 2, pv_r, pv_t, 3):
            break
        tier += 1
    return tier - 1


@njit(cache=True, nogil=True, _nrt=False)
def _min_evictable(min_seq, sw):
    m = -1
    for t in range(2):
        if _evictable(t, sw) and (m < 0 or min_seq[t] < m):
            m = min_seq[t]
    return m


@njit(cache=True, nogil=True, _nrt=False)
def _should_run_aging(lv, cf, on_three):
    nr_pages, _nl, _a, _b, _c, _d, _e, min_seq = lv
    sw = cf[C_SWAPPINESS]
    max_seq = cf[C_MAX_SEQ]
    m = _min_evictable(min_seq, sw)
    if m + 2 > max_seq:
        return True, 0
    size = young = old = 0
    for t in range(2):
        if not _evictable(t, sw):
            continue
        for seq in range(min_seq[t], max_seq + 1):
            n = max(nr_pages[seq % 4, t], 0)
            size += n
            if seq == max_seq:
                young += n
            elif seq + 2 == max_seq:
                old += n
    if m + 2 < max_seq:
        return False, size
    if on_three:
        return True, size
    return young * 2 > size or old * 4 < size, size


@njit(cache=True, nogil=True, _nrt=False)
def _nr_to_scan(lv, cf, st):
    """get_nr_to_scan() without aging: (nr, False), or (0, True) where it would age."""
    if (not cf[C_UNPROTECTED] and cf[C_MEMORY_MIN]
            and st[S_CHARGED] - st[S_FREED] <= cf[C_MEMORY_MIN]):
        return -1, False
    prio = cf[C_PRIORITY]
    if cf[C_RULES_6_1]:
        need, size = _should_run_aging(lv, cf, False)
        nr = size >> prio if cf[C_ONLINE] else size
        if not need:
            return nr, False
        if prio != _DEF_PRIORITY:
            if cf[C_KSWAPD]:
                return 0, False
            return 0, True
        ok = _min_evictable(lv[7], cf[C_SWAPPINESS]) + 2 <= cf[C_MAX_SEQ]
        return (nr if ok else 0), False
    success, nr = _should_run_aging(lv, cf, cf[C_ON_THREE] != 0)
    if nr and not cf[C_ONLINE]:
        return nr, False
    if not success or prio == _DEF_PRIORITY:
        return nr >> prio, False
    return 0, True


@njit(cache=True, nogil=True, _nrt=False)
def _reset_carryover(lv, cf, t):
    """reset_ctrl_pos(carryover=True) of a type whose min_seq is about to advance."""
    _np, _nl, avg_ref, avg_tot, prot, evicted, refaulted, min_seq = lv
    nr_hist = cf[C_NR_HIST]
    shift = cf[C_SHIFT]
    hist = min_seq[t] % nr_hist
    for tier in range(4):
        p = prot[hist, t, tier - shift] if tier >= shift else 0
        avg_ref[t, tier] = (avg_ref[t, tier] + refaulted[hist, t, tier]) // 2
        avg_tot[t, tier] = (avg_tot[t, tier] + p + evicted[hist, t, tier]) // 2
        if nr_hist == 1:
            refaulted[hist, t, tier] = 0
            evicted[hist, t, tier] = 0
            if tier >= shift:
                prot[hist, t, tier - shift] = 0


@njit(cache=True, nogil=True, _nrt=False)
def _inc_min_seq(lv, cf):
    """try_to_inc_min_seq(): advance min_seq over empty generations."""
    nr_listed = lv[1]
    min_seq = lv[7]
    sw = cf[C_SWAPPINESS]
    max_seq = cf[C_MAX_SEQ]
    ms0 = min_seq[0]
    ms1 = min_seq[1]
    for t in range(2):
        if not _evictable(t, sw):
            continue
        m = min_seq[t]
        while m + 2 <= max_seq:
            if nr_listed[m % 4, t]:
                break
            m += 1
        if t == 0:
            ms0 = m
        else:
            ms1 = m
    if cf[C_INDEPENDENT]:
        if 0 < sw <= 200:
            s = max_seq - 2
            if ms0 > s and ms1 < s:
                ms0 = s
            elif ms1 > s and ms0 < s:
                ms1 = s
    elif sw:
        ms0 = min(ms0, ms1)
        ms1 = max(ms0, min_seq[1])
    success = False
    for t in range(2):
        if not _evictable(t, sw):
            continue
        new = ms0 if t == 0 else ms1
        if new <= min_seq[t]:
            continue
        _reset_carryover(lv, cf, t)
        min_seq[t] = new
        success = True
    return success
