"""Which generation holds the test's pages: both rules of `lru_gen_find_generation`.

Upstream: tools/testing/selftests/cgroup/lib/lru_gen_util.c (v6.16); v4 7/7.

The selftest locates "its" pages as the first generation holding most of them
and checks that the generation number moves after guest access and aging.

- **v4** (patch 7/7): scan seq = min..max-1 over all nodes (the newest is
  excluded, an off-by-one fixed later) and return the first whose pages summed
  over nodes are strictly more than `total_pages / 2` (integer division); none
  is a test failure.
- **upstream** (v6.16+): `lru_gen_find_generation(stats, pages)` scans
  min..max inclusive for the first seq with strictly more than `pages` pages,
  -1 if none; the test asks for 90 % (`total * 9 / 10`) and, in warn-only mode,
  falls back to 50 % (`total / 2`).

The integer thresholds agree with the fractions: for whole page counts,
`n > total * 9 // 10` exactly when `n > 0.9 * total`.
"""

from __future__ import annotations

from mglru.tools.lru_gen.stats import MemcgStats

__all__ = ["RULES", "GenerationNotFound", "lru_gen_find_generation", "find_generation_v4",
           "find_generation"]

#: the two versions of the selftest's rules (v4 7/7 as posted, upstream v6.16+)
RULES = ("v4", "upstream")


class GenerationNotFound(AssertionError):
    """No generation holds the required share of pages (the v4 test's assertion)."""


def _seq_range(stats: MemcgStats) -> tuple[int, int] | None:
    seqs = stats.seqs()
    return (seqs[0], seqs[-1]) if seqs else None


def lru_gen_find_generation(stats: MemcgStats, pages: int) -> int:
    """Upstream: the first seq in min..max (inclusive) with more than `pages` pages, else -1.

    As lru_gen_util.c (v6.16).
    """
    span = _seq_range(stats)
    if span is None:
        return -1
    for seq in range(span[0], span[1] + 1):
        if stats.nr_pages(seq) > pages:
            return seq
    return -1


def find_generation_v4(stats: MemcgStats, total_pages: int) -> int:
    """v4: the first seq in min..max-1 with more than `total_pages // 2` pages.

    Raises:
        GenerationNotFound: none has a majority (the C test asserts).
    """
    span = _seq_range(stats)
    if span is not None:
        for seq in range(span[0], span[1]):  # the newest is excluded, as posted
            if stats.nr_pages(seq) > total_pages // 2:
                return seq
    listed = stats.pages_by_seq()
    raise GenerationNotFound(f"No generation includes majority of {total_pages} pages "
                             f"(need more than {total_pages // 2} in one of seqs below the "
                             f"newest; pages by seq: {listed})")


def find_generation(stats: MemcgStats, total_pages: int, rules: str = "v4") -> int:
    """The generation holding most of `total_pages`, under the given rules.

    Args:
        stats: the test memcg's stats.
        total_pages: the pages the test touched.
        rules: "v4" (majority, newest excluded, failure if none) or "upstream"
            (90 % then 50 %, newest included, -1 if none). The upstream test
            fails on a 90 % miss unless warn-only; it composes
            `lru_gen_find_generation` itself to report which threshold hit.

    Raises:
        GenerationNotFound: v4 rules and no majority.
        ValueError: unknown rules.
    """
    if rules == "v4":
        return find_generation_v4(stats, total_pages)
    if rules == "upstream":
        seq = lru_gen_find_generation(stats, total_pages * 9 // 10)
        return seq if seq >= 0 else lru_gen_find_generation(stats, total_pages // 2)
    raise ValueError(f"rules must be one of {', '.join(RULES)}; got {rules!r}")
