"""The common case of shrink_folio_list, vectorised: cold anon folios to swap.

Kernel: mm/vmscan.c: evict_folios(); mm/workingset.c: lru_gen_eviction().

Most folios a proactive or limit reclaim takes are 4 KiB anonymous folios mapped
by one PTE that is not young, in an mm without MMU notifiers: for them
folio_check_references finds no reference (look-around returns false at once,
mm/rmap.c: folio_referenced()), so they are swapped out and freed.
`shrink_anon_batch` does exactly
that for all such folios of a batch with numpy, and leaves every other folio to
the per-folio path of `vmscan.shrink_folio_list`.

Why the split changes nothing: the per-folio path handles folios one after the
other, and what it does to one folio can touch another only through PTE
accessed bits (look-around harvests young neighbours; it skips isolated folios
from v6.12, and v6.10 marks only young ones) or through running out of swap
slots. The folios taken here have old PTEs, are isolated, and are taken only
when the device has a slot for every swap-backed page of the batch, so their
fate and everyone else's is the same in either order. Slot numbers may differ;
nothing depends on them.

Future optimizations:
1. an mm id per pfn would replace the per-process probe of the rmap hints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen.helpers import lru_hist_from_seq
from mglru.mm.page import (
    LRU_REFS_MASK,
    LRU_REFS_SHIFT,
    LRU_REFS_WIDTH,
    PAGE_SHIFT,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_SWAP,
    PTE_YOUNG,
    PTRS_PER_PTE,
    PG_anon,
    PG_head,
    PG_referenced,
    PG_swapbacked,
    PG_swapcache,
    PG_workingset,
    PG_writeback,
)
from mglru.mm.process import VM_LOCKED
from mglru.mm.rmap import rmap_enable

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.eviction import ScanControl
    from mglru.lru_gen.lruvec import Lruvec

__all__ = ["shrink_anon_batch"]


def _tier_refs(two_step: bool, flags: npt.NDArray[np.int64]):
    """(tier, refs, workingset) per folio as lru_gen_eviction sees them (see lru_gen.pid)."""
    field = (flags & LRU_REFS_MASK) >> LRU_REFS_SHIFT
    ws = (flags & PG_workingset) != 0
    if two_step:
        refs = np.where(flags & PG_referenced, field + 1, 0)
        tier = np.where(ws, 3, np.where(refs <= 1, 0, np.where(refs == 2, 1, 2)))
        return tier, refs, ws
    refs = field + ws  # v6.10: workingset counts as one ref; tier = order_base_2(refs + 1)
    tier = np.where(refs == 0, 0, np.where(refs == 1, 1, np.where(refs <= 3, 2, 3)))
    return tier, refs, refs > 0


def shrink_anon_batch(k: SimKernel, lruvec: Lruvec, pfns: list[int],
                      sc: ScanControl) -> npt.NDArray[np.bool_]:
    """Swap out the cold, singly mapped 4 KiB anon folios of a batch; returns which were.

    The folios are unmapped and counted but not freed: the caller frees them with
    the rest of the batch, in batch order (so allocation order does not depend on
    which path a folio took).
    """
    mem = k.mem
    heads = np.asarray(pfns, np.int64)
    done = np.zeros(len(heads), bool)
    if not len(heads) or not sc.may_swap or not sc.may_unmap:
        return done
    flags = mem.flags[heads].astype(np.int64)
    # every swap-backed page of the batch must find a slot (see the module docstring)
    swap_pages = int(np.where(flags & PG_head, 512, 1)[(flags & PG_swapbacked) != 0].sum())
    if swap_pages > k.swap.nr_free:
        return done
    cand = ((flags & (PG_anon | PG_swapbacked)) == (PG_anon | PG_swapbacked))
    cand &= (flags & (PG_head | PG_writeback | PG_swapcache)) == 0  # in the swap cache: per folio
    if not k.cfg.two_step_promotion:
        cand &= (flags & PG_referenced) == 0  # v6.10 keeps those (see shrink_folio_list)
    if k.pinned:
        cand &= ~np.isin(heads, np.fromiter(k.pinned, np.int64))
    if not cand.any():
        return done
    hint = rmap_enable(k)[heads].astype(np.int64)
    owner = np.full(len(heads), -1, np.int64)
    nmaps = np.zeros(len(heads), np.int64)
    procs = list(k.procs.values())
    for i, p in enumerate(procs):
        pt = p.mm.pt
        inside = cand & (hint < pt.nr_rows * PTRS_PER_PTE)
        if not inside.any():
            continue
        idx = np.where(inside, hint, 0)
        f = pt.flat_flags()[idx]
        hit = inside & ((f & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT)
        hit &= pt.flat_pfn()[idx].astype(np.int64) == heads
        if not hit.any():
            continue
        nmaps += hit
        owner[hit] = i
        if p.mm.notifiers:
            cand &= ~hit  # secondary MMUs are asked per folio
        young = hit & ((f & PTE_YOUNG) != 0)
        cand &= ~young
        # VM_LOCKED mappings activate the folio (folio_check_references)
        addrs = pt.pmd_addr[hint[hit] // PTRS_PER_PTE] + ((hint[hit] % PTRS_PER_PTE) << PAGE_SHIFT)
        locked = np.zeros(int(hit.sum()), bool)
        for vma in p.mm.vmas:
            if vma.flags & VM_LOCKED:
                locked |= (addrs >= vma.start) & (addrs < vma.end)
        if locked.any():
            sel = np.nonzero(hit)[0][locked]
            cand[sel] = False
    cand &= nmaps == 1
    take = np.nonzero(cand)[0]
    if not len(take):
        return done
    n = len(take)
    flags_t = flags[take]
    # lru_gen_eviction(): evicted[hist][anon][tier] and the shadow entries
    tier, refs, ws = _tier_refs(k.cfg.two_step_promotion, flags_t)
    min_seq = lruvec.min_seq[0]
    token = (min_seq << LRU_REFS_WIDTH) | np.maximum(refs - 1, 0)
    hist = lru_hist_from_seq(min_seq, lruvec.nr_hist_gens)
    np.add.at(lruvec.evicted[hist, 0], tier, 1)
    shadow = (token << 26) | (lruvec.memcg.id << 10) | (lruvec.nid << 1) | ws | (1 << 62)
    slots = k.swap.alloc(n)
    assert slots is not None  # checked above
    k.swap.shadow[slots] = shadow
    # try_to_unmap(): the PTEs become swap entries
    for i, p in enumerate(procs):
        sel = owner[take] == i
        if not sel.any():
            continue
        ff, fp = p.mm.pt.flat_flags(), p.mm.pt.flat_pfn()
        ff[hint[take][sel]] = PTE_SWAP
        fp[hint[take][sel]] = slots[sel]
    # the caller frees them with the rest of the batch, in batch order
    k.swap.pswpout += n
    k.stats["pswpout"] += n
    sc.nr_reclaimed += n
    lruvec.nr_evicted_pages += n
    done[take] = True
    return done
