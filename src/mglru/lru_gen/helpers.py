"""Shorthand helpers: constants, folio flag bits and the seq-derived indices.

Section "shorthand helpers" of mm/vmscan.c and the constants of
include/linux/mmzone.h (spec §1, §2.4).

Mechanism: a folio's state is a handful of bits in per-pfn numpy arrays
(`PhysMem.flags`, `PhysMem.gen`, ...). Generations are identified by the
monotonic `seq`; the gen *index* (`seq % MAX_NR_GENS`), the history slot and
the Bloom filter slot are always derived through the `*_from_seq` helpers, as
in the kernel, so that one name means one concept.

Future optimizations:
1. pack refs/flags into the gen byte if memory per page ever matters more
   than clarity.
"""

from __future__ import annotations

# --- generations, tiers, batches (spec §1) -----------------------------------
MIN_NR_GENS = 2
MAX_NR_GENS = 4
MAX_NR_TIERS = 4
LRU_REFS_WIDTH = 2
MIN_LRU_BATCH = 64  # BITS_PER_LONG
MAX_LRU_BATCH = MIN_LRU_BATCH * 64
NR_BLOOM_FILTERS = 2
BLOOM_FILTER_SHIFT = 15
MEMCG_NR_GENS = 3
MEMCG_NR_BINS = 8
MIN_SWAPPINESS = 0
MAX_SWAPPINESS = 200
SWAPPINESS_ANON_ONLY = MAX_SWAPPINESS + 1
DEF_SWAPPINESS = 60
DEF_PRIORITY = 12
BITS_PER_LONG = 64

LRU_GEN_ANON = 0
LRU_GEN_FILE = 1
ANON_AND_FILE = 2

# --- caps of /sys/kernel/mm/lru_gen/enabled (spec §5.1, seed 2/7) ------------
LRU_GEN_CORE = 0
LRU_GEN_MM_WALK = 1
LRU_GEN_NONLEAF_YOUNG = 2
LRU_GEN_SECONDARY_MMU_WALK = 3  # seed v4 only, never merged

# --- page geometry -------------------------------------------------------------
PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PTRS_PER_PTE = 512
PTRS_PER_PMD = 512
PMD_SHIFT = PAGE_SHIFT + 9
PMD_SIZE = 1 << PMD_SHIFT
PUD_SHIFT = PMD_SHIFT + 9
PUD_SIZE = 1 << PUD_SHIFT
HPAGE_PMD_NR = PTRS_PER_PTE
FIRST_USER_ADDRESS = 0
TASK_SIZE = 1 << 47

# --- folio flag bits (PhysMem.flags, uint16) ------------------------------------
PG_referenced = 1 << 0
PG_workingset = 1 << 1
PG_active = 1 << 2
PG_dirty = 1 << 3
PG_swapbacked = 1 << 4
PG_swapcache = 1 << 5
PG_reclaim = 1 << 6
PG_lru = 1 << 7
PG_unevictable = 1 << 8
PG_writeback = 1 << 9
PG_head = 1 << 10  # first pfn of a PMD-sized folio
PG_tail = 1 << 11  # other pfns of a PMD-sized folio (state lives on the head)
PG_anon = 1 << 12  # folio_test_anon(): mapping is an anon_vma
PG_mlocked = 1 << 13
LRU_REFS_SHIFT = 14
LRU_REFS_MASK = 0b11 << LRU_REFS_SHIFT
LRU_REFS_FLAGS = LRU_REFS_MASK | PG_referenced
#: before v6.14 folio_update_gen() also cleared PG_workingset (spec §8.4)
LRU_REFS_FLAGS_V6_10 = LRU_REFS_MASK | PG_referenced | PG_workingset

# --- PTE / PMD bits (Mm page tables, uint8) -------------------------------------
PTE_PRESENT = 1 << 0
PTE_YOUNG = 1 << 1
PTE_DIRTY = 1 << 2
PTE_SPECIAL = 1 << 3
PTE_WRITE = 1 << 4
#: not present, pfn holds a swap slot (a swap entry)
PTE_SWAP = 1 << 5

PMD_NONE = 0  # no PTE table and no leaf
PMD_TABLE = 1  # points to a PTE table (non-leaf)
PMD_LEAF = 2  # transparent huge page leaf
PMD_HUGE_ZERO = 3  # the huge zero page

# --- mm_stats (spec §1, §3.12; v6.12 removed two) --------------------------------
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
    """Generation index of a seq. Spec: §2.4."""
    return seq % MAX_NR_GENS


def lru_hist_from_seq(seq: int, nr_hist_gens: int) -> int:
    """History slot of a seq (refaulted/evicted/protected, mm_stats). Spec: §2.4."""
    return seq % nr_hist_gens


def filter_gen_from_seq(seq: int) -> int:
    """Bloom filter slot read by the walk closing `seq`. Spec: §3.9."""
    return seq % NR_BLOOM_FILTERS


def lru_tier_from_refs(refs: int, workingset: bool) -> int:
    """Tier of a folio from its refs (0..4) and PG_workingset. Spec: §2.4."""
    if workingset:
        return MAX_NR_TIERS - 1
    return (refs - 1).bit_length() if refs > 1 else 0


def folio_lru_refs(flags: int) -> int:
    """refs = 0 without PG_referenced, else refs field + 1 (1..4). Spec: §2.4."""
    if not flags & PG_referenced:
        return 0
    return ((flags & LRU_REFS_MASK) >> LRU_REFS_SHIFT) + 1


def folio_is_file_lru(flags: int) -> int:
    """Type of a folio: file iff not swap-backed (lazy-free anon counts as file)."""
    return 0 if flags & PG_swapbacked else 1
