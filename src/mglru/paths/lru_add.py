"""Adding new folios: charged, then on their lruvec's MGLRU lists.

Kernel: mm/swap.c folio_add_lru(), include/linux/mm_inline.h lru_gen_add_folio()
(with `mglru.lru_gen.folio`), mm/memcontrol.c (the charge).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_add_one
from mglru.mm.page import PG_active, PG_head, PG_lru, PG_tail

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.memcg import MemCgroup

__all__ = ["new_folios", "new_folio_one"]


def new_folios(k: SimKernel, memcg: MemCgroup, pfns: npt.NDArray[np.int64], flags: int,
               nr_pages: int = 1, keep_flags: npt.NDArray[np.int64] | None = None) -> None:
    """Initialise folios, charge them and add them to their lruvecs' MGLRU lists.

    `keep_flags` indexes folios whose flags were already set (refaults restore
    PG_workingset and refs before the folio is added, mm/workingset.c: lru_gen_refault()).
    """
    mem = k.mem
    if nr_pages == 1:
        if keep_flags is not None and len(keep_flags):
            kept = mem.flags[pfns[keep_flags]] | flags
            mem.flags[pfns] = flags
            mem.flags[pfns[keep_flags]] = kept
        else:
            mem.flags[pfns] = flags
        mem.memcg[pfns] = memcg.id
    else:
        for head in pfns:
            mem.flags[head + 1: head + nr_pages] = PG_tail
            mem.memcg[head: head + nr_pages] = memcg.id
        mem.flags[pfns] = flags | PG_head
    memcg.charge(len(pfns) * nr_pages)
    if not k.caps.lru_gen_enabled():
        # on the classic lists, which the model does not order; folio_add_lru()
        # activates faulted folios only under lru_gen_enabled(), so they are inactive
        mem.flags[pfns] = (mem.flags[pfns] & ~np.uint16(PG_active)) | PG_lru
        return
    nids = mem.pfns_to_nid(pfns)
    for nid in np.unique(nids):
        sel = pfns if len(nids) == 1 or (nids == nid).all() else pfns[nids == nid]
        lru_gen_add_folio(mem, memcg.lruvecs[int(nid)], sel)


def new_folio_one(k: SimKernel, memcg: MemCgroup, pfn: int, flags: int | None) -> None:
    """`new_folios` of one 4 KiB folio; `flags` None: the swap-in already set its flags
    (with the refault state) and memcg."""
    mem = k.mem
    if flags is not None:
        mem.flags[pfn] = flags
        mem.memcg[pfn] = memcg.id
    memcg.charge(1)
    if not k.caps.lru_gen_enabled():  # see new_folios
        mem.flags[pfn] = (int(mem.flags[pfn]) & ~PG_active) | PG_lru
        return
    lru_gen_add_one(mem, memcg.lruvecs[mem.pfn_to_nid(pfn)], pfn)
