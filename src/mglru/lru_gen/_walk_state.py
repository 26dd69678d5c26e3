"""The state the compiled aging walk is handed, grouped as the kernel groups it.

The kernel's walk reaches everything through a few structures: the page
tables, the folios (`struct folio` via `pfn_folio()`), and `struct
lru_gen_mm_walk` (mm/vmscan.c: the walk's lruvec, `max_seq`, `nr_pages`,
`mm_stats`, `can_swap`, `force_scan`), plus, with the seed series (v4 2/7),
the mm's MMU notifier subscribers. The compiled walk takes the same groups as
named tuples (read-only containers of arrays and scalars: the arrays are
written in place). A named tuple costs nothing in the compiled code;
`benchmarks/walk_state_layout.py` measures it against structrefs and
structured-array records.

`SecondaryMmu` carries the behaviour of the modelled version as flags named
for what they do (the caller, `walk.walk_mm`, derives them from the preset):

test_before_clear
    seed v4 (2/7): an old PTE asks `mmu_notifier_test_young()` first and is
    MM_LEAF_OLD if no MMU saw an access; a candidate then gets
    `mmu_notifier_clear_young()` and is young whatever it answers.
clear_notify
    v6.12 `ptep_clear_young_notify()`: every candidate (young, or old in an
    mm with notifiers) passing `get_pfn_folio()` gets one clear_young call
    and is young if either MMU saw an access.
batch_calls
    the v3 bitmap flow: one clear_young call covers a 64-PTE window.

Secondary MMUs are seen through *segments*: a run of host virtual pages
[vpn0, vpn1) whose SPTE state lives in `sptes[arr][gfn0 + vpn - vpn0]` (no
SPTEs past the array's end), for subscriber `sub`. The SPTE arrays
themselves travel apart, in a numba typed list, since a typed list cannot be
handed to the walk's helpers compiled without reference counting.

Future optimizations:
1. a structref for `WalkArgs` once the walk's scalars change during a walk
   (today they are fixed per call).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["PageTable", "Folios", "WalkArgs", "SecondaryMmu", "PteScratch", "new_scratch"]

_A = npt.NDArray[np.int64]


class PageTable(NamedTuple):
    """An mm's PMD entries (one row per PMD) and the PTE tables they point to."""

    pmd_addr: _A
    pmd_state: npt.NDArray[np.uint8]
    pmd_flags: npt.NDArray[np.uint8]
    pmd_pfn: _A
    pte_pfn: npt.NDArray
    pte_flags: npt.NDArray[np.uint8]
    #: rows whose PTE table lock another CPU holds (spin_trylock() fails)
    ptl_busy: npt.NDArray[np.uint8]


class Folios(NamedTuple):
    """The per-pfn fields of `struct folio` the walk reads and writes."""

    flags: npt.NDArray[np.uint16]
    gen: npt.NDArray[np.uint8]
    memcg: npt.NDArray


class WalkArgs(NamedTuple):
    """`struct lru_gen_mm_walk` and what `walk_mm` decided for this mm."""

    #: the lruvec's node (pgdat) as a pfn range, and its memcg
    node_start: int
    node_end: int
    memcg_id: int
    #: lru_gen_from_seq(max_seq): where young folios go
    new_gen: int
    can_swap: bool
    force_scan: bool
    #: clear and test the non-leaf PMD accessed bit (should_clear_pmd_young())
    nonleaf_clear: bool
    #: get_pte_pfn() / get_pmd_pfn() reject pfns outside the node (seed v4,
    #: v6.12; v6.10 leaves it to get_pfn_folio(), after an old PTE is counted)
    get_pfn_checks_node: bool
    #: v6.14 two-step promotion, and the flags a promotion clears
    two_step: bool
    refs_flags: int
    mm_id: int
    #: the walked VMAs' page ranges, in address order
    rng_start: _A
    rng_end: _A
    #: the Bloom filters of max_seq (read) and max_seq + 1 (write)
    bloom_read: npt.NDArray[np.uint64]
    has_read: bool
    bloom_write: npt.NDArray[np.uint64]
    has_write: bool
    #: suitable_to_scan(): a table carries over if young * this >= total
    suitable_n: int
    #: a PTE table whose lock is contended carries over unscanned (v6.14); before,
    #: walk_pte_range() returns false on a failed spin_trylock() (6.1-6.13)
    contended_suitable: bool
    #: walk->nr_pages deltas [gen][type] and walk->mm_stats
    nr_pages: npt.NDArray[np.int64]
    mm_stats: npt.NDArray[np.int64]


class SecondaryMmu(NamedTuple):
    """The mm's notifier subscribers as the walk sees them (see the module)."""

    #: notifier calls are made from the walk at all (v4: Kconfig and cap 0x8)
    on: bool
    has_notifiers: bool
    test_before_clear: bool
    clear_notify: bool
    batch_calls: bool
    seg_vpn0: _A
    seg_vpn1: _A
    seg_gfn0: _A
    seg_arr: _A
    seg_sub: _A
    #: per subscriber call counts (SEC_* columns of `_walk_secondary`)
    sec_stats: npt.NDArray[np.int64]


class PteScratch(NamedTuple):
    """Per-PTE scratch of the phased notifier engine, one slot per PTE of a table."""

    cls: npt.NDArray[np.int8]
    answered: npt.NDArray[np.int8]
    fnd: npt.NDArray[np.int64]
    ysub: npt.NDArray[np.int8]
    heads: npt.NDArray[np.int64]
    #: per subscriber: the current v3 batch already answered young
    win_young: npt.NDArray[np.int8]
    #: [0]: the 64-PTE window of the last v3 batch call (-1: none yet)
    last_window: npt.NDArray[np.int64]


def new_scratch(nr_subs: int) -> PteScratch:
    """Scratch for one walk of an mm with `nr_subs` subscribers."""
    return PteScratch(np.zeros(512, np.int8), np.zeros(512, np.int8), np.zeros(512, np.int64),
                      np.zeros(512, np.int8), np.zeros(512, np.int64),
                      np.zeros(nr_subs, np.int8), np.full(1, -1, np.int64))
