"""Reclaim entry points: memcg reclaim, global reclaim and kswapd's min_ttl check.

mm/vmscan.c: try_to_free_mem_cgroup_pages(), shrink_node(), lru_gen_age_node().
A memcg over `memory.max` reclaims from itself (priorities 12..0) before a
charge succeeds, and OOM-kills a task of the memcg if that fails
(`mglru.paths.charge`); a node out of free pages runs `lru_gen_age_node` (the
min_ttl check, which may signal OOM) and then global reclaim over every memcg,
round robin (the memcg LRU of lru_gen_rotate_memcg() is not modelled).

kswapd (mm/vmscan.c: kswapd(), balance_pgdat()): an allocation that would take
its node below the low watermark wakes it; it reclaims from every memcg on
the node until free pages reach the high watermark. The model has no
concurrency, so kswapd runs to completion at its wake-up, before the
allocation that woke it; its scans and steals count as kswapd's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mglru.lru_gen.aging import type_is_evictable
from mglru.lru_gen.eviction import ScanControl, get_swappiness, try_to_shrink_lruvec
from mglru.lru_gen.helpers import DEF_PRIORITY

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.memcg import MemCgroup

__all__ = ["try_to_free_mem_cgroup_pages", "finish_memcg_reclaim", "shrink_node",
           "lru_gen_age_node", "MemcgOom", "balance_pgdat", "MAX_RECLAIM_RETRIES",
           "SWAP_CLUSTER_MAX"]

MAX_RECLAIM_RETRIES = 16
SWAP_CLUSTER_MAX = 32


class MemcgOom(MemoryError):
    """A charge could not be satisfied: the memcg OOM killer ran (see k.oom_events)."""


def try_to_free_mem_cgroup_pages(k: SimKernel, memcg: MemCgroup, nr_pages: int,
                                 swappiness: int | None = None, proactive: bool = False) -> int:
    """Reclaim from a memcg subtree, priorities 12 down to 0. Returns pages reclaimed."""
    sc = ScanControl(nr_to_reclaim=max(nr_pages, SWAP_CLUSTER_MAX), proactive=proactive,
                     swappiness=swappiness, priority=DEF_PRIORITY, target=memcg)
    k.reclaim_walk = None
    return _memcg_rounds(k, memcg, sc)


def finish_memcg_reclaim(k: SimKernel, memcg: MemCgroup, sc: ScanControl) -> int:
    """The rest of a reclaim of a memcg with one lruvec and no child, whose shrink at
    `sc.priority` just ended (a stream's compiled reclaim began it). Returns pages reclaimed."""
    if sc.nr_reclaimed >= sc.nr_to_reclaim:
        return sc.nr_reclaimed
    sc.priority -= 1
    return _memcg_rounds(k, memcg, sc)


def _memcg_rounds(k: SimKernel, memcg: MemCgroup, sc: ScanControl) -> int:
    """try_to_free_mem_cgroup_pages()'s rounds, from priority `sc.priority` down."""
    # 6.1's shrink_node_memcgs() walks the whole subtree each round; later ones bail
    # out of the walk once the goal is met (mm/vmscan.c 6.1 and 6.12)
    whole_rounds = k.cfg.reclaim_rules_6_1
    while sc.priority >= 0:
        for mc in memcg.iter_preorder():
            for lruvec in mc.lruvecs:
                try_to_shrink_lruvec(k, lruvec, sc)
            if not whole_rounds and sc.nr_reclaimed >= sc.nr_to_reclaim:
                return sc.nr_reclaimed
        if sc.nr_reclaimed >= sc.nr_to_reclaim:
            return sc.nr_reclaimed
        sc.priority -= 1
    return sc.nr_reclaimed


def lru_gen_age_node(k: SimKernel, nid: int) -> bool:
    """kswapd's min_ttl check (mm/vmscan.c: lru_gen_age_node()). True if OOM should be invoked."""
    if not k.min_ttl or not k.caps.lru_gen_enabled():
        return False
    for lruvec in (m.lruvecs[nid] for m in k.memcgs.root.iter_preorder()):
        swappiness = get_swappiness(k, lruvec)
        memcg = lruvec.memcg
        if memcg.parent is not None and memcg.nr_charged <= memcg.memory_min:
            continue  # mem_cgroup_below_min(NULL, memcg): protected, not reclaimable
        total = sum(lruvec.nr_pages_of_seq(s, t) for t in (0, 1)
                    if type_is_evictable(t, swappiness)
                    for s in range(lruvec.min_seq[t], lruvec.max_seq + 1))
        if not total >> DEF_PRIORITY:
            continue
        seq = min(lruvec.min_seq[t] for t in (0, 1) if type_is_evictable(t, swappiness))
        birth = lruvec.timestamps[seq % 4]
        if k.jiffies - birth > k.min_ttl:  # time_is_before_jiffies(birth + min_ttl)
            return False
    return True


def shrink_node(k: SimKernel, nid: int, nr_pages: int) -> int:
    """Global reclaim for an allocation on node `nid`: min_ttl check, then all memcgs."""
    if lru_gen_age_node(k, nid):
        k.oom_kill("min_ttl", None)
        return 0
    sc = ScanControl(nr_to_reclaim=max(nr_pages, SWAP_CLUSTER_MAX), root_reclaim=True)
    return _shrink_node_memcgs(k, nid, sc, lambda: sc.nr_reclaimed >= sc.nr_to_reclaim)


def _shrink_node_memcgs(k: SimKernel, nid: int, sc: ScanControl, done) -> int:  # noqa: ANN001
    """Priorities 12..0 over every memcg's lruvec on `nid`, round robin, until `done()`."""
    k.reclaim_walk = None
    while sc.priority >= 0 and not done():
        for memcg in k.memcgs.root.iter_preorder():
            try_to_shrink_lruvec(k, memcg.lruvecs[nid], sc)
            if done():
                break
        sc.priority -= 1
    return sc.nr_reclaimed


def balance_pgdat(k: SimKernel, nid: int) -> int:
    """kswapd on node `nid`: reclaim until free pages reach the high watermark.

    Returns pages reclaimed. Like kswapd_age_node(), it first runs the min_ttl
    check, which may invoke the OOM killer instead (mm/vmscan.c, MGLRU part).
    """
    node = k.mem.nodes[nid]
    if node.nr_free >= node.wmark_high:
        return 0
    if lru_gen_age_node(k, nid):
        k.oom_kill("min_ttl", None)
        return 0
    need = node.wmark_high - node.nr_free
    sc = ScanControl(nr_to_reclaim=max(need, SWAP_CLUSTER_MAX), root_reclaim=True, kswapd=True)
    return _shrink_node_memcgs(k, nid, sc, lambda: node.nr_free >= node.wmark_high)
