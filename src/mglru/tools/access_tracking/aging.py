"""The test's use of lru_gen_util: aging the test memcg and finding its generation. v4 7/7.

Thin wrappers over `mglru.tools.lru_gen` that fail the way the C helpers
assert: a memcg that is not listed ("Couldn't find memcg"), a rejected
aging command, a malformed lru_gen, and — with the v4 rules — no generation
holding a majority. The v4 `lru_gen_do_aging` prints how long the aging
writes took (`"lru_gen: Aging"`); its `_quiet` form and the upstream one
print nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from mglru.abi.kernel import LRU_GEN, FeatureUnavailable, Kernel
from mglru.tools.access_tracking.ksft import Log, TestFailure, TestSkip
from mglru.tools.access_tracking.params import TEST_MEMCG_NAME
from mglru.tools.lru_gen import (
    CommandError,
    GenerationNotFound,
    LruGenParseError,
    MemcgNotFound,
    MemcgStats,
    aging_commands,
    find_generation_v4,
    read_memcg_stats,
    run_command,
)

__all__ = ["lru_gen_failures", "read_stats", "do_aging", "find_generation_v4_asserting",
           "sum_for_gen"]

T = TypeVar("T")


@contextmanager
def lru_gen_failures() -> Iterator[None]:
    """Turn the client's errors into the C helpers' assertion failures."""
    try:
        yield
    except MemcgNotFound:
        raise TestFailure(f"Couldn't find memcg: {TEST_MEMCG_NAME}\n"
                          "Did the memcg get created in the proper mount?",
                          "stats->memcg_id > 0") from None
    except CommandError as e:
        raise TestFailure(f"writing aging command {e.command} to {LRU_GEN} failed: {e}",
                          "fwrite(command, sizeof(char), sz, f) == sz") from None
    except LruGenParseError as e:
        raise TestFailure(f"malformed {LRU_GEN}: {e}", "false") from None
    except GenerationNotFound as e:
        raise TestFailure(str(e), "false") from None
    except FeatureUnavailable as e:
        raise TestSkip(e.reason, e.hint) from None


def _guarded(fn: Callable[[], T]) -> T:
    """fn() with the client's errors turned into the C helpers' failures."""
    with lru_gen_failures():
        return fn()


def read_stats(kernel: Kernel) -> MemcgStats:
    """read_memcg_stats() of the test memcg."""
    return _guarded(lambda: read_memcg_stats(kernel, TEST_MEMCG_NAME))


def do_aging(kernel: Kernel, log: Log | None = None) -> MemcgStats:
    """lru_gen_do_aging(): read, one `+` per node, read again.

    Args:
        kernel: the backend.
        log: print and record `"lru_gen: Aging"` with the time of the writes
            (the v4 verbose form); None for the quiet form.
    """
    def age() -> MemcgStats:
        """Read, write one command per node (timed), read."""
        stats = read_memcg_stats(kernel, TEST_MEMCG_NAME)
        start = time.perf_counter_ns()
        for command in aging_commands(stats):
            run_command(kernel, command)
        if log is not None:
            log.timed("lru_gen: Aging", time.perf_counter_ns() - start)
        return read_memcg_stats(kernel, TEST_MEMCG_NAME)

    return _guarded(age)


def find_generation_v4_asserting(stats: MemcgStats, total_pages: int) -> int:
    """v4 lru_gen_find_generation(): asserts a majority generation exists."""
    return _guarded(lambda: find_generation_v4(stats, total_pages))


def sum_for_gen(stats: MemcgStats, gen: int) -> int:
    """lru_gen_sum_memcg_stats_for_gen()."""
    return stats.nr_pages(gen)
