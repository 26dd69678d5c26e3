"""The page-table walk of aging: `walk_mm` and the VMA filter.

Kernel: mm/vmscan.c: walk_mm() and walk_*_range(); v4 2/7.

Mechanism: `walk_mm` takes an mm's page-table rows in address order, keeps the
address ranges of VMAs that `should_skip_vma` lets through (coalescing is
implicit: a PTE table shared by several VMAs is visited once, covering all of
them, as `get_next_vma` arranges in the kernel), and hands them to the compiled
`walk_pmd_range` (through `walk_rows`). Secondary MMUs are seen through the
segments each notifier subscriber exports (`aging_segments`), see `_walk_kernel`.

The walk resumes per PUD (1 GiB of rows) when the timing model asks for steps
(`rows_per_step`); the functional result is the same as one pass because
deltas are applied once per step, under what the kernel calls the LRU lock.

Future optimizations:
1. cache the walk ranges per mm until its VMAs change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen._array_list import append_array, new_array_list
from mglru.lru_gen._walk_kernel import NR_SEC_STATS, walk_rows
from mglru.lru_gen._walk_state import Folios, PageTable, SecondaryMmu, WalkArgs, new_scratch
from mglru.lru_gen.helpers import (
    LRU_REFS_FLAGS,
    LRU_REFS_FLAGS_V6_10,
    MAX_NR_GENS,
    NR_MM_STATS_ALL,
    filter_gen_from_seq,
)
from mglru.mm.memcg import MAX_SWAPPINESS
from mglru.mm.page import PAGE_SHIFT
from mglru.mm.process import (
    VM_EXEC,
    VM_HUGETLB,
    VM_LOCKED,
    VM_RAND_READ,
    VM_READ,
    VM_SEQ_READ,
    VM_SPECIAL,
    VM_WRITE,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.process import Mm, Vma
    from mglru.presets import Rules

__all__ = ["MmWalk", "walk_mm", "should_skip_vma", "vma_has_recency"]

_EMPTY_FILTER = np.zeros(1, np.uint64)
_EMPTY_SPTES = np.zeros(1, np.uint8)


@dataclass(slots=True)
class MmWalk:
    """`lru_gen_mm_walk`: one reclaimer's walk state. include/linux/mmzone.h."""

    lruvec: Lruvec
    seq: int
    swappiness: int
    force_scan: bool
    mm_stats: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros(NR_MM_STATS_ALL, np.int64))
    nr_pages: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros((MAX_NR_GENS, 2), np.int64))
    batched: int = 0
    #: mms walked and rows visited, for the timing model
    nr_mms: int = 0
    nr_rows: int = 0


def vma_has_recency(vma: Vma) -> bool:
    """No VM_SEQ_READ / VM_RAND_READ hint and no FMODE_NOREUSE file."""
    if vma.flags & (VM_SEQ_READ | VM_RAND_READ):
        return False
    return not (vma.file is not None and vma.file.noreuse)


def should_skip_vma(vma: Vma, swappiness: int) -> bool:
    """The VMA filter of the aging walk. mm/vmscan.c: should_skip_vma()."""
    if not vma.flags & (VM_READ | VM_WRITE | VM_EXEC):
        return True
    if vma.flags & VM_HUGETLB:
        return True
    if not vma_has_recency(vma):
        return True
    if vma.flags & (VM_LOCKED | VM_SPECIAL):
        return True
    if vma.file is None:
        return swappiness == 0
    if vma.file.unevictable:
        return True
    if vma.file.shmem:
        return swappiness == 0
    if swappiness > MAX_SWAPPINESS:
        return True
    return not vma.file.has_read_folio


def _walk_ranges(mm: Mm, swappiness: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    keep = [v for v in mm.vmas if not should_skip_vma(v, swappiness)]
    start = np.array([v.start >> PAGE_SHIFT for v in keep], np.int64)
    end = np.array([v.end >> PAGE_SHIFT for v in keep], np.int64)
    return start, end


_NO_SEGMENTS: list = []


def _segments(subs: list) -> tuple:
    """Flatten the subscribers' aging segments for the compiled walk."""
    found: list = []
    rows: list[tuple[int, int, int, int, int]] = []
    for sub_i, sub in enumerate(subs):
        for vpn0, vpn1, gfn0, sptes in sub.aging_segments():
            found.append(sptes)
            rows.append((vpn0, vpn1, gfn0, len(rows), sub_i))
    if not rows:
        # NOTE: building a typed list costs about 0.25 ms; with no segment the walk
        # never reads it, so one built once serves every walk
        if not _NO_SEGMENTS:
            _NO_SEGMENTS.append(new_array_list(_EMPTY_SPTES))
        arrays = _NO_SEGMENTS[0]
    else:
        arrays = new_array_list(found[0])
        for sptes in found[1:]:
            append_array(arrays, sptes)
    rows.sort()
    cols = np.array(rows, np.int64).reshape(-1, 5)
    return (arrays, cols[:, 0].copy(), cols[:, 1].copy(), cols[:, 2].copy(),
            cols[:, 3].copy(), cols[:, 4].copy())


def aging_subscribers(rules: Rules, mm: Mm) -> list | None:
    """The notifier subscribers the aging walk asks about `mm`, or None to skip the mm.

    The fast-only what-if (v5) asks only subscribers that answer without locks;
    the bitmap what-if (v3) skips an mm whose secondary MMUs cannot all do so.
    """
    subs = list(mm.notifiers)
    if rules.walk_fast_only:
        return [s for s in subs if s.fast_only_capable()]
    if rules.walk_needs_all_fast and any(not s.fast_only_capable() for s in subs):
        return None
    return subs


def walk_mm(k: SimKernel, mm: Mm, walk: MmWalk, rows_per_step: int | None = None) -> None:
    """Harvest accessed bits of one mm into `walk.lruvec`'s generations. mm/vmscan.c: walk_mm()."""
    lruvec = walk.lruvec
    if walk.seq != lruvec.max_seq or mm.mmap_lock_busy:
        return
    cfg = k.cfg
    caps = k.caps
    rules = k.rules
    subs = aging_subscribers(rules, mm)
    if subs is None:
        return  # v3: an mm whose secondary MMU cannot age locklessly is not walked
    has_notifiers = bool(subs)
    if rules.walk_tests_young:
        sec_on = caps.should_walk_secondary_mmu()
    else:
        sec_on = rules.walk_clears_young_notify and has_notifiers
    nonleaf_clear = caps.should_clear_pmd_young()
    if cfg.nonleaf_young_respects_force_scan and walk.force_scan:
        nonleaf_clear = False
    if sec_on:
        nonleaf_clear = False  # a young secondary PTE is not seen in the non-leaf PMD

    # a walk that may consult secondary MMUs checks the folio's node in get_pfn_folio()
    get_pfn_checks_node = rules.walk_secondary

    st = lruvec.mm_state
    assert st is not None
    read_f = st.filters[filter_gen_from_seq(walk.seq)]
    write_f = st.filters[filter_gen_from_seq(walk.seq + 1)]
    node = k.mem.nodes[lruvec.nid]
    rng_start, rng_end = _walk_ranges(mm, walk.swappiness)
    arrays, seg_vpn0, seg_vpn1, seg_gfn0, seg_arr, seg_sub = _segments(subs if sec_on else [])
    sec_stats = np.zeros((len(subs) if sec_on else 0, NR_SEC_STATS), np.int64)
    pt = mm.pt
    rows = pt.sorted_rows()
    step = rows_per_step or max(len(rows), 1)
    mem = k.mem
    ptl_busy = np.zeros(pt.nr_rows, np.uint8)
    for vpn2 in mm.ptl_contended:
        row = pt.row_of.get(vpn2)
        if row is not None:
            ptl_busy[row] = 1
    tables = PageTable(pt.pmd_addr, pt.pmd_state, pt.pmd_flags, pt.pmd_pfn, pt.pte_pfn,
                       pt.pte_flags, ptl_busy)
    folios = Folios(mem.flags, mem.gen, mem.memcg)
    args = WalkArgs(
        node_start=node.start_pfn, node_end=node.end_pfn, memcg_id=lruvec.memcg.id,
        new_gen=lruvec.max_seq % MAX_NR_GENS, can_swap=walk.swappiness != 0,
        force_scan=walk.force_scan, nonleaf_clear=nonleaf_clear,
        get_pfn_checks_node=get_pfn_checks_node, two_step=cfg.two_step_promotion,
        refs_flags=LRU_REFS_FLAGS if cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10,
        mm_id=mm.id, rng_start=rng_start, rng_end=rng_end,
        bloom_read=read_f if read_f is not None else _EMPTY_FILTER, has_read=read_f is not None,
        bloom_write=write_f if write_f is not None else _EMPTY_FILTER,
        has_write=write_f is not None, suitable_n=8,
        contended_suitable=cfg.contended_pte_table_suitable, nr_pages=walk.nr_pages,
        mm_stats=walk.mm_stats)
    sec = SecondaryMmu(
        on=sec_on, has_notifiers=has_notifiers, test_before_clear=rules.walk_tests_young,
        clear_notify=rules.walk_clears_young_notify, batch_calls=rules.secondary_bitmap_batch,
        seg_vpn0=seg_vpn0, seg_vpn1=seg_vpn1, seg_gfn0=seg_gfn0, seg_arr=seg_arr, seg_sub=seg_sub,
        sec_stats=sec_stats)
    # a pacer (the timing layer) hands out the rows as they exist when the walk
    # gets to them, letting other tasks fault in between (see SimKernel.walk_pacer)
    pacer = getattr(k, "walk_pacer", None)
    chunks = ((rows[lo:lo + step] for lo in range(0, len(rows), step)) if pacer is None
              else pacer(mm, walk, sec_stats))
    for chunk in chunks:
        walk.batched += walk_rows(chunk, tuple(tables), tuple(folios), tuple(args), tuple(sec),
                                  arrays, tuple(new_scratch(len(sec_stats))))
        walk.nr_rows += len(chunk)
        _apply_batch(walk)
    walk.nr_mms += 1
    for sub_i, sub in enumerate(subs if sec_on else []):
        sub.account_aging(sec_stats[sub_i])


def _apply_batch(walk: MmWalk) -> None:
    """reset_batch_size(): fold the walk's page deltas into the lruvec."""
    if walk.batched or walk.nr_pages.any():
        walk.lruvec.nr_pages[:, :, 0] += walk.nr_pages
        walk.nr_pages[:] = 0
        walk.batched = 0
