"""Page faults and user accesses: the primary MMU's side.

Kernel: include/linux/mm_inline.h: lru_gen_add_folio(); mm/swap.c: folio_mark_accessed().

A user access walks the VMAs of the range; pages not present are faulted in
(anon write: a new folio; anon read: the shared zero page; file: the page
cache), charged to the mm's memcg, placed on MGLRU lists by `lru_gen_add_folio`
(`PG_active` when the VMA has recency, so they land in max_seq - 1), and the
hardware sets the accessed (and, for writes, dirty) bits in the PTE and the
non-leaf PMD above it. Present pages only get their bits set.

Anonymous VMAs with THP allowed get a PMD-sized folio for each 2 MiB block
that lies fully inside the VMA (the huge zero page on a read fault), falling
back to 4 KiB pages when no aligned block is free.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen.walk import vma_has_recency
from mglru.lru_gen.workingset import lru_gen_refault
from mglru.mm.memory import ZERO_PFN
from mglru.mm.page import (
    HPAGE_PMD_NR,
    LRU_REFS_MASK,
    LRU_REFS_SHIFT,
    PAGE_SHIFT,
    PMD_HUGE_ZERO,
    PMD_LEAF,
    PMD_NONE,
    PMD_SHIFT,
    PMD_SIZE,
    PMD_TABLE,
    PTE_DIRTY,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_SWAP,
    PTE_WRITE,
    PTE_YOUNG,
    PTRS_PER_PTE,
    PG_active,
    PG_anon,
    PG_dirty,
    PG_referenced,
    PG_swapbacked,
    PG_unevictable,
    PG_workingset,
)
from mglru.mm.rmap import rmap_note_anon, rmap_note_file
from mglru.mm.vmstat import count_event
from mglru.paths.charge import alloc_pages_reclaim, limited, try_charge
from mglru.paths.lru_add import new_folio_one, new_folios
from mglru.paths.swapin import shmem_swapin, swap_cache_hit, swapin_anon

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.filemap import File
    from mglru.mm.memcg import MemCgroup
    from mglru.mm.process import Mm, Process, Vma

__all__ = ["user_access", "file_read", "new_folios", "mark_accessed", "get_user_pages",
           "fault_anon_page"]

_CHUNK = 1 << 14
_LIMITED_CHUNK = 64


def _check_mapped(mm: Mm, start: int, end: int) -> list[Vma]:
    vmas = mm.vmas_in(start, end)
    cur = start
    for v in vmas:
        if v.start > cur:
            break
        cur = max(cur, v.end)
    if cur < end:
        raise ValueError(f"access to unmapped address {cur:#x} (SIGSEGV)")
    return vmas


def mark_accessed(k: SimKernel, heads: npt.NDArray[np.int64]) -> None:
    """folio_mark_accessed() under MGLRU: lru_gen_inc_refs (mm/swap.c).

    Upstream: PG_referenced (refs 1), then the refs field up to 3, then
    PG_workingset. v6.10: PG_referenced, then PG_workingset, then refs.
    """
    mem = k.mem
    f = mem.flags[heads].astype(np.int64)
    skip = (f & PG_unevictable) != 0
    ref = (f & PG_referenced) != 0
    ws = (f & PG_workingset) != 0
    refs = (f & LRU_REFS_MASK) >> LRU_REFS_SHIFT
    if k.cfg.two_step_promotion:
        full = refs == 3
        new = np.where(~ref, (f & ~LRU_REFS_MASK) | PG_referenced,
                       np.where(full, f | PG_workingset, f + (1 << LRU_REFS_SHIFT)))
    else:
        new = np.where(~ref, f | PG_referenced,
                       np.where(~ws, f | PG_workingset,
                                np.where(refs == 3, f, f + (1 << LRU_REFS_SHIFT))))
    mem.flags[heads] = np.where(skip, f, new).astype(np.uint16)


def _pagecache_get(k: SimKernel, file: File, pgoffs: npt.NDArray[np.int64], memcg: MemCgroup,
                   nid: int, active: bool, task: Process | None,
                   fault: bool = False) -> npt.NDArray[np.int64]:
    """Look up (and fill) the page cache; returns pfns.

    shmem pages in swap come back through the swap cache (`paths.swapin.shmem_swapin`,
    which counts a major fault for a swap-cache miss when `fault`).
    """
    pfns = file.pages[pgoffs]
    missing = pfns < 0
    if missing.any():
        # one folio per page index, even if the range repeats an index
        idx = np.unique(pgoffs[missing])
        # the cached folios of the range are in hand while the charge reclaims
        with contextlib.ExitStack() as held:
            held.enter_context(k.pin(pfns[~missing]))
            if file.shmem and file.swap[idx].any():
                for i in idx[file.swap[idx] != 0].tolist():
                    pfn = shmem_swapin(k, file, i, memcg, nid, active, task, fault)
                    held.enter_context(k.pin([pfn]))
                idx = idx[file.pages[idx] < 0]
            if len(idx):
                _fill_holes(k, file, idx, memcg, nid, active, task)
        pfns = file.pages[pgoffs]
    return pfns


def _fill_holes(k: SimKernel, file: File, idx: npt.NDArray[np.int64], memcg: MemCgroup,
                nid: int, active: bool, task: Process | None) -> None:
    """New page-cache folios at `idx`, with refault feedback from their shadows."""
    try_charge(k, memcg, len(idx), task)
    new = alloc_pages_reclaim(k, nid, len(idx), task)
    file.pages[idx] = new
    flags = (PG_swapbacked if file.shmem else 0) | (PG_active if active else 0)
    if file.unevictable:
        flags |= PG_unevictable
    shadows = file.shadow[idx]
    refaulted = np.nonzero(shadows)[0]
    if len(refaulted):
        k.mem.flags[new[refaulted]] = flags
        k.mem.memcg[new[refaulted]] = memcg.id
        for i in refaulted:
            lruvec = memcg.lruvecs[k.mem.pfn_to_nid(int(new[i]))]
            lru_gen_refault(k, int(new[i]), lruvec, int(shadows[i]), in_fault=active)
        file.shadow[idx] = 0
    new_folios(k, memcg, new, flags, keep_flags=refaulted)
    rmap_note_file(k, new, idx)


def _fault_ptes(k: SimKernel, p: Process, vma: Vma, vpn_lo: int, vpn_hi: int, write: bool) -> None:
    """Fault in and touch [vpn_lo, vpn_hi) of one VMA.

    The pages already mapped in the range are the task's while it works on it:
    reclaim run by its own charges below must not free them (each kernel fault
    holds its folio; pages touched just before are young). See `SimKernel.pin`.
    """
    pt = p.mm.pt
    idx = vma.pte_index(np.arange(vpn_lo, vpn_hi, dtype=np.int64))
    mapped = (pt.flat_flags()[idx] & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT
    with k.pin(pt.flat_pfn()[idx[mapped]]):
        _fault_ptes_pinned(k, p, vma, vpn_lo, vpn_hi, write)


def _fault_ptes_pinned(k: SimKernel, p: Process, vma: Vma, vpn_lo: int, vpn_hi: int,
                       write: bool) -> None:
    mm = p.mm
    pt = mm.pt
    vpns = np.arange(vpn_lo, vpn_hi, dtype=np.int64)
    first = (vpn_lo >> 9) - (vma.start >> PMD_SHIFT)
    last = ((vpn_hi - 1) >> 9) - (vma.start >> PMD_SHIFT)
    urows = vma.rows[first: last + 1]
    st = pt.pmd_state[urows]
    pt.pmd_state[urows] = np.where(st == PMD_NONE, PMD_TABLE, st)
    pt.pmd_flags[urows] |= PTE_YOUNG  # the hardware sets non-leaf accessed bits too
    idx = vma.pte_index(vpns)
    ff = pt.flat_flags()
    fp = pt.flat_pfn()
    f = ff[idx]
    present = (f & PTE_PRESENT) != 0
    on_zero = present & (f & PTE_SPECIAL != 0) & (fp[idx] == ZERO_PFN)
    need = ~present | (on_zero if write else np.zeros_like(present))
    bits = PTE_PRESENT | PTE_YOUNG | ((PTE_DIRTY | PTE_WRITE) if write else 0)
    swapped = need & ((f & PTE_SWAP) != 0)
    # one fault per PTE that needs one; major if it reads swap or a missing file page
    # (through the swap cache, and for shmem, the swap-in counts its own misses)
    count_event(k, mm.memcg, "pgfault", int(need.sum()))
    major = int(swapped.sum()) if k.swap.bypass_ok else 0
    if vma.file is not None and not vma.file.shmem:
        rest = need & ~swapped
        pg = vma.pgoff + vpns[rest] - (vma.start >> PAGE_SHIFT)
        pg = pg[pg < vma.file.npages]
        major += len(np.unique(pg[vma.file.pages[pg] < 0]))
    count_event(k, mm.memcg, "pgmajfault", major)
    if swapped.any():
        if k.swap.bypass_ok:
            _swap_in(k, p, vma, idx[swapped], write)
        else:
            for i, vpn in zip(idx[swapped].tolist(), vpns[swapped].tolist(), strict=True):
                _do_swap_page(k, p, vma, i, vpn, write)
        need &= ~swapped
    if need.any():
        nidx = idx[need]
        if vma.file is None:
            if write:
                try_charge(k, mm.memcg, len(nidx), p)
                pfns = alloc_pages_reclaim(k, p.nid, len(nidx), p)
                flags = PG_swapbacked | PG_anon | (PG_active if vma_has_recency(vma) else 0)
                new_folios(k, mm.memcg, pfns, flags)
                rmap_note_anon(k, pfns, nidx)
                fp[nidx] = pfns
                ff[nidx] = bits
            else:
                fp[nidx] = ZERO_PFN
                ff[nidx] = PTE_PRESENT | PTE_YOUNG | PTE_SPECIAL
        else:
            pgoffs = vma.pgoff + vpns[need] - (vma.start >> PAGE_SHIFT)
            if (pgoffs >= vma.file.npages).any():
                raise ValueError(f"access beyond the end of {vma.file.name} (SIGBUS)")
            pfns = _pagecache_get(k, vma.file, pgoffs, mm.memcg, p.nid, vma_has_recency(vma), p,
                                  fault=True)
            fp[nidx] = pfns
            ff[nidx] = bits
            if write:
                k.mem.flags[pfns] |= PG_dirty
    if (~need).any():
        oidx = idx[~need]
        if write and vma.file is not None:
            clean = (ff[oidx] & PTE_DIRTY) == 0
            k.mem.flags[fp[oidx[clean]].astype(np.int64)] |= PG_dirty
        ff[oidx] |= PTE_YOUNG | ((PTE_DIRTY | PTE_WRITE) if write else 0)


def _swap_in(k: SimKernel, p: Process, vma: Vma, sidx: npt.NDArray[np.int64], write: bool) -> None:
    """do_swap_page() on a synchronous device: new folio, refault feedback, slot freed."""
    mm = p.mm
    ff, fp = mm.pt.flat_flags(), mm.pt.flat_pfn()
    slots = fp[sidx].astype(np.int64)
    try_charge(k, mm.memcg, len(sidx), p)
    pfns = alloc_pages_reclaim(k, p.nid, len(sidx), p)
    flags = PG_swapbacked | PG_anon | (PG_active if vma_has_recency(vma) else 0)
    mem = k.mem
    mem.flags[pfns] = flags
    mem.memcg[pfns] = mm.memcg.id
    for pfn, slot in zip(pfns.tolist(), slots.tolist(), strict=True):
        shadow = int(k.swap.shadow[slot])
        if shadow:
            lruvec = mm.memcg.lruvecs[mem.pfn_to_nid(pfn)]
            lru_gen_refault(k, pfn, lruvec, shadow, in_fault=True)
    k.swap.free(slots)
    k.swap.pswpin += len(sidx)
    k.stats["pswpin"] += len(sidx)
    new_folios(k, mm.memcg, pfns, flags, keep_flags=np.arange(len(pfns)))
    rmap_note_anon(k, pfns, sidx)
    fp[sidx] = pfns
    ff[sidx] = PTE_PRESENT | PTE_YOUNG | ((PTE_DIRTY | PTE_WRITE) if write else 0)


def fault_anon_page(k: SimKernel, p: Process, vpn: int, write: bool) -> None:
    """Fault page `vpn` of a 4 KiB anonymous VMA whose PMD the hardware already marked.

    The stream engine's way back when its compiled fault set the PMD's bits and
    charged (and reclaimed) before it found it could not finish: what reclaim
    did to those bits (and to the mm's lru_gen_use_mm() mark) stands, as in one fault.
    """
    vma = p.mm.find_vma(vpn << PAGE_SHIFT)
    _fault_anon_one(k, p, vma, vpn, write, pmd_set=True)


def _fault_anon_one(k: SimKernel, p: Process, vma: Vma, vpn: int, write: bool,
                    pmd_set: bool = False) -> None:
    """`_fault_ptes` for one page of an anonymous 4 KiB VMA, on Python ints.

    NOTE: the stream engine faults one page at a time; this reaches the same
    state as `_fault_ptes` (mm/memory.c: do_anonymous_page(), do_swap_page()) without
    building arrays. A present page needs no charge, so nothing is pinned.
    """
    mm = p.mm
    pt = mm.pt
    row = int(vma.rows[(vpn >> 9) - (vma.start >> PMD_SHIFT)])
    if not pmd_set:
        if pt.pmd_state[row] == PMD_NONE:
            pt.pmd_state[row] = PMD_TABLE
        pt.pmd_flags[row] |= PTE_YOUNG  # the hardware sets non-leaf accessed bits too
    idx = row * PTRS_PER_PTE + (vpn & (PTRS_PER_PTE - 1))
    ff = pt.flat_flags()
    fp = pt.flat_pfn()
    f = int(ff[idx])
    wbits = (PTE_DIRTY | PTE_WRITE) if write else 0
    if f & PTE_PRESENT and not (write and f & PTE_SPECIAL and fp[idx] == ZERO_PFN):
        ff[idx] = f | PTE_YOUNG | wbits
        return
    count_event(k, mm.memcg, "pgfault", 1)
    if f & PTE_SWAP:
        if k.swap.bypass_ok:
            count_event(k, mm.memcg, "pgmajfault", 1)
            _swap_in_one(k, p, vma, idx, write)
        else:
            _do_swap_page(k, p, vma, idx, vpn, write)
        ff[idx] |= PTE_YOUNG | wbits
    elif write:
        memcg = mm.memcg
        try_charge(k, memcg, 1, p)
        pfn = int(alloc_pages_reclaim(k, p.nid, 1, p)[0])
        flags = PG_swapbacked | PG_anon | (PG_active if vma_has_recency(vma) else 0)
        new_folio_one(k, memcg, pfn, flags)
        if k.mem.rmap_hint is not None:  # rmap_note_anon
            k.mem.rmap_hint[pfn] = idx
        fp[idx] = pfn
        ff[idx] = PTE_PRESENT | PTE_YOUNG | wbits
    else:
        fp[idx] = ZERO_PFN
        ff[idx] = PTE_PRESENT | PTE_YOUNG | PTE_SPECIAL


def _do_swap_page(k: SimKernel, p: Process, vma: Vma, idx: int, vpn: int, write: bool) -> None:
    """do_swap_page() of PTE `idx` when the swap cache may be involved (mm/memory.c, 6.1
    and 6.12): a swap-cache hit is mapped (a minor fault); a miss on a synchronous
    device bypasses the cache as `_swap_in_one` does; otherwise swapin_readahead()."""
    hit = swap_cache_hit(k, int(p.mm.pt.flat_pfn()[idx]), vma, vpn)
    if hit < 0 and k.swap.synchronous:
        count_event(k, p.mm.memcg, "pgmajfault", 1)
        _swap_in_one(k, p, vma, idx, write)
        return
    swapin_anon(k, p, vma, idx, vpn, write, hit)


def _swap_in_one(k: SimKernel, p: Process, vma: Vma, idx: int, write: bool) -> None:
    """`_swap_in` of one PTE (do_swap_page() on a synchronous device)."""
    mm = p.mm
    ff, fp = mm.pt.flat_flags(), mm.pt.flat_pfn()
    slot = int(fp[idx])
    memcg = mm.memcg
    try_charge(k, memcg, 1, p)
    pfn = int(alloc_pages_reclaim(k, p.nid, 1, p)[0])
    flags = PG_swapbacked | PG_anon | (PG_active if vma_has_recency(vma) else 0)
    mem = k.mem
    mem.flags[pfn] = flags
    mem.memcg[pfn] = memcg.id
    swap = k.swap
    shadow = int(swap.shadow[slot])
    if shadow:
        lru_gen_refault(k, pfn, memcg.lruvecs[mem.pfn_to_nid(pfn)], shadow, in_fault=True)
    swap.free_one(slot)
    swap.pswpin += 1
    k.stats["pswpin"] += 1
    new_folio_one(k, memcg, pfn, None)
    if mem.rmap_hint is not None:  # rmap_note_anon
        mem.rmap_hint[pfn] = idx
    fp[idx] = pfn
    ff[idx] = PTE_PRESENT | PTE_YOUNG | ((PTE_DIRTY | PTE_WRITE) if write else 0)


def _fault_thp(k: SimKernel, p: Process, vma: Vma, block: int, write: bool) -> bool:
    """One 2 MiB block of a THP VMA; False means: use 4 KiB pages instead."""
    pt = p.mm.pt
    row = vma.rows[(block >> PMD_SHIFT) - (vma.start >> PMD_SHIFT)]
    st = pt.pmd_state[row]
    if st == PMD_TABLE:
        return False
    if st == PMD_LEAF:
        pt.pmd_flags[row] |= PTE_YOUNG | (PTE_DIRTY if write else 0)
        return True
    if not write:
        pt.pmd_state[row] = PMD_HUGE_ZERO
        pt.pmd_flags[row] |= PTE_YOUNG
        count_event(k, p.mm.memcg, "pgfault", 1)
        return True
    try_charge(k, p.mm.memcg, HPAGE_PMD_NR, p)
    head = k.mem.alloc_thp(p.nid)
    if head < 0:
        pt.pmd_state[row] = PMD_NONE
        return False
    count_event(k, p.mm.memcg, "pgfault", 1)
    flags = PG_swapbacked | PG_anon | (PG_active if vma_has_recency(vma) else 0)
    new_folios(k, p.mm.memcg, np.array([head], np.int64), flags, HPAGE_PMD_NR)
    rmap_note_anon(k, np.array([head], np.int64), np.array([row * 512], np.int64))
    pt.pmd_state[row] = PMD_LEAF
    pt.pmd_pfn[row] = head
    pt.pmd_flags[row] = PTE_YOUNG | PTE_DIRTY
    return True


def user_access(k: SimKernel, p: Process, addr: int, nbytes: int, write: bool) -> None:
    """Touch [addr, addr+nbytes) as the task: faults plus hardware accessed bits."""
    if nbytes <= 0:
        return
    end = addr + nbytes
    vmas = _check_mapped(p.mm, addr, end)
    p.mm.use()
    for vma in vmas:
        s, e = max(addr, vma.start), min(end, vma.end)
        vpn_lo, vpn_hi = s >> PAGE_SHIFT, (e + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT
        if vma.thp and vma.file is None:
            cur = vpn_lo
            while cur < vpn_hi:
                block = (cur << PAGE_SHIFT) & ~(PMD_SIZE - 1)
                nxt = min(vpn_hi, (block + PMD_SIZE) >> PAGE_SHIFT)
                whole = block >= vma.start and block + PMD_SIZE <= vma.end
                if not (whole and _fault_thp(k, p, vma, block, write)):
                    _fault_ptes(k, p, vma, cur, nxt, write)
                cur = nxt
        else:
            # bounded chunks keep temporaries small (8 bytes per page each)
            # charges under memory.max go in small steps, like per-fault charging
            if vpn_hi - vpn_lo == 1 and vma.file is None:
                _fault_anon_one(k, p, vma, vpn_lo, write)
                continue
            chunk = _LIMITED_CHUNK if limited(p.mm.memcg) else _CHUNK
            for lo in range(vpn_lo, vpn_hi, chunk):
                _fault_ptes(k, p, vma, lo, min(vpn_hi, lo + chunk), write)


def get_user_pages(k: SimKernel, p: Process, addr: int, nbytes: int, write: bool
                   ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_], npt.NDArray[np.bool_]]:
    """GUP for a KVM fault (KVM's hva_to_pfn): fault in what is missing, return the translation.

    A page already mapped (and writable, for a write) is taken by GUP-fast
    (virt/kvm/kvm_main.c: hva_to_pfn_fast(), get_user_page_fast_only()), which
    leaves the host PTE as it is: its accessed bit is not set. KVM then marks
    the folio accessed when it drops its reference (kvm_release_pfn_clean() ->
    kvm_set_page_accessed() -> mark_page_accessed(), 6.1-6.12). Only pages
    not mapped yet go through the ordinary fault path, which maps them young
    (and dirty for a write). So an aging walk that reads primary PTEs only
    (6.1's walk_pte_range()) does not see the guest's accesses.
    Returns, per page, (pfn, mapped by a PMD leaf, writable).
    """
    pfns, leaves, writable, present, special = _translate(p, addr, nbytes)
    need = ~present | (~writable if write else np.zeros_like(present))
    if need.any():
        vpns = (addr >> PAGE_SHIFT) + np.flatnonzero(need)
        for run in np.split(vpns, np.flatnonzero(np.diff(vpns) != 1) + 1):
            user_access(k, p, int(run[0]) << PAGE_SHIFT, len(run) << PAGE_SHIFT, write)
    taken = ~need & ~special  # the zero pages are not tracked (kvm_is_ad_tracked_page())
    if taken.any():
        p.mm.use()
        heads = np.unique(np.where(leaves, pfns & ~np.int64(HPAGE_PMD_NR - 1), pfns)[taken])
        mark_accessed(k, heads)
    if need.any():
        pfns, leaves, writable, _, _ = _translate(p, addr, nbytes)
    return pfns, leaves, writable


def _translate(p: Process, addr: int, nbytes: int):
    """Per page of [addr, addr+nbytes): (pfn, PMD leaf, writable, present, zero page)."""
    pt = p.mm.pt
    out = []
    end = addr + nbytes
    for vma in _check_mapped(p.mm, addr, end):
        lo, hi = max(addr, vma.start) >> PAGE_SHIFT, (min(end, vma.end) - 1 >> PAGE_SHIFT) + 1
        vpns = np.arange(lo, hi, dtype=np.int64)
        rows = vma.rows[(vpns >> 9) - (vma.start >> PMD_SHIFT)]
        state = pt.pmd_state[rows]
        leaf = (state == PMD_LEAF) | (state == PMD_HUGE_ZERO)
        sub = vpns & (HPAGE_PMD_NR - 1)
        ptes = rows * HPAGE_PMD_NR + sub
        flags = pt.flat_flags()[ptes]
        pfn = np.where(leaf, pt.pmd_pfn[rows].astype(np.int64) + sub,
                       pt.flat_pfn()[ptes].astype(np.int64))
        writable = np.where(leaf, state == PMD_LEAF, (flags & PTE_WRITE) != 0)
        present = leaf | ((state == PMD_TABLE) & ((flags & PTE_PRESENT) != 0))
        special = (state == PMD_HUGE_ZERO) | (~leaf & ((flags & PTE_SPECIAL) != 0))
        out.append((pfn, leaf, writable, present, special))
    return tuple(np.concatenate(parts) for parts in zip(*out, strict=True))


def file_read(k: SimKernel, p: Process, file: File, offset: int, nbytes: int) -> None:
    """read(2): fill the page cache (no PG_active: lru_gen_add_folio()) and mark accessed."""
    if nbytes <= 0:
        return
    lo, hi = offset >> PAGE_SHIFT, (offset + nbytes + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT
    if hi > file.npages:
        raise ValueError(f"read beyond the end of {file.name}")
    pfns = _pagecache_get(k, file, np.arange(lo, hi, dtype=np.int64), p.memcg, p.nid, False, p)
    if not file.noreuse:
        mark_accessed(k, pfns)
