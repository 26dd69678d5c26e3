"""`-p`: benchmark MGLRU aging while the vCPUs fault their memory in. v4 7/7 (run_benchmark).

The C test kicks the vCPUs into a populating (write) iteration without
waiting, then runs `lru_gen_do_aging_quiet` in a loop until every vCPU is
done, and reports the slowest vCPU's wall time and the aging loop's
average pass (total aging time / passes).

Those times only mean something with concurrency, so they come from the
timing model (`mglru.bench.lru_gen_bench`), never from the host clock of the
sequential functional model. The port hands the timing model the kernel, the
VM (unpopulated), the memcg name, each vCPU's region and a callback that
runs one aging pass through the ABI:

    run_lru_gen_benchmark(k, vm, "access_tracking_perf_test",
                          [(gpa, nbytes), ...],             # index = vCPU id
                          aging=callback)                   # one lru_gen_do_aging_quiet
      -> vcpu_wall_s, passes, total_aging_s (seconds; aging_pass_s, or the
         same names in ns ending `_ns`, are accepted too)

The timing model faults the regions in (writes, memstress at 100 %) through
`vm.vcpu_access` as its simulated clock advances and calls `aging()` for
each simulated pass until the vCPUs are done. If
`mglru.bench.lru_gen_bench` cannot be imported the benchmark is skipped
("timing model not available", KSFT_SKIP).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from mglru.tools.access_tracking.aging import do_aging
from mglru.tools.access_tracking.context import TestContext
from mglru.tools.access_tracking.ksft import timespec
from mglru.tools.access_tracking.params import TEST_MEMCG_NAME
from mglru.tools.memstress import memstress_set_write_percent

__all__ = ["TIMING_MODULE", "TIMING_FUNCTION", "timing_model_status", "load_timing_model",
           "run_benchmark", "bench_numbers"]

TIMING_MODULE = "mglru.bench.lru_gen_bench"
TIMING_FUNCTION = "run_lru_gen_benchmark"


def timing_model_status() -> tuple[Callable[..., Any] | None, str]:
    """(`run_lru_gen_benchmark`, "") if the timing model provides it, else (None, why not)."""
    try:
        module = importlib.import_module(TIMING_MODULE)
    except ImportError as e:  # absent, or present but broken: either way not usable
        return None, str(e) or type(e).__name__
    fn = getattr(module, TIMING_FUNCTION, None)
    if not callable(fn):
        return None, f"{TIMING_MODULE} has no {TIMING_FUNCTION}()"
    return fn, ""


def load_timing_model() -> Callable[..., Any] | None:
    """`run_lru_gen_benchmark` if the timing model provides it, else None."""
    return timing_model_status()[0]


def _ns(result: Any, *names: str) -> int | None:
    """The first of `names` the result has, in ns (`*_s` fields are seconds)."""
    for name in names:
        value = getattr(result, name, None)
        if value is not None:
            return round(value * 1e9) if name.endswith("_s") else int(value)
    return None


def bench_numbers(result: Any) -> tuple[int, int, int]:
    """(vcpu wall ns, passes, total aging ns) from the timing model's result.

    Raises:
        TypeError: the result lacks the fields of the contract.
    """
    wall = _ns(result, "vcpu_wall_s", "vcpu_wall_ns")
    passes = int(getattr(result, "passes", None) or 0)
    total = _ns(result, "total_aging_s", "aging_total_ns")
    if total is None:
        avg = _ns(result, "aging_pass_s", "aging_pass_ns")
        total = None if avg is None else avg * passes
    if wall is None or (total is None and passes):
        raise TypeError(f"{TIMING_FUNCTION} returned {result!r}: needs vcpu_wall_s, passes "
                        "and total_aging_s")
    return wall, passes, total or 0


def run_benchmark(ctx: TestContext, run_lru_gen_benchmark: Callable[..., Any]) -> None:
    """run_benchmark(): populate under an aging loop; print the two timing lines."""
    log = ctx.log
    log.pr_info("Running lru_gen benchmark...")
    memstress_set_write_percent(ctx.args, 100)
    log.untimed("Populating memory (async)")
    regions = [(va.gpa, va.nbytes) for va in ctx.args.vcpu_args]

    def aging() -> None:
        """One pass, quiet."""
        do_aging(ctx.kernel)  # lru_gen_do_aging_quiet

    result = run_lru_gen_benchmark(ctx.kernel, ctx.args.vm, TEST_MEMCG_NAME, regions,
                                   aging=aging)
    wall, passes, total = bench_numbers(result)
    ctx.threads.iteration += 1  # the populating iteration ran inside the timing model
    ctx.threads.last_completed_iteration = [ctx.threads.iteration] * ctx.nr_vcpus
    avg = total // passes if passes else 0
    log.pr_info(f"{'vcpu wall time':<30}: {timespec(wall)}")
    log.pr_info(f"{'lru_gen avg pass duration':<30}: {timespec(avg)}, "
                f"(passes:{passes}, total:{timespec(total)})")
    log.record["benchmark"] = {"clock": "timing-model", "vcpu_wall_ns": wall, "passes": passes,
                               "aging_total_ns": total, "aging_avg_ns": avg}
