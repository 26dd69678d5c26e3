"""`scan_list`: a scan goes on past its cached tail order, without seeing its skips twice."""

from __future__ import annotations

import numpy as np
import pytest

from mglru.lru_gen._scan_kernel import scan_list
from mglru.lru_gen.helpers import LRU_REFS_FLAGS_V6_10
from mglru.lru_gen.lists import LRU_LIST_SHIFT
from mglru.mm.page import PG_anon, PG_lru, PG_swapbacked, PG_swapcache

_ANON = PG_lru | PG_anon | PG_swapbacked


def _lists(kinds: dict[int, int], keys: dict[int, int]):
    """Folios `kinds` (pfn -> flags) on the oldest anon list (generation 0), with order
    keys `keys`; returns (flags, gen, lru) and (nr_pages, nr_listed, protected, ctr)."""
    n = max(kinds) + 1
    flags = np.zeros(n, np.uint16)
    gen = np.zeros(n, np.uint8)
    lru = np.zeros(n, np.uint32)
    for pfn, f in kinds.items():
        flags[pfn], gen[pfn] = f, 1
        lru[pfn] = (1 << LRU_LIST_SHIFT) | keys[pfn]
    nr = np.zeros((4, 2), np.int64)
    nr[0, 0] = len(kinds)
    ctr = np.array([max(keys.values()), 1 << 20], np.int64)  # head and tail counters
    return (flags, gen, lru), (nr.copy(), nr, np.zeros(4, np.int64), ctr)


def _tail_first(lru: np.ndarray) -> np.ndarray:
    on = np.flatnonzero(lru >> LRU_LIST_SHIFT == 1)
    return on[np.argsort(lru[on] & ((1 << LRU_LIST_SHIFT) - 1))].astype(np.int64)


@pytest.mark.parametrize("gfp_io", [True, False])
def test_a_scan_goes_on_past_its_cached_order(gfp_io):
    """Folios 1-3 were on the list when its order was cached; 4 and 5 joined at the head
    since. Without IO (gfp_io off) anon folios outside the swap cache are skipped, back
    at the head at the end. The scan runs out of its order, asks for the rest
    (`more`), and goes on through the rebuilt order up to the folios it skipped."""
    cached = {1: _ANON, 2: _ANON | PG_swapcache, 3: _ANON}
    kinds = {**cached, 4: _ANON | PG_swapcache, 5: _ANON}
    folios, lists = _lists(kinds, {3: 10, 2: 11, 1: 12, 4: 20, 5: 21})
    lru = folios[2]
    cand = np.array([3, 2, 1], np.int64)  # tail first, as cached before 4 and 5 came
    out, wb, res = np.zeros(4096, np.int64), np.zeros(4096, np.int64), np.zeros(9, np.int64)
    ctl = (0, 0, 0, False, LRU_REFS_FLAGS_V6_10, 0, gfp_io)
    scan_list((cand, lru[cand].copy()), 0, 4096, folios, lists, ctl, (out, wb, res))
    skipped_first = [] if gfp_io else [3, 1]
    assert res[6] == 1 and res[0] == 3 and res[8] == len(skipped_first)
    rebuilt = _tail_first(lru)
    # the skipped folios are the newest: after 4 and 5
    assert rebuilt.tolist() == [4, 5, *skipped_first]
    scan_list((rebuilt, lru[rebuilt].copy()), 0, int(res[5]), folios, lists, ctl, (out, wb, res))
    scanned, isolated, n_out, _pos, _n_wb, remaining, more, skipped, parked = res.tolist()
    assert more == 0 and scanned == 5 and remaining == 4096 - 5
    if gfp_io:
        assert out[:n_out].tolist() == [3, 2, 1, 4, 5] and skipped == parked == 0
        assert lists[1][0, 0] == 0  # the list is empty
    else:
        assert out[:n_out].tolist() == [2, 4] and skipped == parked == 3
        assert _tail_first(lru).tolist() == [3, 1, 5]  # each skipped once, in scan order


def test_no_more_when_a_budget_ends_the_scan():
    """A scan that isolates MIN_LRU_BATCH folios stops there, order left or not."""
    kinds = {p: _ANON for p in range(1, 80)}
    folios, lists = _lists(kinds, {p: p for p in kinds})
    lru = folios[2]
    cand = np.arange(1, 80, dtype=np.int64)
    out, wb, res = np.zeros(4096, np.int64), np.zeros(4096, np.int64), np.zeros(9, np.int64)
    ctl = (0, 0, 0, False, LRU_REFS_FLAGS_V6_10, 0, True)
    scan_list((cand[:64], lru[cand[:64]].copy()), 0, 4096, folios, lists, ctl, (out, wb, res))
    assert res[1] == 64 and res[6] == 0  # 64 isolated: the batch is full
    res[:] = 0
    scan_list((cand[64:70], lru[cand[64:70]].copy()), 0, 4096, folios, lists, ctl,
              (out, wb, res))
    assert res[1] == 6 and res[6] == 1  # the order ran out with 9 folios unseen
    res[:] = 0
    scan_list((cand[70:], lru[cand[70:]].copy()), 0, 9, folios, lists, ctl, (out, wb, res))
    assert res[1] == 9 and res[5] == 0 and res[6] == 0  # the list is empty
