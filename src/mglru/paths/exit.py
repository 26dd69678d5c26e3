"""Tearing down mappings: munmap and exit_mmap.

Anonymous folios (and THPs) mapped only here are freed and uncharged, swap
entries release their slots (and the swap cache the folios it held for them),
file folios stay in the page cache.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen.evict_fast import forget_packed_procs
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
    PG_head,
    PG_swapcache,
    PG_tail,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.filemap import File
    from mglru.mm.process import Process, Vma

__all__ = ["exit_mmap", "unmap_vma_range", "shmem_evict_inode"]


def _free_folios(k: SimKernel, heads: np.ndarray, nr: int) -> None:
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


def _free_swap_cache(k: SimKernel, keys: np.ndarray, mapped: bool) -> None:
    """The swap cache lets go of what the zapped range held (6.1 and 6.12).

    `mapped`: `keys` are the anonymous folios the range mapped; one in the swap
    cache leaves it and its slot is freed (free_pages_and_swap_cache() ->
    free_swap_cache(): no swap entry refers to it any more). Else `keys` are the
    range's swap slots; a slot cached by a folio nothing maps (one read ahead)
    loses that folio too (free_swap_and_cache(): __try_to_reclaim_swap() with
    TTRS_UNMAPPED); the caller frees the slots.
    """
    cache = k.swap.cache
    if mapped:
        for pfn in keys.tolist():
            if pfn in cache.slot:
                k.swap.free_one(cache.delete(pfn))
                k.mem.flags[pfn] &= ~np.uint16(PG_swapcache)
        return
    orphans = []
    for slot in keys.tolist():
        pfn = cache.lookup(slot)
        if pfn >= 0 and not k.mem.flags[pfn] & PG_anon:
            cache.delete(pfn)
            k.mem.flags[pfn] &= ~np.uint16(PG_swapcache)
            orphans.append(pfn)
    _free_folios(k, np.array(orphans, np.int64), 1)


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
        _free_folios(k, heads, HPAGE_PMD_NR)
        pt.pmd_state[leaf] = PMD_NONE
        pt.pmd_flags[leaf] = 0
    vpns = ((slots[:, None] << 9) + np.arange(512, dtype=np.int64)).ravel()
    vpns = vpns[(vpns >= start >> PAGE_SHIFT) & (vpns < end >> PAGE_SHIFT)]
    idx = vma.pte_index(vpns)
    ff, fp = pt.flat_flags(), pt.flat_pfn()
    f = ff[idx]
    swapped = idx[(f & PTE_SWAP) != 0]
    if len(swapped):
        slots = fp[swapped].astype(np.int64)
        if k.swap.cache.folio:
            _free_swap_cache(k, slots, mapped=False)
        k.swap.free(slots)
    mapped = idx[(f & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT]
    pfns = fp[mapped].astype(np.int64)
    pfns = pfns[pfns >= 1024]
    anon = pfns[(k.mem.flags[pfns] & PG_anon) != 0]
    if k.swap.cache.folio:
        _free_swap_cache(k, anon, mapped=True)
    _free_folios(k, anon, 1)
    ff[idx] = 0
    fp[idx] = 0
    for sub in p.mm.notifiers:
        invalidate = getattr(sub, "invalidate_range", None)
        if invalidate is not None:
            invalidate(start, end)


def shmem_evict_inode(k: SimKernel, f: File) -> None:
    """Free a shmem inode's pages and swap slots (mm/shmem.c: shmem_evict_inode(),
    shmem_undo_range(); 6.1 and 6.12): cached folios leave their memcg and LRU,
    swapped-out pages their slots (a slot's readahead folio goes with it)."""
    pfns = f.pages[f.pages >= 0]
    if len(pfns):
        heads = pfns[(k.mem.flags[pfns] & PG_head) != 0]
        _free_folios(k, heads, HPAGE_PMD_NR)
        small = pfns[(k.mem.flags[pfns] & (PG_head | PG_tail)) == 0]
        _free_folios(k, small, 1)
    slots = f.swap[f.swap != 0]
    if len(slots):
        if k.swap.cache.folio:
            _free_swap_cache(k, slots, mapped=False)
        k.swap.free(slots)
    f.pages[:] = -1
    f.swap[:] = 0
    f.shadow[:] = 0


def exit_mmap(k: SimKernel, p: Process) -> None:
    """Unmap every VMA of a task's mm; shared anonymous memory goes with its last mapping."""
    forget_packed_procs(k)
    files = []
    for vma in list(p.mm.vmas):
        unmap_vma_range(k, p, vma, vma.start, vma.end)
        if vma.file is not None and vma.file.anon:
            files.append(vma.file)
    p.mm.vmas.clear()
    for f in files:
        if any(v.file is f for q in k.procs.values() for v in q.mm.vmas):
            continue
        shmem_evict_inode(k, f)
        for name in [n for n, g in k.files.items() if g is f]:
            del k.files[name]
