"""Simulated CPUs and threads: the event loop's per-thread state and time accounting.

A `Thread` is a stack of generators (a `Batch` expanded in exact mode runs as
a nested generator) plus what the event loop (`mglru.timing.sim`) needs to
resume it: the value its last step returns, a release debt (the time its last
release took on the lock word, paid before its next step), the locks it holds
and how many of them forbid preemption. It depends on no other module of the
engine (the bottom of `mglru.timing`). Time is accounted per state:
`oncpu_ns` (on a core, working or spinning), `spin_ns` (the part spent waiting
for spinning locks and cache lines), `runq_ns` (runnable, waiting for a core),
`blocked_ns` (sleeping).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Cpu", "Thread", "NEW", "RUNNABLE", "RUNNING", "SPINNING", "BLOCKED", "DONE"]

# thread states
NEW = "new"
RUNNABLE = "runnable"
RUNNING = "running"
SPINNING = "spinning"
BLOCKED = "blocked"
DONE = "done"


@dataclass(eq=False, slots=True)
class Cpu:
    """One simulated core."""

    id: int
    thread: Thread | None = None
    last: Thread | None = None
    slice_end: int = 0
    busy_ns: int = 0


@dataclass(eq=False, slots=True)
class Thread:
    """A simulated thread: a stack of generators plus accounting.

    Attributes:
        name: unique name (timelines and stats use it).
        state: one of NEW, RUNNABLE, RUNNING, SPINNING, BLOCKED, DONE.
        started_at, finished_at: first dispatch, end of the generator (ns).
        oncpu_ns, spin_ns, runq_ns, blocked_ns: time accounting (see module).
        steps: steps performed.
        batch_span: aggregated mode: (start, end) of the running Batch.
        parked: stopped at a `park()` step until `TimingSim.unpark`.
        node: the NUMA node (socket) it runs on (`mglru.timing.topology`).
        lock_wait_ns: per lock, the time it waited to get it (both granularities).
    """

    name: str
    gens: list[Generator] = field(default_factory=list)
    state: str = NEW
    cpu: Cpu | None = None
    value: Any = None
    debt: int = 0
    pending: Any = None
    prelude: Any = None
    nonpreempt: int = 0
    spin_since: int = 0
    #: the `mglru.timing.locks.Held` of each lock it holds, in acquisition order
    held: list[Any] = field(default_factory=list)
    since: int = 0
    started_at: int | None = None
    finished_at: int | None = None
    oncpu_ns: int = 0
    spin_ns: float = 0
    runq_ns: int = 0
    blocked_ns: int = 0
    steps: int = 0
    batch_span: tuple[int, int] = (0, 0)
    parked: bool = False
    node: int = 0
    lock_wait_ns: dict[Any, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Thread({self.name!r}, {self.state})"

    @property
    def done(self) -> bool:
        """The generator has finished."""
        return self.state == DONE

    def stats(self) -> dict[str, Any]:
        """Accounting of this thread as a plain dict."""
        return {"started_at": self.started_at, "finished_at": self.finished_at,
                "state": self.state, "oncpu_ns": self.oncpu_ns, "spin_ns": self.spin_ns,
                "runq_ns": self.runq_ns, "blocked_ns": self.blocked_ns, "steps": self.steps}
