"""Reclaim outside MGLRU proper: shrink_folio_list and the rmap walk.

mm/vmscan.c: shrink_folio_list() / folio_check_references(), mm/rmap.c: folio_referenced()
(the rmap walk), mm/vmscan.c: lru_gen_age_node() (min_ttl and the OOM signal). What the
model keeps of
shrink_folio_list: references through the rmap walk (with look-around),
anonymous folios to the swap device, clean file folios dropped, dirty file
folios left for writeback, unmapping of every PTE (secondary MMUs are told
through invalidate_range), shadow entries for refault detection.

The reclaim entry points (memcg and global reclaim) are in `mglru.paths.reclaim`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen._shrink_batch import shrink_anon_batch
from mglru.lru_gen.look_around import lru_gen_look_around, lru_gen_set_refs
from mglru.lru_gen.workingset import lru_gen_eviction
from mglru.mm import mmu_notifier
from mglru.mm.page import (
    PAGE_SIZE,
    PMD_NONE,
    PMD_SIZE,
    PMD_TABLE,
    PTE_DIRTY,
    PTE_SWAP,
    PTE_YOUNG,
    PTRS_PER_PTE,
    PG_active,
    PG_anon,
    PG_dirty,
    PG_head,
    PG_referenced,
    PG_swapbacked,
    PG_swapcache,
    PG_writeback,
)
from mglru.mm.process import VM_EXEC, VM_LOCKED
from mglru.mm.rmap import Mapping, anon_folios_mapped, folio_mappings

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.eviction import ScanControl
    from mglru.lru_gen.lruvec import Lruvec

__all__ = ["shrink_folio_list", "folio_referenced"]


def _secondary(mm, kind: str, start: int, end: int) -> bool:
    if not mm.has_notifiers():
        return False
    return bool(getattr(mmu_notifier, f"mmu_notifier_{kind}")(mm, start, end))


def folio_referenced(k: SimKernel, lruvec: Lruvec, pfn: int,
                     maps: list[Mapping]) -> tuple[int, bool, bool]:
    """folio_referenced(): (referenced PTEs, VM_LOCKED seen, VM_EXEC seen). mm/rmap.c."""
    referenced = 0
    locked = exec_ = False
    for m in maps:
        if m.vma.flags & VM_LOCKED:
            locked = True
            continue
        exec_ |= bool(m.vma.flags & VM_EXEC)
        pt = m.mm.pt
        if m.pmd:
            young = bool(pt.pmd_flags[m.index] & PTE_YOUNG)
            pt.pmd_flags[m.index] &= ~np.uint8(PTE_YOUNG)
            if _secondary(m.mm, "clear_flush_young", m.addr, m.addr + PMD_SIZE) or young:
                referenced += 1
            continue
        if not k.caps.lru_gen_enabled():
            ff = pt.flat_flags()
            young = bool(ff[m.index] & PTE_YOUNG)
            ff[m.index] &= ~np.uint8(PTE_YOUNG)
            if _secondary(m.mm, "clear_flush_young", m.addr, m.addr + PAGE_SIZE) or young:
                referenced += 1
            continue
        if k.rules.look_around_then_clear_flush:
            if lru_gen_look_around(k, lruvec, m, k.reclaim_walk):
                referenced += 1
            ff = pt.flat_flags()
            young = bool(ff[m.index] & PTE_YOUNG)
            ff[m.index] &= ~np.uint8(PTE_YOUNG)
            if _secondary(m.mm, "clear_flush_young", m.addr, m.addr + PAGE_SIZE) or young:
                referenced += 1
        elif lru_gen_look_around(k, lruvec, m, k.reclaim_walk):
            referenced += 1
    ext = k.mem.page_idle
    if ext is not None:  # idle page tracking's PG_young / PG_idle (mm.page_idle)
        if referenced:
            ext[pfn] &= ~np.uint8(1)
        if ext[pfn] & 2:
            ext[pfn] &= ~np.uint8(2)
            referenced += 1
    return referenced, locked, exec_


def _check_references(k: SimKernel, lruvec: Lruvec, pfn: int, maps: list[Mapping]) -> str:
    """folio_check_references(): "activate", "keep" or "reclaim". mm/vmscan.c."""
    referenced, locked, exec_ = folio_referenced(k, lruvec, pfn, maps)
    if locked:
        return "activate"
    if k.cfg.two_step_promotion:
        if not referenced:
            return "reclaim"
        return "activate" if lru_gen_set_refs(k, pfn) else "keep"
    flags = int(k.mem.flags[pfn])  # v6.10: the classic two-reference rule
    referenced_folio = bool(flags & PG_referenced)
    k.mem.flags[pfn] = flags & ~PG_referenced
    if referenced:
        k.mem.flags[pfn] |= PG_referenced
        if referenced_folio or referenced > 1:
            return "activate"
        if exec_ and not flags & PG_swapbacked:
            return "activate"
        return "keep"
    return "reclaim"


def _unmap(k: SimKernel, maps: list[Mapping], slots: np.ndarray | None) -> None:
    """try_to_unmap(): every PTE/PMD goes; anon mappings become swap entries.

    A PMD-mapped THP is split into 512 swap PTEs (x86 THP_SWAP: one cluster of
    slots, swapped back in as small pages).
    """
    for m in maps:
        pt = m.mm.pt
        ff, fp = pt.flat_flags(), pt.flat_pfn()
        if m.pmd:
            row = m.index
            pt.pmd_state[row] = PMD_TABLE if slots is not None else PMD_NONE
            pt.pmd_flags[row] = PTE_YOUNG if slots is not None else 0
            sl = slice(row * PTRS_PER_PTE, (row + 1) * PTRS_PER_PTE)
            ff[sl] = PTE_SWAP if slots is not None else 0
            fp[sl] = slots if slots is not None else 0
            end = m.addr + PMD_SIZE
        else:
            ff[m.index] = PTE_SWAP if slots is not None else 0
            fp[m.index] = slots[0] if slots is not None else 0
            end = m.addr + PAGE_SIZE
        for sub in m.mm.notifiers:
            invalidate = getattr(sub, "invalidate_range", None)
            if invalidate is not None:
                invalidate(m.addr, end)


def _free_folios(k: SimKernel, heads: list[tuple[int, int]]) -> None:
    """Uncharge and free reclaimed folios (head pfn, nr pages) in one go."""
    if not heads:
        return
    mem = k.mem
    head, nr = (np.array(c, np.int64) for c in zip(*heads, strict=True))
    if k.reclaim_hook is not None:
        k.reclaim_hook(k, head, nr)
    mids = mem.memcg[head]
    for mid in np.unique(mids):
        memcg = k.memcgs.by_id.get(int(mid))
        if memcg is not None:
            memcg.charge(-int(nr[mids == mid].sum()))
    if (nr == 1).all():
        mem.free_pages(head)
        return
    mem.free_pages(np.concatenate([np.arange(p, p + n, dtype=np.int64)
                                   for p, n in zip(head, nr, strict=True)]))


def _reclaim_swap_cache(k: SimKernel, pfn: int, flags: int, maps: list[Mapping],
                        shadow: int) -> None:
    """A folio in the swap cache leaves it (mm/vmscan.c shrink_folio_list(), 6.1 and 6.12).

    Its slot is reused: no new allocation. It is written (pageout(), one pswpout)
    only if dirty, in its flags or in a PTE that try_to_unmap() clears; a clean one
    is dropped as it is. __remove_mapping() leaves the shadow in the slot, which the
    unmapped PTEs (or the shmem entry, or the PTE that never mapped a readahead
    folio) still refer to.
    """
    slot = k.swap.cache.slot[pfn]
    dirty = bool(flags & PG_dirty)
    for m in maps:
        dirty |= bool(m.mm.pt.flat_flags()[m.index] & PTE_DIRTY)
    if dirty:
        k.swap.pswpout += 1
        k.stats["pswpout"] += 1
    if maps:
        _unmap(k, maps, np.array([slot], np.int64))
    k.swap.cache.delete(pfn)
    k.mem.flags[pfn] = flags & ~(PG_swapcache | PG_dirty)
    k.swap.shadow[slot] = shadow


def shrink_folio_list(k: SimKernel, lruvec: Lruvec, pfns: list[int], sc: ScanControl) -> list[int]:
    """Reclaim what can be reclaimed of an isolated batch; returns the folios kept.

    Cold singly mapped anon folios are swapped out together first (see
    `_shrink_batch`); the others go through the per-folio path below.
    """

    mem = k.mem
    kept: list[int] = []
    freed: list[tuple[int, int]] = []
    done = shrink_anon_batch(k, lruvec, pfns, sc).tolist()
    # only reclaiming a folio changes its own mappings, so they can be tested first
    mapped = anon_folios_mapped(k, np.asarray(pfns, np.int64)).tolist() \
        if not k.cfg.two_step_promotion and pfns else None
    for pfn, swapped, j in zip(pfns, done, range(len(pfns)), strict=True):
        if swapped:
            freed.append((pfn, 1))
            continue
        flags = int(mem.flags[pfn])
        nr = 512 if flags & PG_head else 1
        maps = None
        if mapped is not None and flags & PG_referenced:
            if not flags & PG_anon:
                maps = folio_mappings(k, pfn)
            if mapped[j] or maps:
                # before the v6.14 rework: "folio_update_gen() tried to promote this
                # page?" -- look-around marks isolated folios it finds young
                # PG_referenced, and shrink_folio_list keeps them (keep_locked)
                kept.append(pfn)
                continue
        if maps is None:
            maps = folio_mappings(k, pfn)
        verdict = _check_references(k, lruvec, pfn, maps)
        flags = int(mem.flags[pfn])
        if verdict == "activate":
            mem.flags[pfn] = flags | PG_active
            kept.append(pfn)
            continue
        if verdict == "keep" or flags & PG_writeback or pfn in k.pinned:
            kept.append(pfn)  # a pinned folio: its extra reference fails __remove_mapping
            continue
        # anon folios become swap entries in their PTEs; shmem folios (swap-backed
        # file folios) go to swap through shmem_writepage: their PTEs are cleared
        # and the page cache keeps the swap slot
        swapbacked = bool(flags & PG_swapbacked)
        anon = bool(flags & PG_anon)
        slots = None
        if flags & PG_swapcache:  # its slot is allocated already
            slots = np.array([k.swap.cache.slot[pfn]], np.int64)
        elif swapbacked:
            slots = k.swap.alloc(nr) if sc.may_swap else None
            if slots is None:
                mem.flags[pfn] = flags | PG_active  # activate_locked: cannot swap
                kept.append(pfn)
                continue
        elif flags & PG_dirty:
            kept.append(pfn)  # left for writeback (sort_folio bumps it next time)
            continue
        if maps and not sc.may_unmap:
            if slots is not None and not flags & PG_swapcache:
                k.swap.free(slots)
            kept.append(pfn)
            continue
        shadow = lru_gen_eviction(k, lruvec, flags, nr)
        if flags & PG_swapcache:
            _reclaim_swap_cache(k, pfn, flags, maps, shadow)
        elif swapbacked:
            k.swap.shadow[slots] = shadow
            k.swap.pswpout += nr
            k.stats["pswpout"] += nr
            if anon:
                _unmap(k, maps, slots)
            else:
                _unmap(k, maps, None)
                k.drop_page_cache(pfn, shadow, int(slots[0]))
        else:
            _unmap(k, maps, None)
            k.drop_page_cache(pfn, shadow)
        freed.append((pfn, nr))
        sc.nr_reclaimed += nr
        lruvec.nr_evicted_pages += nr
    _free_folios(k, freed)
    return kept
