"""Bloom filters: which PTE tables are worth scanning next time. mm/vmscan.c: update_bloom_filter().

Mechanism: two filters per lruvec (`mm_state.filters`), 2**15 bits and k = 2
keys each, indexed by `filter_gen_from_seq(seq)`. A walk closing seq S reads
filter[S % 2] and fills filter[(S + 1) % 2], which is cleared when the first mm
of the iteration for S is taken. A missing filter tests true and ignores
inserts. The key is the kernel's `hash_ptr()` (GOLDEN_RATIO_64 multiply, top 30
bits) of a synthetic PMD-entry address `(mm id << 36) | (pmd index << 3)`, so
false positives happen at the kernel's rates (about 1/5 at 10k entries with
m = 32768, k = 2).

Future optimizations:
1. none needed: the filter is 4 KiB and tested inside the compiled walk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mglru.lru_gen._walk_kernel import _bloom_set, _bloom_test, bloom_keys, bloom_set_many
from mglru.lru_gen.helpers import filter_gen_from_seq
from mglru.lru_gen.lruvec import MmState

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["reset_bloom_filter", "test_bloom_filter", "update_bloom_filter",
           "update_bloom_filters"]


def reset_bloom_filter(mm_state: MmState, seq: int) -> None:
    """Clear (or allocate) the filter of `seq`."""
    gen = filter_gen_from_seq(seq)
    filt = mm_state.filters[gen]
    if filt is None:
        mm_state.filters[gen] = MmState.new_filter()
    else:
        filt[:] = 0


def test_bloom_filter(mm_state: MmState, seq: int, mm_id: int, pmd_vpn2: int) -> bool:
    """Whether the PMD entry may be in the filter of `seq` (absent filter: true)."""
    filt = mm_state.filters[filter_gen_from_seq(seq)]
    if filt is None:
        return True
    k0, k1 = bloom_keys(mm_id, pmd_vpn2)
    return bool(_bloom_test(filt, k0, k1))


def update_bloom_filter(mm_state: MmState, seq: int, mm_id: int, pmd_vpn2: int) -> None:
    """Insert a PMD entry into the filter of `seq` (no-op if absent)."""
    filt = mm_state.filters[filter_gen_from_seq(seq)]
    if filt is not None:
        k0, k1 = bloom_keys(mm_id, pmd_vpn2)
        _bloom_set(filt, k0, k1)


def update_bloom_filters(mm_state: MmState, seq: int, pairs: npt.NDArray[np.int64]) -> None:
    """`update_bloom_filter` of each (mm id, PMD index) row of `pairs`, in one call."""
    filt = mm_state.filters[filter_gen_from_seq(seq)]
    if filt is not None:
        bloom_set_many(filt, pairs)
