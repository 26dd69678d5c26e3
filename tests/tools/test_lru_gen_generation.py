"""find_generation under both rules (spec §7.1-7.3), against an independent reference."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, strategies as st

from mglru.tools.lru_gen import (
    GenerationNotFound,
    GenerationStats,
    MemcgStats,
    NodeStats,
    find_generation,
    find_generation_v4,
    lru_gen_find_generation,
)


def memcg(*nodes: dict[int, int]) -> MemcgStats:
    """A memcg whose node i lists {seq: pages} (all pages anon)."""
    return MemcgStats(42, "/t", tuple(
        NodeStats(nid, tuple(GenerationStats(s, 0, n, 0) for s, n in sorted(gens.items())))
        for nid, gens in enumerate(nodes)))


# -- the reference: fractions, explicit ranges, no integer-division shortcuts -------------
def reference(stats: MemcgStats, total: int, rules: str) -> int | None:
    """None stands for the v4 failure."""
    seqs = [g.seq for n in stats.nodes for g in n.gens]
    if not seqs:
        return None if rules == "v4" else -1

    def pages(seq: int) -> int:
        return sum(g.nr_anon + g.nr_file for n in stats.nodes for g in n.gens if g.seq == seq)

    if rules == "v4":
        for seq in range(min(seqs), max(seqs)):  # newest excluded
            if pages(seq) > Fraction(total, 2):
                return seq
        return None
    for share in (Fraction(9, 10), Fraction(1, 2)):
        for seq in range(min(seqs), max(seqs) + 1):  # newest included
            if pages(seq) > share * total:
                return seq
    return -1


# -- boundary cases, computed by hand -------------------------------------------------------
@pytest.mark.parametrize(("nodes", "total", "expected"), [
    (({5: 6, 6: 4},), 10, 5),            # 6 > 5
    (({5: 5, 6: 5},), 10, None),         # exactly half is not more than half; 6 is newest
    (({5: 6, 6: 5},), 11, 5),            # 6 > 5.5
    (({5: 5, 6: 6},), 11, None),         # majority only in the newest: v4 misses it
    (({5: 0, 6: 6, 7: 0},), 11, 6),
    (({5: 3, 6: 0, 7: 0}, {6: 4, 7: 0}), 6, 6),  # seq 6 sums both nodes: 4 > 3
    (({7: 11},), 11, None),              # a single generation is also the newest
    ((), 10, None),                      # nothing listed
])
def test_v4_boundaries(nodes, total, expected):
    """v4: more than total/2, scanning min..max-1; none is a failure."""
    stats = memcg(*nodes)
    assert reference(stats, total, "v4") == expected
    if expected is None:
        with pytest.raises(GenerationNotFound, match=f"majority of {total} pages"):
            find_generation(stats, total, "v4")
    else:
        assert find_generation(stats, total, "v4") == expected
        assert find_generation_v4(stats, total) == expected


@pytest.mark.parametrize(("nodes", "total", "expected"), [
    (({3: 10},), 10, 3),                 # newest included: 10 > 9
    (({3: 9, 4: 1},), 10, 3),            # exactly 90 % misses; 9 > 5 hits at 50 %
    (({3: 9, 4: 10},), 10, 4),           # exactly 90 % is passed over for a later 100 %
    (({3: 1, 4: 9},), 10, 4),            # 50 % fallback, in the newest
    (({3: 10, 4: 10},), 11, 3),          # 10 > 9.9 at 90 %
    (({3: 5, 4: 5},), 10, -1),           # exactly half is not enough either
    (({1: 3, 2: 3, 3: 4},), 10, -1),
    (({8: 0, 9: 0}, {9: 10}), 10, 9),    # node 1 alone carries seq 9
    ((), 10, -1),
])
def test_upstream_boundaries(nodes, total, expected):
    """upstream: more than 90 %, then more than 50 %, min..max inclusive; -1 if none."""
    stats = memcg(*nodes)
    assert reference(stats, total, "upstream") == expected
    assert find_generation(stats, total, "upstream") == expected


def test_upstream_util_threshold_is_strict():
    """lru_gen_find_generation(stats, pages): first seq with strictly more than `pages`."""
    stats = memcg({3: 4, 4: 7, 5: 7})
    assert lru_gen_find_generation(stats, 3) == 3
    assert lru_gen_find_generation(stats, 4) == 4
    assert lru_gen_find_generation(stats, 6) == 4
    assert lru_gen_find_generation(stats, 7) == -1


def test_gaps_in_the_seq_range_are_scanned():
    """min..max runs over numbers; a seq listed on no node has 0 pages."""
    stats = memcg({2: 1}, {4: 1, 5: 9})
    assert lru_gen_find_generation(stats, 8) == 5
    assert find_generation_v4(memcg({2: 1}, {4: 9, 6: 0}), 10) == 4


def test_unknown_rules_are_rejected():
    """The rules name must be one we know, and the error lists them."""
    with pytest.raises(ValueError, match="v4, upstream; got 'v5'"):
        find_generation(memcg({1: 1}), 1, "v5")


_nodes = st.lists(
    st.dictionaries(st.integers(0, 12), st.integers(0, 60), max_size=6), min_size=0, max_size=3)


@given(nodes=_nodes, total=st.integers(0, 200), rules=st.sampled_from(["v4", "upstream"]))
def test_matches_the_reference(nodes, total, rules):
    """Integer thresholds (total*9//10, total//2) agree with the fractions."""
    stats = memcg(*nodes)
    expected = reference(stats, total, rules)
    if expected is None:
        with pytest.raises(GenerationNotFound):
            find_generation(stats, total, rules)
    else:
        assert find_generation(stats, total, rules) == expected
