"""Tearing down mappings: munmap and exit_mmap.

Anonymous folios (and THPs) mapped only here are freed and uncharged, swap
entries release their slots, file folios stay in the page cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen.folio import lru_gen_del_folio
from mglru.mm.page import (
    HPAGE_PMD_NR,
    PAGE_SHIFT,
    PMD_LEAF,
    PMD_NONE,
    PMD_SHIFT,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_SWAP,
    PG_anon,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.process import Process, Vma

__all__ = ["exit_mmap", "unmap_vma_range"]


def _free_anon(k: SimKernel, heads: np.ndarray, nr: int) -> None:
    mem = k.mem
    if not len(heads):
        return
    on_lru = heads[mem.gen[heads] != 0]
    memcgs = mem.memcg[heads]
    for mid in np.unique(memcgs):
        memcg = k.memcgs.by_id.get(int(mid))
        part = heads[memcgs == mid]
        if memcg is None:
            continue
        memcg.charge(-len(part) * nr)
        lru_part = np.intersect1d(part, on_lru)
        for nid in np.unique(mem.pfns_to_nid(lru_part)):
            sel = lru_part[mem.pfns_to_nid(lru_part) == nid]
            lru_gen_del_folio(mem, memcg.lruvecs[int(nid)], sel, reclaiming=True)
    pfns = heads if nr == 1 else (heads[:, None] + np.arange(nr)).ravel()
    mem.free_pages(pfns.astype(np.int64))


def unmap_vma_range(k: SimKernel, p: Process, vma: Vma, start: int, end: int) -> None:
    """Zap the page tables of [start, end) inside `vma`.

    Only PMD slots that were ever populated (a PTE table, a THP or the huge
    zero page) are visited, as zap_pmd_range() skips pmd_none() entries: the
    cost follows what was touched, not the size of the mapping.
    """
    pt = p.mm.pt
    first, last = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
    base = vma.start >> PMD_SHIFT
    rows = vma.rows[first - base:last - base + 1]
    live = pt.pmd_state[rows] != PMD_NONE
    rows = rows[live]
    slots = np.arange(first, last + 1, dtype=np.int64)[live]
    leaf = rows[pt.pmd_state[rows] == PMD_LEAF]
    if len(leaf):
        heads = pt.pmd_pfn[leaf].astype(np.int64)
        _free_anon(k, heads, HPAGE_PMD_NR)
        pt.pmd_state[leaf] = PMD_NONE
        pt.pmd_flags[leaf] = 0
    vpns = ((slots[:, None] << 9) + np.arange(512, dtype=np.int64)).ravel()
    vpns = vpns[(vpns >= start >> PAGE_SHIFT) & (vpns < end >> PAGE_SHIFT)]
    idx = vma.pte_index(vpns)
    ff, fp = pt.flat_flags(), pt.flat_pfn()
    f = ff[idx]
    swapped = idx[(f & PTE_SWAP) != 0]
    if len(swapped):
        k.swap.free(fp[swapped].astype(np.int64))
    mapped = idx[(f & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT]
    pfns = fp[mapped].astype(np.int64)
    pfns = pfns[pfns >= 1024]
    anon = pfns[(k.mem.flags[pfns] & PG_anon) != 0]
    _free_anon(k, anon, 1)
    ff[idx] = 0
    fp[idx] = 0
    for sub in p.mm.notifiers:
        invalidate = getattr(sub, "invalidate_range", None)
        if invalidate is not None:
            invalidate(start, end)


def exit_mmap(k: SimKernel, p: Process) -> None:
    """Unmap every VMA of a task's mm."""
    for vma in list(p.mm.vmas):
        unmap_vma_range(k, p, vma, vma.start, vma.end)
    p.mm.vmas.clear()
