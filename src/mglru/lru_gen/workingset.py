"""Shadow entries and refault detection: `lru_gen_eviction` / `lru_gen_refault`.

Kernel: mm/workingset.c.

A shadow packs (memcg id, node, token, workingset) into one int64:
token = (min_seq[type] << LRU_REFS_WIDTH) | max(refs - 1, 0). A refault is
"recent" if the eviction lruvec's max_seq is within MAX_NR_GENS of the stored
seq (upstream); v6.10 compared it with min_seq for equality. 6.1
(mm/workingset.c) counts workingset_refault only for recent refaults and has
no workingset_activate count (`KernelConfig.refault_stats_only_recent`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mglru.lru_gen.helpers import MAX_NR_GENS, lru_hist_from_seq
from mglru.lru_gen.pid import folio_tier, folio_tier_refs
from mglru.mm.page import (
    LRU_REFS_MASK,
    LRU_REFS_SHIFT,
    LRU_REFS_WIDTH,
    PG_workingset,
    folio_is_file_lru,
)
from mglru.mm.vmstat import count_workingset

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec

__all__ = ["lru_gen_eviction", "lru_gen_refault", "pack_shadow", "unpack_shadow"]


def pack_shadow(memcg_id: int, nid: int, token: int, workingset: bool) -> int:
    """One int64; never 0 (0 means "no shadow")."""
    return (token << 26) | (memcg_id << 10) | (nid << 1) | int(workingset) | (1 << 62)


def unpack_shadow(shadow: int) -> tuple[int, int, int, bool]:
    """(memcg id, nid, token, workingset)."""
    s = shadow & ~(1 << 62)
    return (s >> 10) & 0xFFFF, (s >> 1) & 0x1FF, s >> 26, bool(s & 1)


def lru_gen_eviction(k: SimKernel, lruvec: Lruvec, flags: int, nr: int) -> int:
    """Count an eviction in `evicted[hist][type][tier]` and return the shadow."""
    type_ = folio_is_file_lru(flags)
    refs, workingset = folio_tier_refs(k.cfg, flags)
    tier = folio_tier(k.cfg, flags)
    min_seq = lruvec.min_seq[type_]
    token = (min_seq << LRU_REFS_WIDTH) | max(refs - 1, 0)
    lruvec.evicted[lru_hist_from_seq(min_seq, lruvec.nr_hist_gens), type_, tier] += nr
    return pack_shadow(lruvec.memcg.id, lruvec.nid, token, workingset)


def lru_gen_refault(k: SimKernel, pfn: int, lruvec: Lruvec, shadow: int, in_fault: bool) -> None:
    """Feed a refault back to the tier controller and restore PG_workingset / refs."""
    memcg_id, nid, token, workingset = unpack_shadow(shadow)
    if memcg_id != lruvec.memcg.id or nid != lruvec.nid:
        return
    flags = int(k.mem.flags[pfn])
    type_ = folio_is_file_lru(flags)
    nr = 512 if flags & (1 << 10) else 1
    seq = token >> LRU_REFS_WIDTH
    if k.cfg.independent_min_seq:
        recent = abs(lruvec.max_seq - seq) < MAX_NR_GENS
    else:
        recent = seq == lruvec.min_seq[type_]
    only_recent = k.cfg.refault_stats_only_recent  # 6.1: returns before counting
    if recent or not only_recent:
        count_workingset(k, lruvec, "refault", type_, nr)
    if not recent:
        return
    hist = lru_hist_from_seq(lruvec.min_seq[type_], lruvec.nr_hist_gens)
    refs = (token & ((1 << LRU_REFS_WIDTH) - 1)) + 1
    if k.cfg.two_step_promotion:
        tier = 3 if workingset else (0 if refs <= 1 else (1 if refs == 2 else 2))
    else:  # v6.10: refs = stored refs + workingset, tier = order_base_2(refs + 1)
        refs = (token & ((1 << LRU_REFS_WIDTH) - 1)) + int(workingset)
        tier = (refs + 1 - 1).bit_length() if refs else 0
    lruvec.refaulted[hist, type_, tier] += nr
    if not only_recent:
        count_workingset(k, lruvec, "activate", type_, nr)
    if k.cfg.two_step_promotion:
        if workingset:
            flags |= PG_workingset
            count_workingset(k, lruvec, "restore", type_, nr)
        else:
            flags = (flags & ~LRU_REFS_MASK) | ((refs - 1) << LRU_REFS_SHIFT)
    elif in_fault or refs >= (1 << LRU_REFS_WIDTH) - 1:  # v6.10
        flags |= LRU_REFS_MASK | PG_workingset
        count_workingset(k, lruvec, "restore", type_, nr)
    k.mem.flags[pfn] = flags
