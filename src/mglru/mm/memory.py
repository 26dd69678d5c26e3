"""Physical memory: NUMA nodes, pfn ranges, per-pfn folio state and the allocator.

include/linux/mmzone.h, include/linux/mm_types.h (Node, Folio). A folio is identified by
the pfn of its first page;
PMD-sized folios (THP, 512 pages, 512-aligned) carry `PG_head` on the head
pfn and `PG_tail` on the others, and all folio state lives on the head.

Per-pfn state, 9 bytes per 4 KiB page:

=========  ======  =====================================================
array      dtype   meaning
=========  ======  =====================================================
flags      uint16  PG_* bits and the 2-bit refs field (mm.page)
gen        uint8   the folio's gen field: gen index + 1, 0 = not on MGLRU
lru        uint32  which generation *list* holds it and where (see
                   lru_gen.lists); lists are sorted lazily, so the list
                   may lag `gen` (include/linux/mmzone.h: struct lru_gen_folio)
memcg      uint16  id of the memcg the folio is charged to (0 = none)
=========  ======  =====================================================

pfn 0 is the zero page and pfns 512..1023 the huge zero page; both are
reserved and never on an LRU list (`is_zero_pfn`).

Future optimizations:
1. a per-lruvec pfn index would make list scans O(lruvec) instead of
   O(node high-water mark).
"""

from __future__ import annotations

import math
from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from mglru.mm.page import (
    HPAGE_PMD_NR,
    HUGE_ZERO_PFN,
    NR_RESERVED_PFNS,
    PAGE_SHIFT,
    PAGE_SIZE,
    ZERO_PFN,
    is_zero_pfn,
)

__all__ = ["PhysMem", "Node", "OutOfMemory", "ZERO_PFN", "HUGE_ZERO_PFN"]


class OutOfMemory(MemoryError):
    """No node could satisfy an allocation (the caller decides: reclaim or OOM)."""


@dataclass(slots=True)
class Node:
    """A NUMA node (pgdat): a pfn range and its allocator cursor."""

    nid: int
    start_pfn: int
    end_pfn: int
    #: next never-used pfn; everything below was handed out at least once
    fresh: int
    #: freed 4 KiB pfns, used LIFO before fresh memory
    free: list[npt.NDArray[np.int64]]
    #: heads of whole, PMD-aligned free blocks gathered from `free` (order-9
    #: buddies), used first by THP faults and last by 4 KiB allocations
    free_thp: list[int] = field(default_factory=list)
    #: pages on `free` and `free_thp`
    nr_free_listed: int = 0
    #: zone watermarks in pages (`node_watermarks`): below low kswapd wakes, it
    #: reclaims up to high; an allocation that would go below min reclaims directly
    wmark_min: int = 0
    wmark_low: int = 0
    wmark_high: int = 0
    #: `free` changes since the last fruitless search for a whole block in it
    free_gen: int = 0
    merge_failed_gen: int = -1

    @property
    def spanned_pages(self) -> int:
        """Number of pfns in the node."""
        return self.end_pfn - self.start_pfn

    @property
    def nr_free(self) -> int:
        """Pages not allocated."""
        return self.end_pfn - self.fresh + self.nr_free_listed


#: /proc/sys/vm/watermark_scale_factor's default (mm/page_alloc.c)
WATERMARK_SCALE_FACTOR = 10


def node_watermarks(managed: list[int], scale_factor: int = WATERMARK_SCALE_FACTOR
                    ) -> list[tuple[int, int, int]]:
    """(min, low, high) pages per node, as the kernel sizes them at boot.

    mm/page_alloc.c: calculate_min_free_kbytes() makes min_free_kbytes
    sqrt(16 x lowmem KiB), clamped to [128, 262144]; __setup_per_zone_wmarks()
    gives each zone (here: each node, one zone per node) a share of it in
    proportion to its managed pages, and spaces low and high above min by
    max(min / 4, managed x watermark_scale_factor / 10000).
    """
    total = sum(managed)
    if total <= 0:
        return [(0, 0, 0) for _ in managed]
    min_free_kbytes = min(max(math.isqrt(total * (PAGE_SIZE >> 10) * 16), 128), 262144)
    min_free_pages = min_free_kbytes >> (PAGE_SHIFT - 10)
    out = []
    for pages in managed:
        wmin = min_free_pages * pages // total
        gap = max(wmin >> 2, pages * scale_factor // 10000)
        out.append((wmin, wmin + gap, wmin + 2 * gap))
    return out


class PhysMem:
    """All physical memory of the simulated machine."""

    def __init__(self, node_bytes: tuple[int, ...]) -> None:
        self.nodes: list[Node] = []
        start = 0
        for nid, nbytes in enumerate(node_bytes):
            end = start + (nbytes >> PAGE_SHIFT)
            fresh = start + (NR_RESERVED_PFNS if nid == 0 else 0)
            self.nodes.append(Node(nid, start, end, fresh, []))
            start = end
        self.max_pfn = start
        managed = [n.end_pfn - n.fresh for n in self.nodes]
        for node, (wmin, low, high) in zip(self.nodes, node_watermarks(managed), strict=True):
            node.wmark_min, node.wmark_low, node.wmark_high = wmin, low, high
        # np.zeros maps lazily: untouched memory costs no RSS
        self.flags = np.zeros(self.max_pfn, np.uint16)
        self.gen = np.zeros(self.max_pfn, np.uint8)
        self.lru = np.zeros(self.max_pfn, np.uint32)
        #: order-key counters of lru_gen.lists (head grows up, tail grows down)
        self.order_head = 1 << 28
        self.order_tail = (1 << 28) - 1
        self.memcg = np.zeros(self.max_pfn, np.uint16)
        #: lazily built reverse-map hints (mm.rmap)
        self.rmap_hint: npt.NDArray[np.uint32] | None = None
        #: lazily allocated PG_idle / PG_young bits (mm.page_idle)
        self.page_idle: npt.NDArray[np.uint8] | None = None
        self._node_starts = np.array([n.start_pfn for n in self.nodes], np.int64)
        self._node_start_list = [n.start_pfn for n in self.nodes]

    # -- lookups ----------------------------------------------------------------
    def pfn_to_nid(self, pfn: int) -> int:
        """Node of a pfn."""
        return bisect_right(self._node_start_list, pfn) - 1

    def pfns_to_nid(self, pfns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Nodes of many pfns."""
        return np.searchsorted(self._node_starts, pfns, side="right") - 1

    is_zero_pfn = staticmethod(is_zero_pfn)

    def high_water(self, nid: int) -> int:
        """One past the highest pfn of node `nid` ever allocated."""
        return self.nodes[nid].fresh

    # -- allocation --------------------------------------------------------------
    def alloc_pages(self, nid: int, n: int) -> npt.NDArray[np.int64]:
        """Allocate `n` 4 KiB pages, preferring node `nid`, falling back in node order.

        Raises:
            OutOfMemory: fewer than `n` free pages in the whole machine; nothing
                is allocated then.
        """
        if n == 0:
            return np.empty(0, np.int64)
        order = [nid] + [m.nid for m in self.nodes if m.nid != nid]
        if n == 1:  # a fault's page: the same choice as below, on Python ints
            return np.array([self.alloc_page(nid)], np.int64)
        if sum(self.nodes[m].nr_free for m in order) < n:
            raise OutOfMemory(f"cannot allocate {n} pages")
        parts: list[npt.NDArray[np.int64]] = []
        need = n
        for m in order:
            node = self.nodes[m]
            while need and node.free:
                chunk = node.free[-1]
                take = min(need, len(chunk))
                parts.append(chunk[len(chunk) - take:])
                if take == len(chunk):
                    node.free.pop()
                else:
                    node.free[-1] = chunk[: len(chunk) - take]
                node.nr_free_listed -= take
                need -= take
            take = min(need, node.end_pfn - node.fresh)
            if take:
                parts.append(np.arange(node.fresh, node.fresh + take, dtype=np.int64))
                node.fresh += take
                need -= take
            while need and node.free_thp:  # split a free PMD block into 4 KiB pages
                head = node.free_thp.pop()
                take = min(need, HPAGE_PMD_NR)
                parts.append(np.arange(head, head + take, dtype=np.int64))
                if take < HPAGE_PMD_NR:
                    node.free.append(np.arange(head + take, head + HPAGE_PMD_NR, dtype=np.int64))
                    node.free_gen += 1
                node.nr_free_listed -= take
                need -= take
            if not need:
                break
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def alloc_page(self, nid: int) -> int:
        """`alloc_pages(nid, 1)`: the pfn, on Python ints.

        Raises:
            OutOfMemory: no free page in the whole machine.
        """
        for m in [nid] + [m.nid for m in self.nodes if m.nid != nid]:
            node = self.nodes[m]
            if node.free:
                chunk = node.free[-1]
                if len(chunk) == 1:
                    node.free.pop()
                else:
                    node.free[-1] = chunk[:-1]
                node.nr_free_listed -= 1
                return int(chunk[-1])
            if node.fresh < node.end_pfn:
                node.fresh += 1
                return node.fresh - 1
            if node.free_thp:  # split a free PMD block into 4 KiB pages
                head = node.free_thp.pop()
                node.free.append(np.arange(head + 1, head + HPAGE_PMD_NR, dtype=np.int64))
                node.free_gen += 1
                node.nr_free_listed -= 1
                return head
        raise OutOfMemory("cannot allocate 1 pages")

    def alloc_thp(self, nid: int) -> int:
        """Allocate one 512-aligned PMD-sized block; -1 if no node has one.

        Never-used memory comes first, then whole aligned blocks gathered from
        the freed pages (a freed THP, or 512 freed neighbours: the buddy
        allocator merges free buddies up to order 9, mm/page_alloc.c
        __free_one_page); the preferred node before the others. THP allocation
        never falls back to 4 KiB pages here; the fault handler does that (as
        the kernel falls back to small pages).
        """
        order = [nid] + [m.nid for m in self.nodes if m.nid != nid]
        for m in order:
            node = self.nodes[m]
            head = -(-node.fresh // HPAGE_PMD_NR) * HPAGE_PMD_NR
            if head + HPAGE_PMD_NR <= node.end_pfn:
                if head > node.fresh:  # the alignment gap becomes free 4 KiB pages
                    self.free_pages(np.arange(node.fresh, head, dtype=np.int64), m)
                node.fresh = head + HPAGE_PMD_NR
                return head
            if node.free_thp or self._merge_blocks(node):  # this node before the next
                node.nr_free_listed -= HPAGE_PMD_NR
                return node.free_thp.pop()
        return -1

    @staticmethod
    def _merge_blocks(node: Node) -> int:
        """Move every whole aligned block of the 4 KiB free lists to `free_thp`.

        Returns how many; a search that finds none is not repeated until the
        free lists change, so failing THP faults stay cheap.
        """
        if node.merge_failed_gen == node.free_gen or not node.free:
            return 0
        pfns = np.concatenate(node.free)
        blocks, counts = np.unique(pfns >> 9, return_counts=True)
        full = blocks[counts == HPAGE_PMD_NR]
        node.merge_failed_gen = node.free_gen
        if not len(full):
            return 0
        keep = ~np.isin(pfns >> 9, full)
        node.free = [pfns[keep]] if keep.any() else []
        node.free_thp.extend((full[::-1] << 9).tolist())  # lowest block first out
        return len(full)

    def free_pages(self, pfns: npt.NDArray[np.int64], nid: int | None = None) -> None:
        """Return pages to their nodes' free lists and clear their folio state."""
        if len(pfns) == 0:
            return
        self.flags[pfns] = 0
        self.gen[pfns] = 0
        self.lru[pfns] = 0
        self.memcg[pfns] = 0
        if self.page_idle is not None:
            self.page_idle[pfns] = 0
        nids = self.pfns_to_nid(pfns) if nid is None else np.full(len(pfns), nid)
        for m in np.unique(nids):
            chunk = np.asarray(pfns[nids == m], np.int64)
            node = self.nodes[int(m)]
            node.free.append(chunk)
            node.nr_free_listed += len(chunk)
            node.free_gen += 1
