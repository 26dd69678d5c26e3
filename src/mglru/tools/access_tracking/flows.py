"""The test flows: idle page tracking, MGLRU as posted in v4, MGLRU upstream.

Upstream: tools/testing/selftests/kvm/access_tracking_perf_test.c (v6.16); v4 7/7.

Every flow starts the same way: populate (write), then, as a control, write
and read the populated memory. Then memory is "marked idle", written,
marked idle again and read:

- **page_idle** (no `-l`): marking is `mark_vcpu_memory_idle` on each vCPU
  (only vCPU 0 with `-o`); a vCPU with 10 % or more pages still idle fails
  the test unless warn-only.
- **v4** (`-l`, patch 7/7): marking is an aging pass, and five generations
  are found (`>` half the pages, newest excluded): after an initial pass
  (all pages tracked, `g0`) and a pass without access `g1 == g0`; guest
  write + pass: `g2 > g1`; pass: `g3 == g2`; guest read + pass: `g4 > g3`.
- **upstream** (`-l --rules upstream`, v6.16+): an initial pass right after
  populating (all pages tracked), re-populate, `last_gen` = the generation
  with 90 % of the pages; each marking is a timed pass after which the pages
  must be in a newer generation, else "too many idle pages" (fail unless
  warn-only).

`idle_pages_warn_only` decides the warn-only default: upstream `-w`, or auto
(warn-only when nested on x86 or with NUMA balancing on: never on the
simulated kernel unless it serves `numa_balancing` as on); v4 asserts on x86
and warns elsewhere, as the C test of that time did.
"""

from __future__ import annotations

import time

from mglru.abi.kernel import Kernel
from mglru.tools.access_tracking.aging import (
    do_aging,
    find_generation_v4_asserting,
    read_stats,
    sum_for_gen,
)
from mglru.tools.access_tracking.context import (
    ACCESS_READ,
    ACCESS_WRITE,
    TestContext,
    access_memory,
    run_iteration,
)
from mglru.tools.access_tracking.ksft import Log, test_assert
from mglru.tools.access_tracking.page_idle import mark_vcpu_memory_idle
from mglru.tools.lru_gen import MemcgStats, lru_gen_find_generation
from mglru.tools.memstress import VcpuArgs

__all__ = ["NUMA_BALANCING", "idle_pages_warn_only", "too_many_idle_pages",
           "mark_memory_idle_page_idle", "run_test_v4", "run_test_upstream", "find_generation"]

NUMA_BALANCING = "/proc/sys/kernel/numa_balancing"


def _numa_balancing_enabled(kernel: Kernel) -> bool:
    """is_numa_balancing_enabled(): off if the kernel does not serve the file."""
    try:
        return kernel.read(NUMA_BALANCING).strip() not in ("", "0")
    except OSError:
        return False


def idle_pages_warn_only(kernel: Kernel, rules: str, arch: str, warn_only: int | None,
                         log: Log) -> bool:
    """Whether too many idle pages only warn. See the module docstring."""
    if warn_only is not None:
        return warn_only > 0
    if rules == "v4":
        return arch != "x86"
    # the simulated CPU is never X86_FEATURE_HYPERVISOR: not nested
    if _numa_balancing_enabled(kernel):
        log.pr_info("Skipping idle page count sanity check, because NUMA balancing is enabled")
        return True
    return False


def too_many_idle_pages(ctx: TestContext, idle_pages: int, total_pages: int,
                        vcpu_idx: int) -> None:
    """Fail, or warn if warn-only, about pages that did not get accessed."""
    prefix = f"vCPU{vcpu_idx}: " if vcpu_idx >= 0 else ""
    test_assert(ctx.warn_only,
                f"{prefix}Too many pages still idle ({idle_pages} out of {total_pages})",
                "idle_pages_warn_only")
    ctx.log.warning(f"{prefix}Too many pages still idle ({idle_pages} out of {total_pages}), "
                    "this will affect performance results.")


def mark_memory_idle_page_idle(ctx: TestContext) -> None:
    """ITERATION_MARK_IDLE on every vCPU, timed as "Mark memory idle"."""
    def mark(va: VcpuArgs) -> None:
        """ITERATION_MARK_IDLE on one vCPU."""
        # with overlapping regions vCPU 0 marks all memory
        if ctx.params.overlap and va.vcpu_idx:
            return
        counts = mark_vcpu_memory_idle(ctx.kernel, ctx.args, ctx.pid, va)
        ctx.log.record.setdefault("idle", []).append(
            {"vcpu": va.vcpu_idx, "pages": counts.pages, "no_pfn": counts.no_pfn,
             "still_idle": counts.still_idle})
        if counts.still_idle >= counts.pages // 10:
            too_many_idle_pages(ctx, counts.still_idle, counts.pages, va.vcpu_idx)

    title = "Mark memory idle" if ctx.rules == "v4" else "Mark memory idle (page_idle)"
    run_iteration(ctx, title, mark)


def _record_gen(ctx: TestContext, gen: int, stats: MemcgStats) -> int:
    """Keep a found generation (and the stats it came from) for --json."""
    ctx.generations.append(gen)
    ctx.log.record.setdefault("lru_gen", []).append(
        {"gen": gen, "pages_by_seq": {str(s): n for s, n in stats.pages_by_seq().items()}})
    return gen


def run_test_v4(ctx: TestContext) -> None:
    """The v4 run_test(): page_idle or the five-generation MGLRU flow."""
    log, kernel, total = ctx.log, ctx.kernel, ctx.test_pages
    lru_gen = ctx.params.lru_gen
    log.pr_info("")
    access_memory(ctx, ACCESS_WRITE, "Populating memory")
    access_memory(ctx, ACCESS_WRITE, "Writing to populated memory")
    access_memory(ctx, ACCESS_READ, "Reading from populated memory")

    if lru_gen:
        stats = do_aging(kernel, log)  # the initial page table scan
        test_assert(stats.nr_pages() >= total,
                    "Not all pages tracked in lru_gen stats.\n"
                    "Is lru_gen enabled? Did the memcg get created properly?",
                    "sum_memcg_stats(&stats) >= total_pages")
        g0 = _record_gen(ctx, find_generation_v4_asserting(stats, total), stats)
        stats = do_aging(kernel, log)  # a new generation, the pages stay
        g1 = _record_gen(ctx, find_generation_v4_asserting(stats, total), stats)
        test_assert(g1 == g0, f"unexpected gen change: {g1} vs. {g0}",
                    "found_gens[1] == found_gens[0]")
    else:
        mark_memory_idle_page_idle(ctx)

    access_memory(ctx, ACCESS_WRITE, "Writing to idle memory")

    if lru_gen:
        stats = do_aging(kernel, log)  # the pages are young again: a newer generation
        g2 = _record_gen(ctx, find_generation_v4_asserting(stats, total), stats)
        test_assert(g2 > g1, "pages did not get younger", "found_gens[2] > found_gens[1]")
        stats = do_aging(kernel, log)
        g3 = _record_gen(ctx, find_generation_v4_asserting(stats, total), stats)
        test_assert(g3 == g2, f"unexpected gen change: {g3} vs. {g2}",
                    "found_gens[3] == found_gens[2]")
    else:
        mark_memory_idle_page_idle(ctx)

    access_memory(ctx, ACCESS_READ, "Reading from idle memory")

    if lru_gen:
        stats = do_aging(kernel, log)
        g4 = _record_gen(ctx, find_generation_v4_asserting(stats, total), stats)
        test_assert(g4 > g3, "pages did not get younger", "found_gens[4] > found_gens[3]")


def find_generation(ctx: TestContext, stats: MemcgStats, total_pages: int) -> int:
    """Upstream find_generation(): 90 % of the pages, or 50 % with a warning if warn-only."""
    nine_tenths = total_pages * 9 // 10
    gen = lru_gen_find_generation(stats, nine_tenths)
    if gen >= 0:
        return gen
    test_assert(ctx.warn_only,
                f"Could not find a generation with 90% of guest memory ({nine_tenths} pages).",
                "idle_pages_warn_only")
    ctx.log.warning(f"Could not find a generation with 90% of guest memory ({nine_tenths} "
                    "pages); looking for one with 50%.")
    gen = lru_gen_find_generation(stats, total_pages // 2)
    test_assert(gen >= 0, "Could not find a generation with 50% of guest memory "
                f"({total_pages // 2} pages).", "gen >= 0")
    return gen


def _lru_gen_mark_memory_idle(ctx: TestContext) -> None:
    """lru_gen_mark_memory_idle(): a timed pass; the pages must reach a newer generation."""
    start = time.perf_counter_ns()
    stats = do_aging(ctx.kernel)
    elapsed = time.perf_counter_ns() - start
    new_gen = _record_gen(ctx, find_generation(ctx, stats, ctx.test_pages), stats)
    last_gen = ctx.generations[-2]
    if new_gen <= last_gen:
        idle = min(sum_for_gen(stats, last_gen), ctx.test_pages)
        too_many_idle_pages(ctx, idle, ctx.test_pages, -1)
    ctx.log.timed("Mark memory idle (lru_gen)", elapsed)


def run_test_upstream(ctx: TestContext) -> None:
    """The v6.16+ run_test(): page_idle or MGLRU with 90 % generations."""
    log, kernel, total = ctx.log, ctx.kernel, ctx.test_pages
    lru_gen = ctx.params.lru_gen
    log.pr_info("")
    access_memory(ctx, ACCESS_WRITE, "Populating memory")
    if lru_gen:
        # after the first population aging may not move pages to a newer
        # generation; one pass now makes every later pass do so
        log.pr_info("Initial aging pass (lru_gen)")
        stats = do_aging(kernel)
        test_assert(stats.nr_pages() >= total,
                    f"Not all pages accounted for (looking for {total}). "
                    "Was the memcg set up correctly?",
                    "lru_gen_sum_memcg_stats(&stats) >= test_pages")
        access_memory(ctx, ACCESS_WRITE, "Re-populating memory")
        stats = read_stats(kernel)
        _record_gen(ctx, find_generation(ctx, stats, total), stats)

    access_memory(ctx, ACCESS_WRITE, "Writing to populated memory")
    access_memory(ctx, ACCESS_READ, "Reading from populated memory")
    mark = _lru_gen_mark_memory_idle if lru_gen else mark_memory_idle_page_idle
    mark(ctx)
    access_memory(ctx, ACCESS_WRITE, "Writing to idle memory")
    mark(ctx)
    access_memory(ctx, ACCESS_READ, "Reading from idle memory")
