"""Compiled memcg reclaim for a fault of a host stream whose charge hits memory.max.

Kernel: mm/memcontrol.c try_charge_memcg() (one round: a memory.max event, then
reclaim), mm/vmscan.c try_to_free_mem_cgroup_pages() (priorities DEF_PRIORITY
down to 0, until SWAP_CLUSTER_MAX pages or the excess are reclaimed),
try_to_shrink_lruvec() (the compiled `_evict_kernel.evict_loop`), and
get_swappiness() as mm/vmscan.c computes it for a memcg.

Mechanism: `host_hits` calls `memcg_reclaim` when `anon_fault` finds no room
left below memory.max and the driver granted it (`lim[L_ACTIVE]`: one memcg
with a limit, no limit above it and no child, one node, a synchronous swap
device, no writeback; see `workload.host_reclaim`). It runs the reclaim on the
arrays of an eviction run the driver packed (`rc`, as `evict_fast._Run` passes
them to `evict_loop`), keeping the fault context in step: the order counter,
min_seq, and the swap slots the faults freed before it (pushed onto the free
slots reclaim takes from, as the device's free list would have them). The pages
it frees stay in its freed-page buffer, and faults take them from there first
(`_host_fault._take_pfn`), as the allocator would take the last freed chunk.
Whatever the loop hands back (aging, a list to prepare, ...) ends the call:
`lim[L_REASON]` says why, and the driver goes on in Python from that point;
so does a charge still over the limit after one reclaim (the retry loop of
try_charge_memcg()).
"""

from __future__ import annotations

from numba import njit

from mglru.lru_gen._evict_kernel import evict_loop
from mglru.lru_gen._evict_layout import (
    C_MAX_SEQ,
    C_NR_TO_RECLAIM,
    C_PRIORITY,
    C_SWAPPINESS,
    C_SWCAP,
    PH_START,
    S_ATTEMPT,
    S_DELTA,
    S_EVICTED_ANON,
    S_FREED,
    S_GROW,
    S_ISO_SCANNED,
    S_NEV,
    S_NOUT,
    S_NR_RECLAIMED,
    S_NR_TO_SCAN,
    S_NWB,
    S_PHASE,
    S_RET,
    S_SCAN_RES,
    S_SCANNED,
    S_SEQ,
    S_SWNFREE,
    S_SWUSED,
    S_SWWANT,
    S_TYPE,
    X_DONE,
)
from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.workload._host_fault import (
    L_MAXEV,
    L_MEMCG_ROOM,
    L_NODE_ROOM,
    L_REASON,
    L_RECLAIMS,
    L_RESUME,
    L_SLOTS_MOVED,
    L_SWAPPINESS,
    L_X,
    P_MIN_SEQ,
    R_FREED,
    R_HEAD,
    RESUME_AFTER,
    RESUME_LOOP,
    WHY_EXIT,
    WHY_OVER,
)

invalidate_stale(__file__, "_host_fault.py", "../lru_gen/_evict_kernel.py",
                 "../lru_gen/_scan_kernel.py", "../lru_gen/_evict_ctrl.py",
                 "../lru_gen/_evict_layout.py", "../lru_gen/_evict_keep.py",
                 "../lru_gen/_look_around_kernel.py", "../lru_gen/_list_kernel.py")

__all__ = ["memcg_reclaim"]

_DEF_PRIORITY = 12
_SWAP_CLUSTER_MAX = 32
_MIN_LRU_BATCH = 64
#: the loop's per-call state, zeroed for each try_to_shrink_lruvec()
_FRESH = (S_NR_TO_SCAN, S_SCANNED, S_TYPE, S_ATTEMPT, S_NEV, S_ISO_SCANNED, S_NOUT, S_DELTA,
          S_RET, S_NWB, S_GROW, S_SCAN_RES, S_SWWANT)


@njit(cache=True, nogil=True, _nrt=False)
def _push_fault_slots(fault, free_slots, st, lim):
    """Slots the faults freed since the last call go on top of reclaim's free slots."""
    slots, res = fault[9], fault[11]
    for i in range(lim[L_SLOTS_MOVED], res[R_FREED]):
        free_slots[st[S_SWNFREE]] = slots[i]
        st[S_SWNFREE] += 1
        st[S_SWUSED] -= 1
    lim[L_SLOTS_MOVED] = res[R_FREED]


@njit(cache=True, nogil=True, _nrt=False)
def memcg_reclaim(rc, lim, fault):
    """One round of try_charge_memcg() for a one-page charge: True if the fault may go on.

    With `lim[L_RESUME]` it goes on with a round Python took over (see module), at
    the run's priority (`cf[C_PRIORITY]`).
    False: `lim[L_REASON]` is WHY_EXIT (the loop handed back `lim[L_X]` at the run's
    priority) or WHY_OVER (still over memory.max after the whole reclaim; the pages
    it reclaimed are `st[S_NR_RECLAIMED]`).
    """
    folios, lv, caches, ctr, procs, pmd, swap, pinned, cf, st, bufs = rc
    par, res = fault[1], fault[11]
    min_seq = lv[7]
    _push_fault_slots(fault, swap[1], st, lim)
    lim[L_RECLAIMS] += 1
    mode = lim[L_RESUME]
    lim[L_RESUME] = 0
    if mode:
        prio = cf[C_PRIORITY]
    else:
        lim[L_MAXEV] += 1
        cf[C_NR_TO_RECLAIM] = max(1 - lim[L_MEMCG_ROOM], _SWAP_CLUSTER_MAX)  # the excess
        st[S_NR_RECLAIMED] = 0
        prio = _DEF_PRIORITY
    freed0 = st[S_FREED]
    while prio >= 0:
        if mode != RESUME_AFTER:
            if mode != RESUME_LOOP:  # try_to_shrink_lruvec() from its start
                # the memcg's swappiness, none with almost no swap left
                nr_free = cf[C_SWCAP] - st[S_SWUSED]
                cf[C_SWAPPINESS] = 0 if nr_free < _MIN_LRU_BATCH else lim[L_SWAPPINESS]
                cf[C_PRIORITY] = prio
                for i in _FRESH:
                    st[i] = 0
                st[S_PHASE] = PH_START
                st[S_SEQ] = cf[C_MAX_SEQ]
                st[S_EVICTED_ANON] = 0
            ctr[0] = res[R_HEAD]
            x = evict_loop(folios, lv, caches, ctr, procs, pmd, swap, pinned, cf, st, bufs)
            res[R_HEAD] = ctr[0]
            par[P_MIN_SEQ] = min_seq[0]
            par[P_MIN_SEQ + 1] = min_seq[1]
            freed = st[S_FREED] - freed0
            freed0 = st[S_FREED]
            lim[L_MEMCG_ROOM] += freed
            lim[L_NODE_ROOM] += freed
            if x != X_DONE:
                lim[L_REASON] = WHY_EXIT
                lim[L_X] = x
                return False
        mode = 0
        if st[S_NR_RECLAIMED] >= cf[C_NR_TO_RECLAIM]:
            break
        prio -= 1
    if lim[L_MEMCG_ROOM] < 1:
        lim[L_REASON] = WHY_OVER
        return False
    return True
