"""The per-(memcg, node) lruvec: `lru_gen_folio` and `lru_gen_mm_state`.

include/linux/mmzone.h: struct lru_gen_folio and struct lru_gen_mm_state.
`max_seq`, `min_seq[]` only increase; page counts are kept
by gen *field* in `nr_pages[gen][type][zone]` and list occupancy by list in
`nr_listed[gen][type][zone]` (folios, not pages), so that "is this list empty"
(try_to_inc_min_seq) is O(1) even though lists are sorted lazily.

The model keeps one zone per node (ZONE_NORMAL); the zone axis stays so the
arrays read like the kernel's.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    BLOOM_FILTER_SHIFT,
    MAX_NR_GENS,
    MAX_NR_TIERS,
    MIN_NR_GENS,
    NR_BLOOM_FILTERS,
    NR_MM_STATS_ALL,
)

if TYPE_CHECKING:
    from mglru.mm.memcg import MemCgroup
    from mglru.presets import Rules

__all__ = ["Lruvec", "MmState", "MAX_NR_ZONES"]

MAX_NR_ZONES = 1


@dataclass(slots=True)
class MmState:
    """`lru_gen_mm_state`: the mm-list cursor and Bloom filters of a lruvec.

    `head`/`tail` are indices into the memcg's mm list; `None` is the list
    sentinel being unset, as the kernel's NULL.
    """

    seq: int
    head: object | None = None
    tail: object | None = None
    #: NR_BLOOM_FILTERS filters of 2**15 bits each, lazily allocated (None = absent)
    filters: list[npt.NDArray[np.uint64] | None] = field(
        default_factory=lambda: [None] * NR_BLOOM_FILTERS
    )
    #: stats[hist][item]; all six items kept, the ABI shows the version's set
    stats: npt.NDArray[np.int64] = field(
        default_factory=lambda: np.zeros((1, NR_MM_STATS_ALL), np.int64))

    @staticmethod
    def new_filter() -> npt.NDArray[np.uint64]:
        """An empty filter of 2**BLOOM_FILTER_SHIFT bits."""
        return np.zeros((1 << BLOOM_FILTER_SHIFT) // 64, np.uint64)


class Lruvec:
    """One lruvec: the MGLRU state of a memcg on a node (struct lru_gen_folio)."""

    def __init__(self, memcg: MemCgroup, nid: int, nr_hist_gens: int, now: int,
                 walks_mmu: bool, rules: Rules) -> None:
        # weak: the memcg holds its lruvecs, so a removed memcg and its lruvecs are
        # freed at once rather than as a cycle waiting for the oldest GC generation
        self._memcg = weakref.ref(memcg)
        self.nid = nid
        #: the kernel's behaviour rules; where entering folios go and what they keep
        #: (`lru_gen_folio_seq`, `lru_gen_add_folio`) depend on the version
        self.rules = rules
        self.max_seq = MIN_NR_GENS + 1
        self.min_seq = [0, 0]
        self.timestamps = [now] * MAX_NR_GENS
        self.nr_pages = np.zeros((MAX_NR_GENS, ANON_AND_FILE, MAX_NR_ZONES), np.int64)
        self.nr_listed = np.zeros((MAX_NR_GENS, ANON_AND_FILE, MAX_NR_ZONES), np.int64)
        # PID controller state (mm/vmscan.c: read_ctrl_pos())
        self.avg_refaulted = np.zeros((ANON_AND_FILE, MAX_NR_TIERS), np.int64)
        self.avg_total = np.zeros((ANON_AND_FILE, MAX_NR_TIERS), np.int64)
        self.protected = np.zeros((nr_hist_gens, ANON_AND_FILE, MAX_NR_TIERS), np.int64)
        self.evicted = np.zeros((nr_hist_gens, ANON_AND_FILE, MAX_NR_TIERS), np.int64)
        self.refaulted = np.zeros((nr_hist_gens, ANON_AND_FILE, MAX_NR_TIERS), np.int64)
        self.nr_hist_gens = nr_hist_gens
        #: scan_folios' cached tail-first order per (gen, type), see eviction
        self.scan_cache: dict = {}
        #: pages reclaimed from this lruvec (a counter users ask for)
        self.nr_evicted_pages = 0
        #: None when CONFIG_LRU_GEN_WALKS_MMU is off (no hardware accessed bit)
        self.mm_state: MmState | None = (
            MmState(seq=MIN_NR_GENS,
                    stats=np.zeros((nr_hist_gens, NR_MM_STATS_ALL), np.int64))
            if walks_mmu else None
        )

    @property
    def memcg(self) -> MemCgroup:
        """lruvec_memcg(): the memcg this lruvec belongs to."""
        m = self._memcg()
        assert m is not None, "the memcg of a live lruvec is gone"
        return m

    def __repr__(self) -> str:
        return (f"Lruvec(memcg={self.memcg.id}, nid={self.nid}, max_seq={self.max_seq}, "
                f"min_seq={self.min_seq})")

    # -- shorthand helpers (mm/vmscan.c) -----------------------------------------
    def get_nr_gens(self, type_: int) -> int:
        """Number of live generations of a type."""
        return self.max_seq - self.min_seq[type_] + 1

    def seq_is_valid(self) -> bool:
        """MIN_NR_GENS <= nr_gens <= MAX_NR_GENS for both types."""
        return all(MIN_NR_GENS <= self.get_nr_gens(t) <= MAX_NR_GENS for t in range(ANON_AND_FILE))

    def nr_pages_of_seq(self, seq: int, type_: int) -> int:
        """Pages (clamped at 0) whose gen field is the gen of `seq`."""
        return max(sum(self.nr_pages[seq % MAX_NR_GENS, type_].tolist()), 0)

    def pages_per_gen(self) -> list[list[int]]:
        """Pages per [gen][type], summed over zones, as Python ints (not clamped).

        NOTE: reclaim reads these a few times per batch; one list beats numpy sums
        of a 4x2 array there.
        """
        if MAX_NR_ZONES == 1:
            return self.nr_pages[:, :, 0].tolist()
        return self.nr_pages.sum(axis=2).tolist()

    def total_pages(self) -> int:
        """All pages on this lruvec's MGLRU lists."""
        return sum(a + f for a, f in self.pages_per_gen())

    def nr_lru_pages(self) -> list[tuple[int, int]]:
        """(inactive, active) pages per type, as /proc/vmstat and memory.stat count them.

        MGLRU reports its two youngest generations as active (include/linux/mm_inline.h:
        lru_gen_is_active()).
        """
        per_gen = np.maximum(self.nr_pages.sum(axis=2), 0)   # [gen][type]
        young = [self.max_seq % MAX_NR_GENS, (self.max_seq - 1) % MAX_NR_GENS]
        out = []
        for t in range(ANON_AND_FILE):
            active = int(per_gen[young, t].sum())
            out.append((int(per_gen[:, t].sum()) - active, active))
        return out
