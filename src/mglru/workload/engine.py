"""The engine: run streams of several tasks and VMs interleaved by simulated time.

Streams are merged by timestamp at a granularity of `quantum_ms` (a scheduler
time slice: the stream whose next access is earliest runs until its next
access is a quantum later, or until the next callback is due); `quantum_ms=0`
interleaves access by access in exact time order. A callback every
`every_ms` of simulated time lets an agent act (write memory.reclaim, read
lru_gen, age) with the clock at that time.

Ground truth: `last_access_ms[pfn]` is the simulated time (ms since boot plus
one; 0 = never) of the last access to the page, for host tasks (per pfn; kept
as `workload.truth` says) and `guest_last_ms[id(vm)][gfn]` for guests, updated
by the compiled loops.

    eng = Engine(k)
    eng.run([host_stream(p, a, pages, rate=50e6)], every_ms=100, callback=agent)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.workload.guest import run_guest
from mglru.workload.host import run_host, set_clock
from mglru.workload.truth import HostTruth

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.workload.stream import Stream

__all__ = ["Engine"]

#: callback(kernel, now_ns) run every `every_ms` of simulated time
Callback = Callable[["SimKernel", int], None]


class Engine:
    """Applies access streams to a kernel, keeping per-page last-access times."""

    def __init__(self, k: SimKernel, *, truth: bool = True) -> None:
        self.k = k
        self.host_truth = HostTruth(k.mem.max_pfn) if truth else None
        #: per VM (by id()) per-gfn last guest access, filled by guest streams
        self.guest_last_ms: dict[int, npt.NDArray[np.uint32]] = {}

    @property
    def last_access_ms(self) -> npt.NDArray[np.uint32] | None:
        """Per-pfn last host access (ms since boot + 1), or None without ground truth.

        The array is the engine's own: stamps written into it (a start-up touch) count."""
        return self.host_truth.view() if self.host_truth is not None else None

    def _run_one(self, s: Stream, stop: int) -> None:
        if s.kind == "host":
            run_host(self.k, s, stop, self.host_truth)
        else:
            truth = None
            if self.host_truth is not None:
                truth = self.guest_last_ms.get(id(s.vm))
                if truth is None:
                    truth = np.zeros(max(len(a) for a in s.vm.mmu.sptes), np.uint32)
            truth = run_guest(self.k, s, stop, truth)
            if truth is not None:
                self.guest_last_ms[id(s.vm)] = truth

    def advance(self, s: Stream, stop: int) -> None:
        """Apply one stream's accesses up to index `stop` (exclusive), nothing interleaved:
        `run([s])` in steps, for a caller that reports progress between them.

        Raises:
            ValueError: `stop` before the stream's position or past its end.
        """
        if not s.pos <= stop <= len(s):
            raise ValueError(f"stop must be in [{s.pos}, {len(s)}], got {stop}")
        if stop > s.pos:
            self._run_one(s, stop)

    def run(self, streams: Sequence[Stream], *, quantum_ms: float = 1.0,
            every_ms: float | None = None, callback: Callback | None = None) -> None:
        """Run every stream to its end, interleaved by time.

        Args:
            streams: host and guest streams (their `pos` says where each resumes).
            quantum_ms: scheduling granularity; 0 interleaves by exact timestamps.
            every_ms: call `callback(k, now_ns)` every `every_ms` of simulated
                time from the clock at the start of the run, while streams run.
            callback: the periodic agent.

        Raises:
            ValueError: a negative quantum or a non-positive period.
        """
        if quantum_ms < 0:
            raise ValueError(f"quantum_ms must be >= 0, got {quantum_ms}")
        if every_ms is not None and not every_ms > 0:
            raise ValueError(f"every_ms must be positive, got {every_ms}")
        live = [s for s in streams if not s.done]
        quantum = int(quantum_ms * 1_000_000)
        period = int(every_ms * 1_000_000) if every_ms and callback else 0
        next_cb = self.k.clock_ns + period if live and period else None
        while live:
            s = min(live, key=lambda x: x.next_ns())
            now = s.next_ns()
            if next_cb is not None and now >= next_cb:
                set_clock(self.k, next_cb)
                callback(self.k, next_cb)
                next_cb += period
                continue
            if len(live) == 1:
                limit = None  # nobody to interleave with: run to the end or the callback
            elif quantum:
                limit = now + quantum
            else:  # exact time order; ties go to the earlier stream in `streams`
                others = [o.next_ns() for o in live if o is not s]
                limit = min(others) if others else None
            if next_cb is not None:
                limit = next_cb if limit is None else min(limit, next_cb)
            stop = len(s) if limit is None else int(np.searchsorted(s.t_ns, limit, "left"))
            stop = max(stop, s.pos + 1)  # at least the access that is due
            self._run_one(s, stop)
            live = [x for x in live if not x.done]
