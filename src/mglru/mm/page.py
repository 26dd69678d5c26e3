"""Page geometry, folio flag bits, page-table entry bits and the zero page.

The machine's vocabulary, from include/asm-generic/pgtable (geometry),
include/linux/page-flags.h (PG_*), include/linux/page-flags-layout.h (the
MGLRU fields stored in folio->flags) and arch/x86/include/asm/pgtable_types.h
(the PTE bits the model keeps). Everything above `mm` (the MGLRU policy, KVM,
the tools) takes these names from here.

Mechanism: a folio's state is a handful of bits in per-pfn numpy arrays
(`PhysMem.flags`, `PhysMem.gen`, ...); a page table is a row of 512 PTE bytes
per PMD (`PageTables`). The bit values are the model's own; only their
meaning is the kernel's.

Future optimizations:
1. pack the refs field into the gen byte if memory per page ever matters more
   than clarity.
"""

from __future__ import annotations

__all__ = [
    "PAGE_SHIFT", "PAGE_SIZE", "PTRS_PER_PTE", "PTRS_PER_PMD", "PMD_SHIFT", "PMD_SIZE",
    "PUD_SHIFT", "PUD_SIZE", "HPAGE_PMD_NR", "FIRST_USER_ADDRESS", "TASK_SIZE",
    "PG_referenced", "PG_workingset", "PG_active", "PG_dirty", "PG_swapbacked",
    "PG_swapcache", "PG_reclaim", "PG_lru", "PG_unevictable", "PG_writeback", "PG_head",
    "PG_tail", "PG_anon", "PG_mlocked", "LRU_REFS_WIDTH", "LRU_REFS_SHIFT", "LRU_REFS_MASK",
    "PTE_PRESENT", "PTE_YOUNG", "PTE_DIRTY", "PTE_SPECIAL", "PTE_WRITE", "PTE_SWAP",
    "PMD_NONE", "PMD_TABLE", "PMD_LEAF", "PMD_HUGE_ZERO",
    "ZERO_PFN", "HUGE_ZERO_PFN", "NR_RESERVED_PFNS", "is_zero_pfn", "folio_is_file_lru",
]

# --- page geometry (x86-64, 4-level paging) -------------------------------------
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
#: the user address space of a task (x86-64 with 4-level paging: 128 TiB)
TASK_SIZE = 1 << 47

# --- folio flag bits (PhysMem.flags, uint16) --------------------------------------
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
#: LRU_REFS_WIDTH bits of folio->flags count accesses through file descriptors
#: (page-flags-layout.h); the generation itself lives in `PhysMem.gen`
LRU_REFS_WIDTH = 2
LRU_REFS_SHIFT = 14
LRU_REFS_MASK = ((1 << LRU_REFS_WIDTH) - 1) << LRU_REFS_SHIFT

# --- PTE bits (PageTables, uint8) ---------------------------------------------------
PTE_PRESENT = 1 << 0
PTE_YOUNG = 1 << 1
PTE_DIRTY = 1 << 2
PTE_SPECIAL = 1 << 3
PTE_WRITE = 1 << 4
#: not present, the pfn column holds a swap slot (a swap entry)
PTE_SWAP = 1 << 5

# --- PMD states ----------------------------------------------------------------------
PMD_NONE = 0  # no PTE table and no leaf
PMD_TABLE = 1  # points to a PTE table (non-leaf)
PMD_LEAF = 2  # transparent huge page leaf
PMD_HUGE_ZERO = 3  # the huge zero page

# --- the zero pages --------------------------------------------------------------------
#: pfn 0 is the zero page; pfns 512..1023 are the huge zero page
ZERO_PFN = 0
HUGE_ZERO_PFN = HPAGE_PMD_NR
#: pfns below this are reserved for the zero pages and never on an LRU list
NR_RESERVED_PFNS = 2 * HPAGE_PMD_NR


def is_zero_pfn(pfn: int) -> bool:
    """is_zero_pfn() or a page of the huge zero page (mm/huge_memory.c)."""
    return pfn < NR_RESERVED_PFNS


def folio_is_file_lru(flags: int) -> int:
    """Type of a folio: file iff not swap-backed (lazy-free anon counts as file).

    include/linux/mm_inline.h: folio_is_file_lru().
    """
    return 0 if flags & PG_swapbacked else 1
