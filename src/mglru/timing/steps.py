"""Timing steps: what a timing process yields (STYLE item 4).

Mechanism: a timing process is a generator. Each value it yields is a step the
event loop (`mglru.timing.sim`) carries out on its behalf, resuming it when the
step is done:

    cost(ns)               burn ns of CPU time (the kernel doing work)
    acquire(lock, mode)    take a lock; resumes with a `Held` context object,
                           so `with (yield acquire(lock, WRITE)):` releases it
    touch(line, count)     atomic RMWs on a shared cache line
    sleep(ns)              leave the CPU for ns (usleep, a timer)
    synchronize_rcu(rcu)   sleep until the RCU readers of the moment are gone
    park()                 stop, keeping the CPU, until the driver calls
                           `TimingSim.unpark(thread, value)`; resumes with value
    Batch(n, body)         n iterations of a body of segments (below)

A `Batch` is how kernel loops are written once and run at either granularity
(see `TimingSim(granularity=...)`): its body is a tuple of segments,

    Work(ns)                       CPU work
    Atomic(line, count)            atomics on a shared cache line
    Locked(lock, mode, ns)         acquire, ns of work under the lock, release

each with an `every=k` to run it only on every k-th iteration (for example the
LRU batch drain every FOLIO_BATCH_SIZE faults). Iterations are numbered from
`offset`, so a loop cut into several batches keeps its every-k phase.

Steps end where the kernel can reschedule (cond_resched) or drops a lock: the
event loop preempts a thread only between steps.

Future optimizations:
1. a `Nested` segment for locks taken inside other locks within a batch body.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mglru.timing.locks import MODES, READ, WRITE, CacheLine, Lock, Rcu

if TYPE_CHECKING:
    import random

__all__ = ["READ", "WRITE", "MODES", "Cost", "Acquire", "Touch", "Sleep", "SynchronizeRcu", "Park",
           "park",
           "Work", "Atomic", "Locked", "Batch", "Segment", "Step", "cost", "acquire", "touch",
           "sleep", "synchronize_rcu", "batch", "expand_batch"]



@dataclass(frozen=True, slots=True)
class Cost:
    """Burn `ns` of CPU time."""

    ns: int


@dataclass(frozen=True, slots=True)
class Acquire:
    """Take `lock` in `mode`; the process resumes with a `Held`."""

    lock: Lock
    mode: str


@dataclass(frozen=True, slots=True)
class Touch:
    """`count` atomic RMWs on a shared cache line."""

    line: CacheLine
    count: int = 1


@dataclass(frozen=True, slots=True)
class Sleep:
    """Leave the CPU for `ns` (the thread is blocked, not spinning)."""

    ns: int


@dataclass(frozen=True, slots=True)
class SynchronizeRcu:
    """Block until every RCU reader present now has left its read section."""

    rcu: Rcu


@dataclass(frozen=True, slots=True)
class Park:
    """Stop until the driver unparks the thread (it keeps its CPU meanwhile).

    For work whose content the functional model produces outside the event
    loop: the thread parks, the driver runs the model and `unpark`s it with the
    result (`TimingSim.run(stop=...)` returns when a thread parks).
    """


@dataclass(frozen=True, slots=True)
class Work:
    """Batch segment: `ns` of CPU work on every `every`-th iteration."""

    ns: int
    every: int = 1


@dataclass(frozen=True, slots=True)
class Atomic:
    """Batch segment: `count` atomics on `line` on every `every`-th iteration."""

    line: CacheLine
    count: int = 1
    every: int = 1


@dataclass(frozen=True, slots=True)
class Locked:
    """Batch segment: take `lock` in `mode`, work `ns` under it, release it."""

    lock: Lock
    mode: str
    ns: int
    every: int = 1


Segment = Work | Atomic | Locked


@dataclass(frozen=True, slots=True)
class Batch:
    """`n` iterations of `body`, numbered from `offset` (for `every`).

    Attributes:
        n: iterations (>= 0).
        body: segments run in order on each iteration.
        offset: number of the first iteration, so that segments with
            `every=k` run on iterations i with (i + 1) % k == 0.
    """

    n: int
    body: tuple[Segment, ...]
    offset: int = 0

    def __post_init__(self) -> None:
        if self.n < 0 or self.offset < 0:
            raise ValueError(f"Batch needs n >= 0 and offset >= 0; got n={self.n}, "
                             f"offset={self.offset}")
        for seg in self.body:
            if not isinstance(seg, (Work, Atomic, Locked)):
                raise TypeError(f"Batch body segments are Work, Atomic or Locked; got {seg!r}")
            if seg.every < 1:
                raise ValueError(f"segment every must be >= 1; got {seg!r}")
            if isinstance(seg, Locked) and getattr(seg.lock, "kind", "") == "rwsem":
                # a sleeping waiter leaves its CPU: not expressible as one fluid step
                raise ValueError(f"Batch bodies take spinning locks or RCU, not the rwsem "
                                 f"{seg.lock.name!r}; use acquire() steps")

    def count(self, seg: Segment) -> int:
        """How many of the n iterations run `seg` (exact, given `offset`)."""
        k = seg.every
        if k == 1:
            return self.n
        return (self.offset + self.n) // k - self.offset // k


Step = Cost | Acquire | Touch | Sleep | SynchronizeRcu | Park | Batch


def cost(ns: int) -> Cost:
    """Burn `ns` of CPU time (a non-negative int)."""
    if ns < 0:
        raise ValueError(f"cost must be >= 0 ns; got {ns}")
    return Cost(int(ns))


def acquire(lock: Lock, mode: str = WRITE) -> Acquire:
    """Take `lock` in `mode` (`READ` or `WRITE`); resume with a `Held`."""
    if mode not in MODES:
        raise ValueError(f"lock mode must be one of {', '.join(MODES)}; got {mode!r}")
    return Acquire(lock, mode)


def touch(line: CacheLine, count: int = 1) -> Touch:
    """`count` atomics on a shared cache line."""
    return Touch(line, count)


def sleep(ns: int) -> Sleep:
    """Leave the CPU for `ns`."""
    if ns < 0:
        raise ValueError(f"sleep must be >= 0 ns; got {ns}")
    return Sleep(int(ns))


def park() -> Park:
    """Stop until `TimingSim.unpark(thread, value)`; the step's result is value."""
    return Park()


def synchronize_rcu(rcu: Rcu) -> SynchronizeRcu:
    """Wait for an RCU grace period."""
    return SynchronizeRcu(rcu)


def batch(n: int, *body: Segment, offset: int = 0) -> Batch:
    """`Batch(n, body, offset)`."""
    return Batch(n, tuple(body), offset)


def expand_batch(b: Batch, rng: random.Random | None = None, jitter: float = 0.0) -> Generator:
    """Exact mode: the steps of a Batch, iteration by iteration.

    With `rng`, each `Work` and `Locked` cost is drawn from [1 - jitter, 1 + jitter] x its value.
    """
    body = b.body
    for i in range(b.offset, b.offset + b.n):
        for seg in body:
            k = seg.every
            if k != 1 and (i + 1) % k:
                continue
            kind = type(seg)
            if kind is Work:
                if seg.ns:
                    yield Cost(seg.ns if rng is None else
                               int(seg.ns * (1.0 + jitter * (2.0 * rng.random() - 1.0))))
            elif kind is Atomic:
                yield Touch(seg.line, seg.count)
            elif kind is Locked:
                with (yield Acquire(seg.lock, seg.mode)):
                    if seg.ns:
                        yield Cost(seg.ns if rng is None else
                                   int(seg.ns * (1.0 + jitter * (2.0 * rng.random() - 1.0))))
