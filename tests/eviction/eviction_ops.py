"""Hypothesis strategies for eviction: operation sequences under memory pressure.

Kept beside the eviction tests (tests/strategies.py belongs to the aging and ABI
suites, whose operations never reclaim); candidates to merge there.

Each operation is a plain tuple whose first item names it; indices are taken
modulo what exists when it runs, so every sequence is valid and shrinks well.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["OPS", "eviction_ops", "eviction_runs", "MMAP_KINDS", "SWAPPINESS", "LIMITS"]

#: what a mapping is backed by: anonymous (4 KiB or THP), a file, shmem, mlocked anon
MMAP_KINDS = ("anon", "anon", "anon", "thp", "file", "file", "shmem", "locked")
#: mapping sizes in pages (THP mappings always take 1024: two PMD blocks)
MMAP_PAGES = (1, 16, 100, 300, 700)
#: swappiness arguments of debugfs and memory.reclaim (None: omitted)
SWAPPINESS = (None, None, 0, 1, 60, 100, 200, "max")
#: memory.max values in pages ("max": no limit)
LIMITS = ("max", 64, 200, 600, 1500)

OPS = ("spawn", "mmap", "access", "read", "age", "evict", "limit", "reclaim", "exit", "tick")

_idx = st.integers(0, 7)


def _op() -> st.SearchStrategy[tuple]:
    return st.one_of(
        st.tuples(st.just("spawn"), _idx),
        st.tuples(st.just("mmap"), _idx, st.sampled_from(MMAP_KINDS), st.sampled_from(MMAP_PAGES)),
        # access is drawn three times as often: it is what creates pages and pressure
        *[st.tuples(st.just("access"), _idx, _idx, st.integers(0, 3), st.integers(1, 700),
                    st.sampled_from((True, True, False))) for _ in range(3)],
        st.tuples(st.just("read"), _idx, st.integers(0, 1), st.integers(0, 500),
                  st.integers(1, 300)),
        # aging is what makes pages old enough to evict: one to three passes
        *[st.tuples(st.just("age"), _idx, st.sampled_from(SWAPPINESS), st.integers(1, 3))
          for _ in range(2)],
        *[st.tuples(st.just("evict"), _idx, st.integers(-1, 3), st.sampled_from(SWAPPINESS),
                    st.sampled_from((None, 1, 64, 100, 5000))) for _ in range(2)],
        st.tuples(st.just("limit"), _idx, st.sampled_from(LIMITS)),
        st.tuples(st.just("reclaim"), _idx, st.sampled_from((1, 32, 200, 1000)),
                  st.sampled_from(SWAPPINESS)),
        st.tuples(st.just("exit"), _idx),
        st.tuples(st.just("tick"), st.integers(1, 3000)),
    )


def eviction_ops(min_size: int = 6, max_size: int = 25) -> st.SearchStrategy[list[tuple]]:
    """A sequence of operations (see the module docstring)."""
    return st.lists(_op(), min_size=min_size, max_size=max_size)


def eviction_runs() -> st.SearchStrategy[tuple[int, list[tuple]]]:
    """(memory.max of the pressured memcg in pages, operations)."""
    return st.tuples(st.sampled_from((100, 250, 400, 650)), eviction_ops())
