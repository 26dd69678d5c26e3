"""Swap-ins through the swap cache, with readahead.

Kernel (read in 6.1 and 6.12; the rules below are the same in both):

- mm/memory.c do_swap_page(): a slot found in the swap cache is mapped without I/O
  (a minor fault); otherwise swapin_readahead() reads it (pgmajfault). After the
  swap PTE's reference is dropped, should_try_to_free_swap() frees the slot when
  swap is more than half full (vm_swap_full(); no memory.swap.max here, so
  mem_cgroup_swap_full() reduces to it), the VMA is VM_LOCKED, or the fault
  writes to an exclusive folio; a read fault leaves the folio in the swap cache,
  holding its slot. The synchronous bypass stays in `paths.fault`.
- mm/swap_state.c: swap_cache_get_folio() (readahead hits: swap_ra_hit, the VMA's
  window or the device's hit count), swapin_readahead() choosing
  swap_vma_readahead() (anonymous, the swap PTEs around the fault in its VMA and
  page table) or swap_cluster_readahead() (shmem, and anonymous memory when VMA
  readahead is off: the aligned block of slots around the slot),
  __read_swap_cache_async() (a new folio for a slot in use: charged to the memcg
  the slot belongs to, added to the swap cache, workingset_refault() with the
  slot's shadow, folio_add_lru(); one pswpin each, readahead ones PG_readahead and
  swap_ra).
- mm/swap.c folio_add_lru(): a folio added while the task is in a fault of a VMA
  with recency (lru_gen_in_fault()) is made active; readahead folios are added
  inside the fault, so they are active too, and lru_gen_add_folio() /
  lru_gen_folio_seq() place them as the preset places active folios.
- mm/shmem.c shmem_swapin_folio(): always through the swap cache (cluster
  readahead); the folio then moves to the page cache and its slot is freed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen.walk import vma_has_recency
from mglru.lru_gen.workingset import lru_gen_refault, unpack_shadow
from mglru.mm.page import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_DIRTY,
    PTE_PRESENT,
    PTE_SWAP,
    PTE_WRITE,
    PTE_YOUNG,
    PG_active,
    PG_anon,
    PG_dirty,
    PG_mlocked,
    PG_swapbacked,
    PG_swapcache,
)
from mglru.mm.process import VM_LOCKED
from mglru.mm.rmap import rmap_note_anon, rmap_note_file
from mglru.mm.swap_cache import (
    SWAP_RA_HITS_MAX,
    SWAP_RA_ORDER_CEILING,
    cluster_window,
    swapin_nr_pages,
    vma_window,
)
from mglru.mm.vmstat import count_event
from mglru.paths.charge import alloc_pages_reclaim, try_charge
from mglru.paths.lru_add import new_folio_one

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.filemap import File
    from mglru.mm.memcg import MemCgroup
    from mglru.mm.process import Process, Vma

__all__ = ["swap_cache_hit", "swapin_anon", "shmem_swapin", "read_swap_cache_async",
           "free_swap_cache_folio"]


def swap_cache_hit(k: SimKernel, slot: int, vma: Vma | None, vpn: int) -> int:
    """swap_cache_get_folio(): the folio caching `slot` or -1, counting readahead hits.

    A hit through a VMA with VMA readahead records the address (and one more hit if
    the folio was read ahead) in the VMA's window; without, a readahead hit counts
    toward the next cluster window.
    """
    swap = k.swap
    pfn = swap.cache.lookup(slot)
    if pfn < 0:
        return -1
    readahead = swap.cache.test_clear_readahead(pfn)
    vma_ra = swap.use_vma_readahead
    if vma is not None and vma_ra:
        _, win, hits = vma.swap_ra
        if readahead:
            hits = min(hits + 1, SWAP_RA_HITS_MAX)
        vma.swap_ra = (vpn << PAGE_SHIFT, win, hits)
    if readahead:
        k.stats["swap_ra_hit"] += 1
        if vma is None or not vma_ra:
            swap.ra_hits += 1
    return pfn


def _owner(k: SimKernel, shadow: int, fallback: MemCgroup) -> MemCgroup:
    """mem_cgroup_swapin_charge_folio(): the memcg the slot was charged to (its id is in
    the shadow), or `fallback` when that memcg is gone."""
    if shadow:
        memcg = k.memcgs.by_id.get(unpack_shadow(shadow)[0])
        if memcg is not None:
            return memcg
    return fallback


def read_swap_cache_async(k: SimKernel, slot: int, memcg: MemCgroup, nid: int, active: bool,
                          task: Process | None, readahead: bool) -> tuple[int, bool]:
    """__read_swap_cache_async(): (the folio caching `slot`, whether it was read now);
    (-1, False) for a free slot.

    `active`: added inside a fault of a VMA with recency (folio_add_lru()).
    """
    swap = k.swap
    pfn = swap.cache.lookup(slot)
    if pfn >= 0:
        return pfn, False
    if not swap.in_use(slot):
        return -1, False
    owner = _owner(k, swap.shadow_of(slot), memcg)
    try_charge(k, owner, 1, task)
    pfn = int(alloc_pages_reclaim(k, nid, 1, task)[0])
    if not swap.in_use(slot) or swap.cache.lookup(slot) >= 0:  # freed while we reclaimed
        k.mem.free_pages(np.array([pfn], np.int64))
        return swap.cache.lookup(slot), False
    mem = k.mem
    mem.flags[pfn] = PG_swapbacked | PG_swapcache | (PG_active if active else 0)
    mem.memcg[pfn] = owner.id
    shadow = swap.shadow_of(slot)
    swap.shadow[slot] = 0
    swap.cache.add(slot, pfn, readahead)
    if shadow:
        lru_gen_refault(k, pfn, owner.lruvecs[mem.pfn_to_nid(pfn)], shadow, in_fault=active)
    new_folio_one(k, owner, pfn, None)
    swap.pswpin += 1
    k.stats["pswpin"] += 1
    if readahead:
        k.stats["swap_ra"] += 1
    return pfn, True


def _hold(k: SimKernel, pfn: int, held: list[int]) -> None:
    """Keep a folio read in this fault from reclaim until the fault is done (it is
    locked while its read is in flight, and shrink_folio_list skips locked folios)."""
    if pfn >= 0 and pfn not in k.pinned:
        k.pinned.add(pfn)
        held.append(pfn)


def _cluster_readahead(k: SimKernel, slot: int, memcg: MemCgroup, nid: int, active: bool,
                       task: Process | None) -> int:
    """swap_cluster_readahead() and swapin_nr_pages(): returns the folio of `slot`.

    1 << page-cluster is a C int shift; 6.1 accepts values above 31, where x86 uses
    the count modulo 32.
    """
    swap = k.swap
    max_pages = 1 << (swap.page_cluster & 31)
    nr = 1
    if max_pages > 1:
        hits, swap.ra_hits = swap.ra_hits, 0
        nr = swapin_nr_pages(swap.ra_prev_offset, slot, hits, max_pages, swap.ra_last_pages)
        if not hits:
            swap.ra_prev_offset = slot
        swap.ra_last_pages = nr
    pinned: list[int] = []
    if nr > 1:
        for s in cluster_window(slot, nr, swap.max_slot):
            if s >= swap._next:  # noqa: SLF001 -- never allocated: free
                break
            pfn = read_swap_cache_async(k, s, memcg, nid, active, task, readahead=s != slot)[0]
            _hold(k, pfn, pinned)
    try:
        return read_swap_cache_async(k, slot, memcg, nid, active, task, readahead=False)[0]
    finally:
        k.pinned.difference_update(pinned)


def _vma_readahead(k: SimKernel, p: Process, vma: Vma, idx: int, vpn: int, active: bool) -> int:
    """swap_vma_readahead() with swap_vma_ra_win() (6.12) / swap_ra_info() (6.1)."""
    swap = k.swap
    memcg = p.mm.memcg
    pt = p.mm.pt
    ff, fp = pt.flat_flags(), pt.flat_pfn()
    slot = int(fp[idx])
    max_win = 1 << min(swap.page_cluster, SWAP_RA_ORDER_CEILING)
    faddr = vpn << PAGE_SHIFT
    pinned: list[int] = []
    if max_win > 1:
        prev_faddr, prev_win, hits = vma.swap_ra
        win = swapin_nr_pages(prev_faddr >> PAGE_SHIFT, vpn, hits, max_win, prev_win)
        vma.swap_ra = (faddr, win, 0)
        if win > 1:
            start, end = vma_window(faddr, prev_faddr, win, vma.start, vma.end)
            for addr in range(start, end, PAGE_SIZE):
                i = idx + ((addr - faddr) >> PAGE_SHIFT)  # one page table: consecutive PTEs
                if not ff[i] & PTE_SWAP:
                    continue
                pfn = read_swap_cache_async(k, int(fp[i]), memcg, p.nid, active, p,
                                            readahead=addr != faddr)[0]
                _hold(k, pfn, pinned)
    try:
        return read_swap_cache_async(k, slot, memcg, p.nid, active, p, readahead=False)[0]
    finally:
        k.pinned.difference_update(pinned)


def _should_free_swap(k: SimKernel, vma: Vma, pfn: int, write: bool) -> bool:
    """should_try_to_free_swap() (mm/memory.c): swap full, mlocked, or a write to an
    exclusive folio (no fork here, so every anonymous folio is exclusive)."""
    return (k.swap.full() or bool(vma.flags & VM_LOCKED)
            or bool(k.mem.flags[pfn] & PG_mlocked) or write)


def free_swap_cache_folio(k: SimKernel, pfn: int) -> None:
    """folio_free_swap() of a folio no swap entry refers to: it leaves the swap cache,
    its slot is freed and it is dirty (its only copy is now in memory)."""
    slot = k.swap.cache.delete(pfn)
    k.mem.flags[pfn] = (int(k.mem.flags[pfn]) & ~PG_swapcache) | PG_dirty
    k.swap.free_one(slot)


def swapin_anon(k: SimKernel, p: Process, vma: Vma, idx: int, vpn: int, write: bool,
                hit: int) -> None:
    """do_swap_page() through the swap cache for PTE `idx`; `hit` is the folio
    `swap_cache_hit` found, or -1 (a major fault: readahead)."""
    mm = p.mm
    ff, fp = mm.pt.flat_flags(), mm.pt.flat_pfn()
    pfn = hit
    if pfn < 0:
        count_event(k, mm.memcg, "pgmajfault", 1)
        active = vma_has_recency(vma)
        if k.swap.use_vma_readahead:
            pfn = _vma_readahead(k, p, vma, idx, vpn, active)
        else:
            pfn = _cluster_readahead(k, int(fp[idx]), mm.memcg, p.nid, active, p)
    mem = k.mem
    mem.flags[pfn] |= PG_anon
    # swap_free(): the PTE's reference goes, the swap cache keeps the slot
    if _should_free_swap(k, vma, pfn, write):
        free_swap_cache_folio(k, pfn)
    rmap_note_anon(k, np.array([pfn], np.int64), np.array([idx], np.int64))
    fp[idx] = pfn
    ff[idx] = PTE_PRESENT | PTE_YOUNG | ((PTE_DIRTY | PTE_WRITE) if write else 0)


def shmem_swapin(k: SimKernel, file: File, index: int, memcg: MemCgroup, nid: int,
                 active: bool, task: Process | None, fault: bool) -> int:
    """shmem_swapin_folio(): bring page `index` back from its slot into the page cache.

    A swap-cache miss reads a cluster (and is a major fault when `fault`); the folio
    then leaves the swap cache and its slot is freed.
    """
    slot = int(file.swap[index])
    pfn = swap_cache_hit(k, slot, None, 0)
    if pfn < 0:
        if fault:
            count_event(k, memcg, "pgmajfault", 1)
        pfn = _cluster_readahead(k, slot, memcg, nid, active, task)
    k.swap.cache.delete(pfn)
    k.mem.flags[pfn] &= ~np.uint16(PG_swapcache)
    k.swap.free_one(slot)
    file.swap[index] = 0
    file.pages[index] = pfn
    rmap_note_file(k, np.array([pfn], np.int64), np.array([index], np.int64))
    return pfn
