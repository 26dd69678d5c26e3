"""The Python side of a host stream's compiled memcg reclaim (`_host_reclaim`).

`reclaim_context` decides whether a charge at memory.max may reclaim inside
the compiled loop and packs what that reclaim works on: it may when the
charge's reclaim would touch exactly one lruvec through the compiled eviction
loop (the task's memcg has the only limit on its path and no child, the
machine one node, the swap device is synchronous, nothing is under writeback,
no reclaim hook is set, at most eight tasks). `continue_charge` goes on in
Python where the compiled reclaim stopped (a hand-back of the eviction loop, or
a charge still over the limit), exactly as the fault path would have gone on:
the rest of try_to_shrink_lruvec(), of try_to_free_mem_cgroup_pages()'s
priorities and of try_charge()'s retries. The loop then faults the page in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen import evict_fast
from mglru.lru_gen._evict_layout import C_NR_TO_RECLAIM, C_PRIORITY, C_SWAPPINESS, NR_STATE
from mglru.lru_gen.eviction import memcg_swappiness
from mglru.mm.vmstat import count_event
from mglru.paths.charge import charge_after_reclaim, limited
from mglru.paths.reclaim import MemcgOom, finish_memcg_reclaim
from mglru.workload._host_fault import (
    L_ACTIVE,
    L_MEMCG_ROOM,
    L_NODE_ROOM,
    L_REASON,
    L_RESUME,
    L_SWAPPINESS,
    L_X,
    NR_LIM,
    RESUME_AFTER,
    RESUME_LOOP,
    WHY_EXIT,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.memcg import MemCgroup
    from mglru.mm.memory import Node
    from mglru.mm.process import Process

__all__ = ["FAULT_BATCH", "memcg_room", "node_room", "reclaim_context", "fault_budget",
           "no_pool", "hand_back", "count_failed_fault"]

#: faults one call of the compiled loop may take (bounds `fidx` and the pages prepared)
FAULT_BATCH = 8192
#: pages the compiled loop's rooms count as "no limit"
_UNLIMITED = 1 << 62


def memcg_room(memcg: MemCgroup, cap: int = FAULT_BATCH) -> int:
    """Pages the memcg and its ancestors can still be charged before memory.max (at most cap)."""
    room = cap
    m: MemCgroup | None = memcg
    while m is not None:
        if m.memory_max is not None:
            room = min(room, m.memory_max - m.nr_charged)
        m = m.parent
    return room


def node_room(k: SimKernel, node: Node, cap: int = FAULT_BATCH) -> int:
    """Pages the node can hand out before an allocation would wake kswapd (at most cap)."""
    return min(node.nr_free - node.wmark_low, cap) if k.cfg.kswapd else cap


def _reclaims_in_loop(k: SimKernel, memcg: MemCgroup) -> bool:
    """Whether a charge of this memcg at memory.max may reclaim in the compiled loop."""
    return (evict_fast.ENABLED and k.caps.lru_gen_enabled() and memcg.memory_max is not None
            and not (memcg.parent is not None and limited(memcg.parent))
            and not memcg.children and len(k.mem.nodes) == 1 and k.reclaim_hook is None
            and not k._writeback and k.swap.bypass_ok and len(k.procs) <= 8)  # noqa: SLF001


def reclaim_context(k: SimKernel, p: Process, resume: tuple | None = None) -> tuple:
    """(run, lim, pages to prepare): the compiled loop's eviction run and rooms.

    Without compiled reclaim the rooms are the old budget (below memory.max,
    above the low watermark) and the run only gives the loop its types; with it,
    the memcg's room is exact and the run is packed now, as try_to_shrink_lruvec()
    would pack it. `resume` = (run, mode): a reclaim `hand_back` did a step of, for
    the loop to go on with at the run's priority.
    """
    memcg = p.mm.memcg
    node = k.mem.nodes[p.nid]
    lim = np.zeros(NR_LIM, np.int64)
    lruvec = memcg.lruvecs[p.nid]
    if resume is not None or _reclaims_in_loop(k, memcg):
        if resume is None:
            run = evict_fast.stream_run(k, lruvec, FAULT_BATCH, True)
        else:
            run, lim[L_RESUME] = resume
        lim[L_ACTIVE] = 1
        lim[L_MEMCG_ROOM] = memcg.memory_max - memcg.nr_charged
        lim[L_NODE_ROOM] = node_room(k, node, _UNLIMITED)
        lim[L_SWAPPINESS] = memcg_swappiness(k, memcg)  # the loop applies the swap check
        # pages beyond the memcg's room come from what the loop's reclaims free; a
        # round that runs out of prepared pages ends, and the next one prepares more
        return run, lim, max(min(lim[L_NODE_ROOM], lim[L_MEMCG_ROOM], FAULT_BATCH), 0)
    lim, npfns = fault_budget(k, p)
    return evict_fast.stream_run(k, lruvec, FAULT_BATCH, False), lim, npfns


def fault_budget(k: SimKernel, p: Process) -> tuple:
    """(lim, pages to prepare) for faults that must not reclaim: rooms that keep every
    charge below memory.max and the node above its low watermark (so neither
    try_charge() nor kswapd would run)."""
    lim = np.zeros(NR_LIM, np.int64)
    room = 0
    if k.caps.lru_gen_enabled():
        room = min(memcg_room(p.mm.memcg), node_room(k, k.mem.nodes[p.nid]))
    lim[L_MEMCG_ROOM] = lim[L_NODE_ROOM] = room
    return lim, max(room, 0)


def no_pool() -> tuple:
    """`anon_fault`'s pool of reclaimed pages when the loop does not reclaim."""
    return (np.zeros(1, np.int64), np.zeros(1, np.int64), np.zeros(NR_STATE, np.int64))


def count_failed_fault(k: SimKernel, memcg: MemCgroup, swap_in: bool) -> None:
    """What a fault counts before its charge fails (paths.fault._fault_anon_one)."""
    count_event(k, memcg, "pgfault", 1)
    if swap_in:
        count_event(k, memcg, "pgmajfault", 1)


def hand_back(k: SimKernel, p: Process, run: evict_fast._Run, lim: np.ndarray,
              swap_in: bool) -> tuple | None:
    """Go on, in Python, with the charge the compiled reclaim stopped in (`lim[L_REASON]`;
    its effects already applied by `run.flush`).

    A hand-back of the eviction loop gets its step done here (`shrink_step`), and
    the loop takes the reclaim over again: returns (run, mode) for
    `reclaim_context`. If the compiled reclaim can no longer run it (that step
    started writeback, say), or the charge is still over the limit after a whole
    reclaim, the rest is done here (try_to_shrink_lruvec(), the priorities of
    try_to_free_mem_cgroup_pages(), try_charge()'s retries): returns None.

    Raises:
        MemcgOom: as try_charge(), after counting the fault as the fault path does.
    """
    memcg = p.mm.memcg
    try:
        if lim[L_REASON] == WHY_EXIT:
            sc = run.sc
            sc.priority = int(run.cf[C_PRIORITY])
            sc.nr_to_reclaim = int(run.cf[C_NR_TO_RECLAIM])
            ret = evict_fast.shrink_step(k, run, int(run.cf[C_SWAPPINESS]), int(lim[L_X]))
            if _reclaims_in_loop(k, memcg):
                if ret is not None:  # the step ended the shrink: the loop's state anew
                    run.load()
                return run, RESUME_LOOP if ret is None else RESUME_AFTER
            if ret is None:
                evict_fast.resume_shrink(k, run, None)
            reclaimed = finish_memcg_reclaim(k, memcg, sc)
        else:  # what the whole reclaim took (`run.flush` copied it)
            reclaimed = run.sc.nr_reclaimed
        charge_after_reclaim(k, memcg, 1, p, reclaimed)
    except MemcgOom:
        count_failed_fault(k, memcg, swap_in)
        raise
    return None
