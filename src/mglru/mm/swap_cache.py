"""The swap cache and the swap readahead windows.

Kernel: mm/swap_state.c (6.1, 6.12): the swap cache (an address space indexed by
slot), swap_cache_get_folio() (a lookup that counts readahead hits),
__swapin_nr_pages() (the adaptive window), swapin_nr_pages() (cluster
readahead, one window for the whole device) and swap_ra_info() (6.1) /
swap_vma_ra_win() (6.12) (VMA readahead, one window per VMA).

Mechanism: folios in the swap cache are few next to memory, so the cache is
two dicts (slot -> head pfn and back) plus the set of folios that still carry
PG_readahead (the flags word has no free bit). PG_swapcache itself is set on
the folio by the callers (`mglru.paths.swapin`), which own the policy; this
module only keeps the index and does the window arithmetic.
"""

from __future__ import annotations

from mglru.mm.page import PAGE_SHIFT, PMD_SIZE

__all__ = ["SwapCache", "swapin_nr_pages", "cluster_window", "vma_window",
           "SWAP_RA_ORDER_CEILING", "SWAP_RA_HITS_MAX"]

#: the largest VMA readahead window is 1 << 5 pages on 64-bit (mm/swap_state.c)
SWAP_RA_ORDER_CEILING = 5
#: hits are kept in PAGE_SHIFT / 2 bits of vma->swap_readahead_info
SWAP_RA_HITS_MAX = (1 << (PAGE_SHIFT // 2)) - 1


class SwapCache:
    """Which folio caches which slot; `readahead` holds folios with PG_readahead."""

    def __init__(self) -> None:
        self.folio: dict[int, int] = {}
        self.slot: dict[int, int] = {}
        self.readahead: set[int] = set()

    def __len__(self) -> int:
        return len(self.folio)

    def lookup(self, slot: int) -> int:
        """The head pfn caching `slot`, or -1."""
        return self.folio.get(slot, -1)

    def add(self, slot: int, pfn: int, readahead: bool = False) -> None:
        """add_to_swap_cache() of a new folio (the caller sets PG_swapcache)."""
        self.folio[slot] = pfn
        self.slot[pfn] = slot
        if readahead:
            self.readahead.add(pfn)

    def delete(self, pfn: int) -> int:
        """__delete_from_swap_cache(): forget the folio; returns the slot it cached."""
        slot = self.slot.pop(pfn)
        del self.folio[slot]
        self.readahead.discard(pfn)
        return slot

    def test_clear_readahead(self, pfn: int) -> bool:
        """folio_test_clear_readahead()."""
        if pfn in self.readahead:
            self.readahead.remove(pfn)
            return True
        return False


def swapin_nr_pages(prev: int, cur: int, hits: int, max_pages: int, prev_win: int) -> int:
    """__swapin_nr_pages() (mm/swap_state.c, 6.1 = 6.12): the next window in pages.

    Without readahead hits it reads 2 pages only when `cur` is next to `prev`
    (either side), else 1; with hits, hits + 2 rounded up to a power of two of
    at least 4; never above `max_pages`, never below half the previous window.
    """
    pages = hits + 2
    if pages == 2:
        if cur != prev + 1 and cur != prev - 1:
            pages = 1
    else:
        roundup = 4
        while roundup < pages:
            roundup <<= 1
        pages = roundup
    pages = min(pages, max_pages)
    return max(pages, prev_win // 2)


def cluster_window(offset: int, nr: int, max_slot: int) -> range:
    """The slots swap_cluster_readahead() reads around `offset`: the aligned block of
    `nr` (a power of two) slots holding it, without slot 0 (the header) and not past
    the device's last slot."""
    mask = nr - 1
    start = max(offset & ~mask, 1)
    end = min(offset | mask, max_slot)
    return range(start, end + 1)


def vma_window(faddr: int, prev_faddr: int, win: int, vm_start: int, vm_end: int
               ) -> tuple[int, int]:
    """[start, end) addresses of a VMA readahead window of `win` pages around `faddr`.

    mm/swap_state.c swap_vma_ra_win() (6.12) / swap_ra_info() (6.1): forward from
    the fault after a fault on the page before it, backward after one on the
    page after it, else centred ((win - 1) / 2 pages before); clamped to the VMA
    and to the page table (the 2 MiB block) of the fault.
    """
    page = 1 << PAGE_SHIFT
    if faddr == prev_faddr + page:
        left = faddr
    elif prev_faddr == faddr + page:
        left = faddr - (win << PAGE_SHIFT) + page
    else:
        left = faddr - (((win - 1) // 2) << PAGE_SHIFT)
    right = left + (win << PAGE_SHIFT)
    block = faddr & ~(PMD_SIZE - 1)
    return max(left, 0, vm_start, block), min(right, vm_end, block + PMD_SIZE)
