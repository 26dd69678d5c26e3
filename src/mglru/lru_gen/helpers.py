"""Shorthand helpers: constants, folio flag bits and the seq-derived indices.

Section "shorthand helpers" of mm/vmscan.c and the MGLRU constants of
include/linux/mmzone.h. The machine's own names (page geometry, PG_* bits,
PTE bits) live in `mglru.mm.page`.

Mechanism: a folio's state is a handful of bits in per-pfn numpy arrays
(`PhysMem.flags`, `PhysMem.gen`, ...). Generations are identified by the
monotonic `seq`; the gen *index* (`seq % MAX_NR_GENS`), the history slot and
the Bloom filter slot are always derived through the `*_from_seq` helpers, as
in the kernel, so that one name means one concept.

Future optimizations:
1. none pending: these are constants and pure functions.
"""

from __future__ import annotations

from mglru.mm.memcg import MAX_SWAPPINESS
from mglru.mm.page import LRU_REFS_MASK, LRU_REFS_SHIFT, PG_referenced, PG_workingset

# --- generations, tiers, batches (include/linux/mmzone.h) -----------------------------------
MIN_NR_GENS = 2
MAX_NR_GENS = 4
MAX_NR_TIERS = 4
MIN_LRU_BATCH = 64  # BITS_PER_LONG
MAX_LRU_BATCH = MIN_LRU_BATCH * 64
NR_BLOOM_FILTERS = 2
BLOOM_FILTER_SHIFT = 15
MEMCG_NR_GENS = 3
MEMCG_NR_BINS = 8
#: debugfs swappiness `max` (v6.16): reclaim anon only
SWAPPINESS_ANON_ONLY = MAX_SWAPPINESS + 1
DEF_PRIORITY = 12
BITS_PER_LONG = 64

LRU_GEN_ANON = 0
LRU_GEN_FILE = 1
ANON_AND_FILE = 2

# --- caps of /sys/kernel/mm/lru_gen/enabled (mm/vmscan.c, v4 2/7) ------------
LRU_GEN_CORE = 0
LRU_GEN_MM_WALK = 1
LRU_GEN_NONLEAF_YOUNG = 2
LRU_GEN_SECONDARY_MMU_WALK = 3  # seed v4 only, never merged

#: the folio flags folio_update_gen() resets when the walk moves a folio
LRU_REFS_FLAGS = LRU_REFS_MASK | PG_referenced
#: before v6.14 folio_update_gen() also cleared PG_workingset
LRU_REFS_FLAGS_V6_10 = LRU_REFS_MASK | PG_referenced | PG_workingset

# --- mm_stats (include/linux/mmzone.h; v6.12 removed two) --------------------------------
MM_LEAF_TOTAL = 0
MM_LEAF_OLD = 1
MM_LEAF_YOUNG = 2
MM_NONLEAF_TOTAL = 3
MM_NONLEAF_FOUND = 4
MM_NONLEAF_ADDED = 5
#: all six counters are always kept internally; the ABI shows the version's set
NR_MM_STATS_ALL = 6
MM_STATS_V6_10 = (MM_LEAF_TOTAL, MM_LEAF_OLD, MM_LEAF_YOUNG, MM_NONLEAF_TOTAL,
                  MM_NONLEAF_FOUND, MM_NONLEAF_ADDED)
MM_STATS_V6_12 = (MM_LEAF_TOTAL, MM_LEAF_YOUNG, MM_NONLEAF_FOUND, MM_NONLEAF_ADDED)
MM_STAT_LETTERS = "toydfa"


def lru_gen_from_seq(seq: int) -> int:
    """Generation index of a seq. include/linux/mm_inline.h: lru_gen_from_seq()."""
    return seq % MAX_NR_GENS


def lru_hist_from_seq(seq: int, nr_hist_gens: int) -> int:
    """History slot of a seq (refaulted/evicted/protected, mm_stats): lru_hist_from_seq()."""
    return seq % nr_hist_gens


def filter_gen_from_seq(seq: int) -> int:
    """Bloom filter slot read by the walk closing `seq`. mm/vmscan.c: test_bloom_filter()."""
    return seq % NR_BLOOM_FILTERS


def lru_tier_from_refs(refs: int, workingset: bool) -> int:
    """Tier of a folio from its refs (0..4) and PG_workingset: lru_tier_from_refs()."""
    if workingset:
        return MAX_NR_TIERS - 1
    return (refs - 1).bit_length() if refs > 1 else 0


def folio_lru_refs(flags: int) -> int:
    """refs = 0 without PG_referenced, else refs field + 1 (1..4): folio_lru_refs()."""
    if not flags & PG_referenced:
        return 0
    return ((flags & LRU_REFS_MASK) >> LRU_REFS_SHIFT) + 1

