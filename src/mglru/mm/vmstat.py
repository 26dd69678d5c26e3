"""Reclaim and working-set statistics: /proc/vmstat and memory.stat with the kernel's names.

Mechanism. Events are counted where the kernel counts them (MGLRU's
`scan_folios` and `evict_folios`, `lru_gen_refault`, the fault and swap paths):
globally in `k.stats` and, for memcg events, on the memcg of the lruvec in
`memcg.events`. The reclaimer decides the suffix, as `reclaimer_offset()` does:
kswapd (a node below its low watermark, `mglru.paths.reclaim.balance_pgdat`),
direct (memory.max, debugfs `-`, allocation-time global reclaim) or, from v6.15,
proactive (memory.reclaim; before v6.15 it counts as direct). There is no
khugepaged, so the _khugepaged counters stay 0. As in
the kernel, `pgsteal_<reclaimer>` and `pgscan_<reclaimer>` reach /proc/vmstat only
for global reclaim (`!cgroup_reclaim(sc)`), while `pgsteal_anon|file` and
`pgscan_anon|file` always do; `pgscan` counts isolated pages (MGLRU).

Gauges are read from the model when a file is read: the LRU sizes from the
lruvecs' generation counters (MGLRU reports its two youngest generations as
"active", include/linux/mm_inline.h: lru_gen_update_size()), unevictable pages
and the swap cache (`nr_swapcached` / `swapcached`, also counted in file pages as
the kernel does) from the per-pfn flags; `swap_ra` / `swap_ra_hit` count pages read
ahead and later found in the swap cache.

memory.stat is hierarchical (a memcg's values include its descendants') and
shows page-sized items in bytes, working-set counters and events as counts.
Both files print the subset of the kernel's keys that the model tracks, in the
kernel's order; the keys are the kernel's. Names and order
follow mm/vmstat.c and mm/memcontrol.c of v6.10-v6.16 (pgscan/pgsteal_proactive
from v6.15).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mglru.mm.page import (
    HPAGE_PMD_NR,
    PAGE_SIZE,
    PG_anon,
    PG_dirty,
    PG_head,
    PG_swapbacked,
    PG_swapcache,
    PG_tail,
    PG_unevictable,
    PG_writeback,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.eviction import ScanControl
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.memcg import MemCgroup

__all__ = ["reclaimer", "count_reclaim", "count_workingset", "count_event", "vmstat_show",
           "memory_stat_show", "TYPE_NAMES"]

#: LRU type (LRU_GEN_ANON, LRU_GEN_FILE) -> the suffix of the kernel's per-type counters
TYPE_NAMES = ("anon", "file")


def reclaimer(k: SimKernel, sc: ScanControl) -> str:
    """`reclaimer_offset()`: which pgsteal_/pgscan_ counter a reclaim counts in."""
    if sc.kswapd:
        return "kswapd"
    if sc.proactive and k.cfg.proactive_reclaim_stats:
        return "proactive"
    return "direct"


def count_event(k: SimKernel, memcg: MemCgroup | None, name: str, n: int,
                vm: bool = True) -> None:
    """Count `n` of event `name` on `memcg` (if any) and, if `vm`, in /proc/vmstat."""
    if n <= 0:
        return
    if vm:
        k.stats[name] += n
    if memcg is not None:
        memcg.events[name] += n


def count_reclaim(k: SimKernel, lruvec: Lruvec, sc: ScanControl, type_: int, what: str,
                  n: int) -> None:
    """`what` = "pgscan" (isolated) or "pgsteal" (reclaimed): n pages of `type_`."""
    if n <= 0:
        return
    item = f"{what}_{reclaimer(k, sc)}"
    count_event(k, lruvec.memcg, item, n, vm=sc.target is None)
    k.stats[f"{what}_{TYPE_NAMES[type_]}"] += n


def count_workingset(k: SimKernel, lruvec: Lruvec, what: str, type_: int, n: int) -> None:
    """workingset_{refault,activate,restore}_{anon,file}: a node (lruvec) state."""
    count_event(k, lruvec.memcg, f"workingset_{what}_{TYPE_NAMES[type_]}", n)


# -- reading -------------------------------------------------------------------------------

_WORKINGSET = tuple(f"workingset_{w}_{t}" for w in ("refault", "activate", "restore")
                    for t in TYPE_NAMES)
_RECLAIMERS = ("kswapd", "direct", "khugepaged")


def _reclaimers(k: SimKernel) -> tuple[str, ...]:
    return (*_RECLAIMERS, "proactive") if k.cfg.proactive_reclaim_stats else _RECLAIMERS


def _lru_sizes(lruvecs: Iterable[Lruvec]) -> dict[str, int]:
    """inactive/active anon/file pages, as each lruvec reports them (`Lruvec.nr_lru_pages`)."""
    out = dict.fromkeys(("inactive_anon", "active_anon", "inactive_file", "active_file"), 0)
    for lruvec in lruvecs:
        for t, (inactive, active) in enumerate(lruvec.nr_lru_pages()):
            out[f"active_{TYPE_NAMES[t]}"] += active
            out[f"inactive_{TYPE_NAMES[t]}"] += inactive
    return out


def _page_flags(k: SimKernel, memcg_ids: list[int] | None) -> dict[str, int]:
    """Per-pfn counts: unevictable, anon/file totals, shmem, dirty and writeback file pages."""
    mem = k.mem
    used = mem.memcg != 0 if memcg_ids is None else np.isin(mem.memcg, memcg_ids)
    flags = mem.flags[used]
    # a PMD folio's state lives on its head: count heads as HPAGE_PMD_NR pages
    flags = flags[(flags & PG_tail) == 0]
    nr = np.where(flags & PG_head, HPAGE_PMD_NR, 1)
    anon = (flags & PG_anon) != 0
    cached = (flags & PG_swapcache) != 0
    # NR_FILE_PAGES counts the swap cache too (mm/swap_state.c __add_to_swap_cache())
    file = ~anon | cached

    def pages(mask: np.ndarray) -> int:
        return int(nr[mask].sum())

    return {
        "anon": pages(anon),
        "file": pages(file),
        "shmem": pages(~anon & ~cached & ((flags & PG_swapbacked) != 0)),
        "swapcached": pages(cached),
        "file_dirty": pages(~anon & ~cached & ((flags & PG_dirty) != 0)),
        "file_writeback": pages(file & ((flags & PG_writeback) != 0)),
        "unevictable": pages((flags & PG_unevictable) != 0),
    }


def vmstat_show(k: SimKernel) -> str:
    """/proc/vmstat: node LRU sizes and working-set states, then the VM events."""
    lrus = _lru_sizes(lv for m in k.memcgs.root.iter_preorder() for lv in m.lruvecs)
    pages = _page_flags(k, None)
    s = k.stats
    lines = [
        ("nr_inactive_anon", lrus["inactive_anon"]), ("nr_active_anon", lrus["active_anon"]),
        ("nr_inactive_file", lrus["inactive_file"]), ("nr_active_file", lrus["active_file"]),
        ("nr_unevictable", pages["unevictable"]),
        *((name, s[name]) for name in _WORKINGSET),
        ("nr_anon_pages", pages["anon"]), ("nr_file_pages", pages["file"]),
        ("nr_dirty", pages["file_dirty"]), ("nr_writeback", pages["file_writeback"]),
        ("nr_shmem", pages["shmem"]), ("nr_swapcached", pages["swapcached"]),
        ("pswpin", s["pswpin"]), ("pswpout", s["pswpout"]),
        ("pgfault", s["pgfault"]), ("pgmajfault", s["pgmajfault"]),
        *((f"pgsteal_{r}", s[f"pgsteal_{r}"]) for r in _reclaimers(k)),
        *((f"pgscan_{r}", s[f"pgscan_{r}"]) for r in _reclaimers(k)),
        ("pgscan_anon", s["pgscan_anon"]), ("pgscan_file", s["pgscan_file"]),
        ("pgsteal_anon", s["pgsteal_anon"]), ("pgsteal_file", s["pgsteal_file"]),
        ("oom_kill", s["oom_kill"]),
        ("swap_ra", s["swap_ra"]), ("swap_ra_hit", s["swap_ra_hit"]),
    ]
    return "".join(f"{name} {value}\n" for name, value in lines)


def memory_stat_show(k: SimKernel, memcg: MemCgroup) -> str:
    """memory.stat of `memcg` and its descendants (cgroup v2 order and units)."""
    tree = list(memcg.iter_preorder())
    lrus = _lru_sizes(lv for m in tree for lv in m.lruvecs)
    pages = _page_flags(k, [m.id for m in tree])
    ev: dict[str, int] = {}
    for m in tree:
        for name, n in m.events.items():
            ev[name] = ev.get(name, 0) + n
    rec = _reclaimers(k)
    lines = [
        ("anon", pages["anon"] * PAGE_SIZE), ("file", pages["file"] * PAGE_SIZE),
        ("shmem", pages["shmem"] * PAGE_SIZE),
        ("file_dirty", pages["file_dirty"] * PAGE_SIZE),
        ("file_writeback", pages["file_writeback"] * PAGE_SIZE),
        ("swapcached", pages["swapcached"] * PAGE_SIZE),
        *((name, lrus[name] * PAGE_SIZE) for name in
          ("inactive_anon", "active_anon", "inactive_file", "active_file")),
        ("unevictable", pages["unevictable"] * PAGE_SIZE),
        *((name, ev.get(name, 0)) for name in _WORKINGSET),
        ("pgscan", sum(ev.get(f"pgscan_{r}", 0) for r in rec)),
        ("pgsteal", sum(ev.get(f"pgsteal_{r}", 0) for r in rec)),
        *((f"pgscan_{r}", ev.get(f"pgscan_{r}", 0)) for r in rec),
        *((f"pgsteal_{r}", ev.get(f"pgsteal_{r}", 0)) for r in rec),
        ("pgfault", ev.get("pgfault", 0)), ("pgmajfault", ev.get("pgmajfault", 0)),
    ]
    return "".join(f"{name} {value}\n" for name, value in lines)

