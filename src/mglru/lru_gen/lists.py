"""Generation lists: membership and order of folios on `folios[gen][type][zone]`.

include/linux/mmzone.h: struct lru_gen_folio ("lazily sorted" lists) and mm/vmscan.c:
inc_min_seq() / sort_folio() (who goes to the head, who
to the tail). The model keeps, per pfn, one uint32 `PhysMem.lru`:

    bits 29..31  list generation + 1 (0: on no MGLRU list)
    bits  0..28  order key: a larger key is nearer the list head

Adding at the head takes keys from an increasing counter, adding at the tail
from a decreasing one, so a list's tail is its smallest key and no linked list
is needed; when a counter runs out, `renumber` compacts all keys in order.
A list's folios are found by scanning its node's pfns (`tail_first`).

Future optimizations:
1. a per-list index of pfns would make `tail_first` O(list) instead of O(node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen._tail_kernel import list_members
from mglru.lru_gen.helpers import MAX_LRU_BATCH

if TYPE_CHECKING:
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.memory import PhysMem

__all__ = ["LRU_LIST_SHIFT", "ORDER_MASK", "ORDER_MID", "list_gens", "list_add",
           "list_del", "tail_first", "renumber", "reserve_tail", "list_add_one",
           "scan_order"]

LRU_LIST_SHIFT = 29
ORDER_MASK = (1 << LRU_LIST_SHIFT) - 1
ORDER_MID = 1 << (LRU_LIST_SHIFT - 1)


def list_gens(mem: PhysMem, pfns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The generation list each folio is on (-1: none)."""
    return (mem.lru[pfns] >> LRU_LIST_SHIFT).astype(np.int64) - 1


def renumber(mem: PhysMem) -> None:
    """Compact all order keys around the middle, keeping every list's order."""
    listed = np.nonzero(mem.lru >> LRU_LIST_SHIFT)[0]
    keys = mem.lru[listed] & ORDER_MASK
    order = np.argsort(keys, kind="stable")
    start = ORDER_MID - len(listed) // 2
    new = np.empty(len(listed), np.uint32)
    new[order] = np.arange(start, start + len(listed), dtype=np.uint32)
    mem.lru[listed] = (mem.lru[listed] & ~np.uint32(ORDER_MASK)) | new
    mem.order_head = start + len(listed) - 1
    mem.order_tail = start - 1


def reserve_tail(mem: PhysMem, n: int) -> int:
    """Take `n` tail keys; returns the largest (keys are base, base-1, ...)."""
    if mem.order_tail - n < 1:
        renumber(mem)
    base = mem.order_tail
    mem.order_tail -= n
    return base


def list_add(mem: PhysMem, pfns: npt.NDArray[np.int64], gens: npt.NDArray[np.int64] | int,
             at_tail: bool = False) -> None:
    """Put folios on the lists of `gens`, in array order, at the head or the tail.

    Adding one by one at the head leaves the last folio at the head; adding one
    by one at the tail leaves the last folio at the tail.
    """
    n = len(pfns)
    if not n:
        return
    if at_tail:
        base = reserve_tail(mem, n)
        keys = base - np.arange(n, dtype=np.int64)
    else:
        if mem.order_head + n > ORDER_MASK:
            renumber(mem)
        keys = mem.order_head + 1 + np.arange(n, dtype=np.int64)
        mem.order_head += n
    gen_bits = (np.asarray(gens, np.int64) + 1) << LRU_LIST_SHIFT
    mem.lru[pfns] = (gen_bits | keys).astype(np.uint32)


def list_add_one(mem: PhysMem, pfn: int, gen: int) -> None:
    """`list_add` of one folio at the head of the list of `gen`."""
    if mem.order_head + 1 > ORDER_MASK:
        renumber(mem)
    mem.order_head += 1
    mem.lru[pfn] = ((gen + 1) << LRU_LIST_SHIFT) | mem.order_head


def list_del(mem: PhysMem, pfns: npt.NDArray[np.int64]) -> None:
    """Take folios off their lists."""
    mem.lru[pfns] = 0


def tail_first(mem: PhysMem, lruvec: Lruvec, gen: int, type_: int) -> npt.NDArray[np.int64]:
    """Head pfns on list [gen][type] of a lruvec, tail (oldest) first."""
    node = mem.nodes[lruvec.nid]
    packed, descents = list_members(mem.lru, mem.memcg, mem.flags, node.start_pfn, node.fresh,
                                    gen, lruvec.memcg.id, bool(type_))
    # keys are unique, so any sort gives the one order. Keys in long sorted runs
    # (pages faulted in pfn order) suit numpy's stable sort, a merge of runs (4 GiB
    # lruvec: 3.6 ms against 5.7 for its quicksort); keys in no order suit its
    # vectorised quicksort (4 000 folios: 32 us against 134; 262 144: 3.3 ms against 19)
    packed.sort(kind="stable" if descents * 64 < len(packed) else "quicksort")
    return packed & 0xFFFFFFFF


def scan_order(mem: PhysMem, lruvec: Lruvec, gen: int, type_: int) -> list:
    """The cached tail-first order of list [gen][type] a scan pops from:
    `lruvec.scan_cache[(gen, type_)]` = [head pfns, their `lru` words, position, order
    tail when built].

    The keys are renumbered first if a scan could run them out (the cache is then
    dropped), and the order is rebuilt if there is none, it was used up, or a folio
    joined some list's tail since (a tail key moved).
    """
    if mem.order_head + MAX_LRU_BATCH >= ORDER_MASK or mem.order_tail <= MAX_LRU_BATCH:
        renumber(mem)
        lruvec.scan_cache.clear()
    key = (gen, type_)
    c = lruvec.scan_cache.get(key)
    if c is None or c[3] != mem.order_tail or c[2] >= len(c[0]):
        cand = tail_first(mem, lruvec, gen, type_)
        c = lruvec.scan_cache[key] = [cand, mem.lru[cand], 0, mem.order_tail]
    return c
