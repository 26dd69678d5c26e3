"""Anon folios left behind by swappiness-0 aging: the kernel's cold/hot inversion.

The scenario: 4 MiB of anon memory written, `+ 1 0 3 100 1`, a re-read,
`+ 1 0 4 1 1`, `+ 1 0 5 0 1`, `- 1 0 3`. Traced through mm/vmscan.c (v6.12):

1. the walks move the folios' gen field to seq 3, then seq 4 (index 0) while
   they stay on the list they were added to (seq 2, index 2);
2. `+ 1 0 5 0 1`: the walk skips anon VMAs (should_skip_vma: !can_swap) and
   inc_min_seq(LRU_GEN_ANON, can_swap=false) bumps min_seq without moving
   folios ("goto done"): max_seq 6, min_seq [3, 3];
3. `- 1 0 3`: evict_folios() finds the lists of seq 3 and 4 empty (the folios
   are on list index 2) and try_to_inc_min_seq() moves both min_seqs to 5;
   the folios' gen (seq 4) is no longer live, lru_gen_seq_show() shows 0 of
   them; inc_max_seq() documents this ("max_seq+1 can overlap with
   min_seq[LRU_GEN_ANON] if swapping is constrained ... cold/hot inversion
   happens"): when max_seq reaches index 0 again (seq 8) they count as the
   youngest generation.

Before v6.14 the written folios enter max_seq (seq 3, lru_gen_add_folio()), so
they sit on list index 3: `- 1 0 3` finds them there, sort_folio() moves them to
their generation (seq 4) and try_to_inc_min_seq() stops at it: nothing is
stranded (second test).
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_checks import LRU_GEN, check_invariants, parse_lru_gen

from mglru import SimKernel
from mglru.presets import PRESETS

MiB = 1 << 20


def _age_with_swappiness_zero(preset: str):  # noqa: ANN202
    """4 MiB written, `+ 1 0 3 100 1`, a re-read, `+ 1 0 4 1 1`, `+ 1 0 5 0 1`."""
    k = SimKernel(preset, node_bytes=(64 * MiB,), debug=True)
    p = k.spawn()
    a = p.mmap(4 * MiB)
    p.access(a, 4 * MiB, write=True)
    lv = k.lruvec(1, 0)
    k.write(LRU_GEN, "+ 1 0 3 100 1")
    p.access(a, 4 * MiB)
    k.write(LRU_GEN, "+ 1 0 4 1 1")
    k.write(LRU_GEN, "+ 1 0 5 0 1")
    assert (lv.max_seq, lv.min_seq) == (6, [3, 3])
    return k, lv


V6_14_PLACEMENT = sorted(p for p, c in PRESETS.items() if c.workingset_folio_seq)
OLD_PLACEMENT = sorted(p for p, c in PRESETS.items() if not c.workingset_folio_seq)


@pytest.mark.parametrize("preset", V6_14_PLACEMENT)
def test_swappiness_zero_aging_strands_anon_like_the_kernel(preset: str) -> None:
    k, lv = _age_with_swappiness_zero(preset)
    k.write(LRU_GEN, "- 1 0 3")
    lo, hi = k.mem.nodes[0].start_pfn, k.mem.nodes[0].fresh
    gens = k.mem.gen[lo:hi]
    assert np.count_nonzero(gens == 4 % 4 + 1) == 1024  # gen field: seq 4
    assert (lv.max_seq, lv.min_seq) == (6, [5, 5])  # seq 4 is not live
    shown = parse_lru_gen(k.read(LRU_GEN))[1].nodes[0]
    assert sum(g.anon for g in shown.gens) == 0
    check_invariants(k)  # the checker accepts what the kernel does
    k.write(LRU_GEN, "+ 1 0 6 0 1")
    k.write(LRU_GEN, "+ 1 0 7 0 1")  # max_seq 8 shares index 0: the folios are youngest
    shown = parse_lru_gen(k.read(LRU_GEN))[1].nodes[0]
    assert {g.seq: g.anon for g in shown.gens}[8] == 1024
    check_invariants(k)


@pytest.mark.parametrize("preset", OLD_PLACEMENT)
def test_swappiness_zero_aging_before_v6_14_strands_nothing(preset: str) -> None:
    """Faults put the folios on max_seq's list (seq 3): eviction of seq 3 sorts them
    into seq 4, which stays live as min_seq: max_seq 6, min_seq [4, 4], 1024 shown."""
    k, lv = _age_with_swappiness_zero(preset)
    k.write(LRU_GEN, "- 1 0 3")
    assert (lv.max_seq, lv.min_seq) == (6, [4, 4])
    shown = parse_lru_gen(k.read(LRU_GEN))[1].nodes[0]
    assert {g.seq: g.anon for g in shown.gens}[4] == 1024
    check_invariants(k)
