"""One guest mode's run: the kernel, the VM, the vCPU threads and the iteration helpers.

`TestContext` holds what the C test keeps in globals (`iteration`,
`iteration_work`, `vcpu_last_completed_*`, `overlap_memory_access`) plus the
port's choices. `run_iteration` and `access_memory` are the C helpers of the
same names: kick the vCPUs into the next iteration and, when waiting, print
how long the slowest took as `"%-30s: %ld.%09lds"`.

Times in these lines are the host's wall clock around the simulated work
(what the model took to compute it), not a prediction of the real kernel's
time; the `-p` benchmark's times come from the timing model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mglru.abi.kernel import Kernel
from mglru.tools.access_tracking.ksft import Log
from mglru.tools.access_tracking.params import TestParams
from mglru.tools.memstress import (
    MemstressArgs,
    VcpuArgs,
    VcpuThreads,
    memstress_set_write_percent,
)

__all__ = ["ACCESS_READ", "ACCESS_WRITE", "TestContext", "run_iteration", "access_memory"]

ACCESS_READ = 0
ACCESS_WRITE = 1


@dataclass
class TestContext:
    """Everything a flow needs for one guest mode.

    Attributes:
        kernel: the backend (all kernel files go through it).
        params: the run's parameters.
        rules: "v4" or "upstream".
        log: console and record.
        args: memstress's VM and regions.
        threads: the vCPU threads' iteration state.
        pid: the test process.
        warn_only: idle-page checks only warn (see `idle_pages_warn_only`).
        test_pages: pages the test expects to track.
        generations: generations found by the MGLRU flow, in order.
    """

    __test__ = False

    kernel: Kernel
    params: TestParams
    rules: str
    log: Log
    args: MemstressArgs
    threads: VcpuThreads
    pid: int
    warn_only: bool
    test_pages: int
    generations: list[int] = field(default_factory=list)

    @property
    def nr_vcpus(self) -> int:
        """vCPUs in the VM."""
        return self.args.nr_vcpus


def run_iteration(ctx: TestContext, description: str, work: Callable[[VcpuArgs], None],
                  wait: bool = True) -> int:
    """Run one iteration of `work` on every vCPU; print its time if `wait`.

    Returns:
        The elapsed host ns (until the slowest vCPU finished).
    """
    start = time.perf_counter_ns()
    ctx.threads.run_iteration(work)
    elapsed = max(ctx.threads.last_completed_ns) - start
    if wait:
        ctx.log.timed(description, elapsed)
    else:
        ctx.log.untimed(description)
    return elapsed


def access_memory(ctx: TestContext, access: int, description: str) -> int:
    """Every vCPU writes (ACCESS_WRITE) or reads (ACCESS_READ) its whole region once."""
    memstress_set_write_percent(ctx.args, 100 if access == ACCESS_WRITE else 0)
    return run_iteration(ctx, description, ctx.threads.guest_code)
