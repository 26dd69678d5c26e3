"""The PID controller: which tiers to protect, which type to evict.

Kernel: mm/vmscan.c: get_type_to_scan(), get_tier_idx(), read_ctrl_pos().

Mechanism: per type and tier, refaulted/total ratios are compared between a
set point (tier 0, or anon) and a process variable (higher tiers, or file) in
integer arithmetic with gains (2:3 for tiers, swappiness : 200 - swappiness for
types) and a noise floor of MIN_LRU_BATCH refaults. The history (`avg_*`) is
folded in by `aging.reset_ctrl_pos` whenever min_seq advances.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mglru.lru_gen.helpers import (
    LRU_GEN_ANON,
    LRU_GEN_FILE,
    MAX_NR_TIERS,
    MIN_LRU_BATCH,
    lru_hist_from_seq,
)
from mglru.mm.memcg import MAX_SWAPPINESS, MIN_SWAPPINESS
from mglru.mm.page import LRU_REFS_MASK, LRU_REFS_SHIFT, PG_referenced, PG_workingset

if TYPE_CHECKING:
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.presets import KernelConfig

__all__ = ["CtrlPos", "read_ctrl_pos", "positive_ctrl_err", "get_tier_idx", "get_type_to_scan",
           "folio_tier", "folio_tier_refs"]


@dataclass(slots=True)
class CtrlPos:
    """`struct ctrl_pos`: refaulted, total and gain of a controller input."""

    refaulted: int
    total: int
    gain: int


def folio_tier_refs(cfg: KernelConfig, flags: int) -> tuple[int, bool]:
    """folio_lru_refs() and PG_workingset as the version defines them (v6.10 differs)."""
    field = (flags & LRU_REFS_MASK) >> LRU_REFS_SHIFT
    ws = bool(flags & PG_workingset)
    if cfg.two_step_promotion:
        return (field + 1 if flags & PG_referenced else 0), ws
    return field + int(ws), field + int(ws) > 0  # v6.10: workingset counts as one ref


def folio_tier(cfg: KernelConfig, flags: int) -> int:
    """Tier of a folio. Upstream: 3 with workingset, else order_base_2(refs); v6.10:
    order_base_2(refs + 1)."""
    refs, ws = folio_tier_refs(cfg, flags)
    if cfg.two_step_promotion:
        return MAX_NR_TIERS - 1 if ws else (refs - 1).bit_length() if refs > 1 else 0
    return refs.bit_length()


def _tier_counts(lruvec: Lruvec, type_: int, shift: int) -> tuple[list[int], list[int]]:
    """Per tier of a type: (refaulted, total) as read_ctrl_pos() adds them up."""
    hist = lru_hist_from_seq(lruvec.min_seq[type_], lruvec.nr_hist_gens)
    # NOTE: one list per counter row; indexing numpy scalars one by one cost more
    avg_refaulted = lruvec.avg_refaulted[type_].tolist()
    refaulted = lruvec.refaulted[hist, type_].tolist()
    avg_total = lruvec.avg_total[type_].tolist()
    protected = lruvec.protected[hist, type_].tolist()
    evicted = lruvec.evicted[hist, type_].tolist()
    return ([avg_refaulted[i] + refaulted[i] for i in range(MAX_NR_TIERS)],
            [avg_total[i] + (protected[i - shift] if i >= shift else 0) + evicted[i]
             for i in range(MAX_NR_TIERS)])


def read_ctrl_pos(lruvec: Lruvec, type_: int, tier: int, gain: int, shift: int,
                  counts: tuple[list[int], list[int]] | None = None) -> CtrlPos:
    """Sum one tier (0..3) or all tiers (4) of a type. `shift` = 1 indexes protected[tier-1].

    `counts`: the type's `_tier_counts`, when the caller reads several tiers.
    """
    refaulted, total = counts if counts is not None else _tier_counts(lruvec, type_, shift)
    lo, hi = tier % MAX_NR_TIERS, min(tier, MAX_NR_TIERS - 1) + 1
    return CtrlPos(sum(refaulted[lo:hi]), sum(total[lo:hi]), gain)


def positive_ctrl_err(sp: CtrlPos, pv: CtrlPos) -> bool:
    """True if PV has few refaults or a refaulted/total no higher than SP's."""
    return (pv.refaulted < MIN_LRU_BATCH or
            pv.refaulted * (sp.total + MIN_LRU_BATCH) * sp.gain
            <= (sp.refaulted + 1) * pv.total * pv.gain)


def get_tier_idx(lruvec: Lruvec, type_: int, shift: int) -> int:
    """The highest tier still to evict; above it folios are protected. get_tier_idx()."""
    counts = _tier_counts(lruvec, type_, shift)
    sp = read_ctrl_pos(lruvec, type_, 0, 2, shift, counts)
    tier = 1
    while tier < MAX_NR_TIERS:
        pv = read_ctrl_pos(lruvec, type_, tier, 3, shift, counts)
        if not positive_ctrl_err(sp, pv):
            break
        tier += 1
    return tier - 1


def get_type_to_scan(lruvec: Lruvec, swappiness: int, shift: int) -> int:
    """File for swappiness <= 1, anon for >= 200, else compare all tiers: get_type_to_scan()."""
    if swappiness <= MIN_SWAPPINESS + 1:
        return LRU_GEN_FILE
    if swappiness >= MAX_SWAPPINESS:
        return LRU_GEN_ANON
    sp = read_ctrl_pos(lruvec, LRU_GEN_ANON, MAX_NR_TIERS, swappiness, shift)
    pv = read_ctrl_pos(lruvec, LRU_GEN_FILE, MAX_NR_TIERS, MAX_SWAPPINESS - swappiness, shift)
    return LRU_GEN_FILE if positive_ctrl_err(sp, pv) else LRU_GEN_ANON
