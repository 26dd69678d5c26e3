"""Charging pages to memcgs under `memory.max`, and allocation with reclaim.

`try_charge` is the memcg side (mm/memcontrol.c: try_charge_memcg()): a charge that
would push a memcg (or an ancestor) over `memory.max` first reclaims from that
memcg, retrying up to MAX_RECLAIM_RETRIES times without progress, then runs the
memcg OOM killer. `alloc_pages_reclaim` is the node side: an allocation that
finds no free page runs global reclaim (with the min_ttl check) and finally the
global OOM killer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.memory import OutOfMemory
from mglru.paths.reclaim import (
    MAX_RECLAIM_RETRIES,
    MemcgOom,
    balance_pgdat,
    shrink_node,
    try_to_free_mem_cgroup_pages,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.memcg import MemCgroup
    from mglru.mm.process import Process

__all__ = ["try_charge", "charge_after_reclaim", "alloc_pages_reclaim", "limited"]


def _over_limit(memcg: MemCgroup, nr: int) -> MemCgroup | None:
    m: MemCgroup | None = memcg
    while m is not None:
        if m.memory_max is not None and m.nr_charged + nr > m.memory_max:
            return m
        m = m.parent
    return None


def limited(memcg: MemCgroup) -> bool:
    """Whether any ancestor (or the memcg) has a memory.max."""
    m: MemCgroup | None = memcg
    while m is not None:
        if m.memory_max is not None:
            return True
        m = m.parent
    return False


def try_charge(k: SimKernel, memcg: MemCgroup, nr: int, task: Process | None,
               retries: int = MAX_RECLAIM_RETRIES) -> None:
    """Make room for `nr` pages in `memcg` (the caller then charges them).

    Raises:
        MemcgOom: the OOM killer chose the charging task, or nothing could be freed.
    """
    while (over := _over_limit(memcg, nr)) is not None:
        over.nr_max_events += 1
        excess = over.nr_charged + nr - over.memory_max
        reclaimed = try_to_free_mem_cgroup_pages(k, over, excess)
        if _over_limit(memcg, nr) is None:
            return
        if reclaimed:
            continue
        if retries:
            retries -= 1
            continue
        victim = k.oom_kill("memory.max", over)
        over.nr_oom_events += 1
        if victim is None or victim is task:
            raise MemcgOom(f"memcg {over.path} is over memory.max and nothing is reclaimable")
        retries = MAX_RECLAIM_RETRIES


def charge_after_reclaim(k: SimKernel, memcg: MemCgroup, nr: int, task: Process | None,
                         reclaimed: int) -> None:
    """The rest of try_charge() once its first reclaim (run by a stream's compiled
    reclaim) returned `reclaimed` pages.

    Raises:
        MemcgOom: as try_charge().
    """
    if _over_limit(memcg, nr) is None:
        return
    try_charge(k, memcg, nr, task, MAX_RECLAIM_RETRIES if reclaimed else MAX_RECLAIM_RETRIES - 1)


def alloc_pages_reclaim(k: SimKernel, nid: int, n: int,
                        task: Process | None) -> npt.NDArray[np.int64]:
    """alloc_pages() that reclaims (and at worst OOM-kills) when memory runs out.

    An allocation that leaves its node below the low watermark wakes kswapd
    (mm/page_alloc.c: __alloc_pages_slowpath() -> wake_all_kswapds()); kswapd
    runs at once, after the allocation, as it would right after it on another CPU.
    """
    pfns = _alloc_or_reclaim(k, nid, n, task)
    node = k.mem.nodes[nid]
    if k.cfg.kswapd and node.nr_free < node.wmark_low:
        balance_pgdat(k, nid)
        if task is not None and not task.alive:  # kswapd's min_ttl OOM chose the task
            k.mem.free_pages(pfns)
            raise OutOfMemory("the OOM killer (min_ttl) chose the allocating task")
    return pfns


def _alloc_or_reclaim(k: SimKernel, nid: int, n: int,
                      task: Process | None) -> npt.NDArray[np.int64]:
    """Allocate, reclaiming directly (and at worst OOM-killing) when memory runs out."""
    for attempt in range(3):
        try:
            return k.mem.alloc_pages(nid, n)
        except OutOfMemory:
            need = n - sum(node.nr_free for node in k.mem.nodes)
            reclaimed = shrink_node(k, nid, need)
            if task is not None and not task.alive:
                raise  # the OOM killer (min_ttl) chose the allocating task itself
            if reclaimed >= need:
                continue
            if attempt:
                victim = k.oom_kill("out of memory", None)
                if victim is None or victim is task:
                    raise
    return k.mem.alloc_pages(nid, n)
