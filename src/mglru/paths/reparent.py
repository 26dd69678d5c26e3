"""Reparenting the pages of a removed memcg (see the decision in mm.memcg).

Folios charged to the dying memcg move to its parent: they leave the old
lruvec (keeping PG_active if they were in an active generation) and enter the
parent's lruvec by the usual placement rules (include/linux/mm_inline.h: lru_gen_add_folio()).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_del_folio
from mglru.mm.page import PG_tail

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.memcg import MemCgroup

__all__ = ["reparent_memcg"]


def reparent_memcg(k: SimKernel, memcg: MemCgroup) -> None:
    """Move every page charged to `memcg` to its parent."""
    parent = memcg.parent
    assert parent is not None
    mem = k.mem
    for node in mem.nodes:
        lo, hi = node.start_pfn, node.fresh
        mine = np.nonzero(mem.memcg[lo:hi] == memcg.id)[0].astype(np.int64) + lo
        if not len(mine):
            continue
        heads = mine[(mem.flags[mine] & PG_tail) == 0]
        listed = heads[mem.gen[heads] != 0]
        if len(listed):
            lru_gen_del_folio(mem, memcg.lruvecs[node.nid], listed, reclaiming=False)
        mem.memcg[mine] = parent.id
        if len(listed):
            lru_gen_add_folio(mem, parent.lruvecs[node.nid], listed)
    # the parent's page_counter already holds these pages (charges are
    # hierarchical): only the removed memcg's own usage goes
    memcg.nr_charged = 0
