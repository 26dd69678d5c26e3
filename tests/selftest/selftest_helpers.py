"""Running the port in tests: small sizes, captured output."""

from __future__ import annotations

import io
from typing import Any

from mglru.abi import Kernel
from mglru.tools.access_tracking import Log, TestParams, TestResult, run_access_tracking_perf_test

MEMCG = "/sys/fs/cgroup/access_tracking_perf_test"
#: per-vCPU sizes that stay fast; the v4 majority rule needs more pages than
#: the vCPU's 1536-entry guest TLB can hide (see docs, "Selftest port")
SMALL = 16 << 20
#: the 90 % rules (upstream, idle pages on x86) need ~10x the TLB
NINETY = 64 << 20


class Run:
    """One run's result and output."""

    def __init__(self, result: TestResult, out: str, err: str) -> None:
        self.result = result
        self.out = out
        self.err = err

    @property
    def code(self) -> int:
        """The exit code."""
        return self.result.exit_code

    def __repr__(self) -> str:
        return f"Run({self.result.status}, {self.result.message!r})\n{self.out}\n{self.err}"


def run(backend: Kernel | None = None, **kw: Any) -> Run:
    """Run the port with TestParams(**kw) on `backend`, capturing its output."""
    kw.setdefault("vcpu_memory_bytes", SMALL)
    out, err = io.StringIO(), io.StringIO()
    result = run_access_tracking_perf_test(TestParams(**kw), kernel=backend,
                                           log=Log(out=out, err=err))
    return Run(result, out.getvalue(), err.getvalue())
