"""The event loop: simulated CPUs, threads and a clock in integer ns.

Mechanism. `TimingSim` keeps a heap of events keyed on (time, priority, seq):
`seq` grows with every event, so ties resolve in the order events were
scheduled and a run is a pure function of its inputs (SimPy's core, STYLE
item 4). An event resumes one thread. Threads are generators that yield steps
(`mglru.timing.steps`); the loop performs each step and schedules the thread's
next resumption: after a cost, when a lock is granted, after a sleep.

CPUs. There are `cpus` cores. A runnable thread takes an idle core, or waits at
the tail of one FIFO run queue. A running thread whose slice (`slice_ns`) has
run out is preempted at its next step boundary if another thread is waiting
and it holds no spinning lock or RCU read section: steps end where the kernel
calls cond_resched or drops a lock (PREEMPT_NONE), so a step is never cut. This
is round-robin with a fixed slice, a fair scheduler for CPU-bound threads
(EEVDF's base slice is 0.75 ms x (1 + log2(ncpus)) = 3 ms from 8 CPUs up).
Switching a core to a different thread costs `context_switch`. Spinning lock
waiters keep their core; sleepers (rwsem, sleep, synchronize_rcu) leave it.

Granularity. `granularity="exact"` runs every iteration of a `Batch` as its own
steps, with the locks' real queues. `granularity="aggregated"` runs a whole
`Batch` as one event whose duration comes from the mean-field contention model
of `mglru.timing.fluid` (the loop's `Planner`, which owns the stream records and
saved plans); it is what makes 112 vCPUs x 262144 pages fast. The two
are compared in tests/timing/test_granularity.py. In aggregated mode a lock used
by batches must not also be taken with `acquire` (that raises).

Time is accounted per thread: `oncpu_ns` (on a core, working or spinning),
`spin_ns` (the part spent waiting for spinning locks and cache lines),
`runq_ns` (runnable, waiting for a core), `blocked_ns` (sleeping).

Priorities: `URGENT` (0) for resumptions at the current time (a wake-up, a
dispatch onto an idle core), `NORMAL` (1) for the end of a timed step, so that at
equal times the loop first lets threads react to what just happened.

Future optimizations:
1. per-CPU run queues with migration, and thread priorities (nice values).
2. a numba event loop for exact mode if tests need runs of millions of events.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from collections.abc import Callable, Generator
from typing import Any

from mglru.timing.costs import CostModel, load_costs
from mglru.timing.fluid import Planner
from mglru.timing.locks import CacheLine, Held, Lock, LockError, QRWLock, Rcu, RWSem, SpinLock
from mglru.timing.steps import (
    READ,
    Acquire,
    Atomic,
    Batch,
    Cost,
    Park,
    Sleep,
    SynchronizeRcu,
    Touch,
    expand_batch,
)
from mglru.timing.threads import (
    BLOCKED,
    DONE,
    NEW,
    RUNNABLE,
    RUNNING,
    SPINNING,
    Cpu,
    Thread,
)
from mglru.timing.topology import handoff_ns

__all__ = ["TimingSim", "Thread", "Cpu", "URGENT", "NORMAL", "GRANULARITIES",
           "NEW", "RUNNABLE", "RUNNING", "SPINNING", "BLOCKED", "DONE"]

URGENT = 0
NORMAL = 1
GRANULARITIES = ("exact", "aggregated")

# event actions
_WAKE = 0   # become runnable
_CONT = 1   # the current step is done: maybe preempt, then advance the generator
_STEP = 2   # perform a step deferred by release debt
_EXIT = 3   # the generator ended; its release debt is paid


class TimingSim:
    """The event loop. See the module docstring.

    Args:
        cpus: number of simulated cores (>= 1).
        costs: the cost model (default: the packaged costs.toml).
        granularity: "exact" or "aggregated" (how `Batch` steps run).
        slice_ns: scheduler time slice.
        window_ns: aggregated mode: the averaging window of a thread's lock
            activity, and how long its last batch still counts after it ends.
        jitter: exact mode: each `Work` and `Locked` segment of a `Batch` lasts its cost times
            a factor drawn uniformly from [1 - jitter, 1 + jitter] (mean kept),
            so that threads with equal costs do not phase-lock as they would
            with deterministic costs; 0 (default) keeps every cost exact.
        seed: the jitter's random seed (same seed, same timeline).
    """

    def __init__(self, cpus: int, costs: CostModel | None = None, *,
                 granularity: str = "exact", slice_ns: int = 3_000_000,
                 window_ns: int = 1_000_000, jitter: float = 0.0, seed: int = 0) -> None:
        if cpus < 1:
            raise ValueError(f"cpus must be >= 1; got {cpus}")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {', '.join(GRANULARITIES)}; "
                             f"got {granularity!r}")
        self.costs = costs if costs is not None else load_costs()
        self.granularity = granularity
        self.aggregated = granularity == "aggregated"
        self.slice_ns = slice_ns
        self.window_ns = window_ns
        if not 0.0 <= jitter < 1.0:
            raise ValueError(f"jitter must be in [0, 1); got {jitter}")
        self.jitter = jitter
        self._rng = random.Random(seed)
        self.now = 0
        self.cpus = [Cpu(i) for i in range(cpus)]
        self.runq: deque[Thread] = deque()
        self.threads: dict[str, Thread] = {}
        self.locks: dict[str, Lock | Rcu | CacheLine] = {}
        #: the thread whose generator is running (for assert_held and releases)
        self.active: Thread | None = None
        self.events = 0
        self._heap: list[tuple[int, int, int, int, Thread]] = []
        self._seq = 0
        self._rcu: Rcu | None = None
        #: aggregated mode: plans each Batch from the streams of the others' batches
        self._planner = Planner(self.costs, window_ns)

    def __repr__(self) -> str:
        return (f"TimingSim(cpus={len(self.cpus)}, {self.granularity}, now={self.now}, "
                f"threads={len(self.threads)})")

    # -- objects -------------------------------------------------------------------
    def _register(self, obj: Any) -> Any:
        if obj.name in self.locks:
            raise ValueError(f"a lock or line named {obj.name!r} already exists")
        self.locks[obj.name] = obj
        return obj

    def spinlock(self, name: str) -> SpinLock:
        """A new spinlock_t."""
        return self._register(SpinLock(self, name))

    def qrwlock(self, name: str) -> QRWLock:
        """A new rwlock_t (queued rwlock), e.g. x86/arm64 kvm->mmu_lock."""
        return self._register(QRWLock(self, name))

    def rwsem(self, name: str) -> RWSem:
        """A new rw_semaphore, e.g. mmap_lock."""
        return self._register(RWSem(self, name))

    def line(self, name: str) -> CacheLine:
        """A new shared cache line (an atomic counter, a lock-free word)."""
        return self._register(CacheLine(self, name))

    @property
    def rcu(self) -> Rcu:
        """The RCU state of this machine (one per simulation)."""
        if self._rcu is None:
            self._rcu = self._register(Rcu(self, "rcu"))
        return self._rcu

    # -- driver API ------------------------------------------------------------------
    def spawn(self, name: str, gen: Generator, at: int | None = None, *,
              node: int = 0) -> Thread:
        """Add a thread running `gen`, runnable at time `at` (default: now), on NUMA `node`.

        Raises:
            ValueError: the name is taken or `at` is in the past.
        """
        if name in self.threads:
            raise ValueError(f"a thread named {name!r} already exists")
        at = self.now if at is None else at
        if at < self.now:
            raise ValueError(f"cannot spawn in the past: at={at} < now={self.now}")
        th = Thread(name, [gen], since=at, node=node)
        self.threads[name] = th
        self._schedule(at, URGENT if at == self.now else NORMAL, _WAKE, th)
        return th

    def run(self, until: int | None = None, stop: Callable[[], bool] | None = None) -> int:
        """Process events until none is left or the next one is at or after `until`.

        Args:
            until: stop before the first event at or after this time.
            stop: checked after each event; the run returns as soon as it holds
                (e.g. "the aging thread has parked").

        Returns:
            The simulated time reached (`until` if given and reached).
        """
        heap = self._heap
        pop = heapq.heappop
        while heap:
            if until is not None and heap[0][0] >= until:
                break
            if stop is not None and stop():
                return self.now
            t, _prio, _seq, action, th = pop(heap)
            self.now = t
            self.events += 1
            if action == _CONT:
                self._cont(th)
            elif action == _WAKE:
                self._wake(th)
            elif action == _STEP:
                step, th.pending = th.pending, None
                if self._do_step(th, step):
                    self._advance(th)
            else:
                self._exit(th)
        if until is not None and until > self.now:
            self.now = until
        return self.now

    def unpark(self, th: Thread, value: Any = None) -> None:
        """Resume a parked thread now; its `park()` step returns `value`.

        Raises:
            ValueError: the thread is not parked.
        """
        if not th.parked:
            raise ValueError(f"{th.name} is not parked (state {th.state})")
        th.parked = False
        th.value = value
        self._schedule(self.now, URGENT, _CONT, th)

    def peek(self) -> int | None:
        """Time of the next event, or None."""
        return self._heap[0][0] if self._heap else None

    def thread_stats(self) -> dict[str, dict[str, Any]]:
        """Per-thread accounting, by name."""
        return {name: th.stats() for name, th in self.threads.items()}

    def lock_stats(self) -> dict[str, dict]:
        """Per-lock (and per-line) statistics, by name."""
        return {name: (obj.lock_stats() if hasattr(obj, "lock_stats") else obj.stats())
                for name, obj in self.locks.items()}

    # -- scheduling ------------------------------------------------------------------
    def _schedule(self, t: int, prio: int, action: int, th: Thread) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, prio, self._seq, action, th))

    def _set_state(self, th: Thread, state: str) -> None:
        now = self.now
        dt = now - th.since
        old = th.state
        if old == RUNNING or old == SPINNING:
            th.oncpu_ns += dt
            th.cpu.busy_ns += dt
        elif old == RUNNABLE:
            th.runq_ns += dt
        elif old == BLOCKED:
            th.blocked_ns += dt
        th.state = state
        th.since = now

    def _wake(self, th: Thread) -> None:
        self._set_state(th, RUNNABLE)
        for cpu in self.cpus:
            if cpu.thread is None:
                self._assign(cpu, th)
                return
        self.runq.append(th)

    def _assign(self, cpu: Cpu, th: Thread) -> None:
        now = self.now
        cpu.thread = th
        th.cpu = cpu
        self._set_state(th, RUNNING)
        if th.started_at is None:
            th.started_at = now
        cpu.slice_end = now + self.slice_ns
        delay = 0
        if cpu.last is not None and cpu.last is not th:
            delay = self.costs.context_switch
        cpu.last = th
        if th.prelude is not None:
            # a sleeping waiter granted a lock: take the lock word, then go on
            line, extra = th.prelude
            th.prelude = None
            delay = line.touch(th, now + delay) - now + extra
        self._schedule(now + delay, URGENT if delay == 0 else NORMAL, _CONT, th)

    def _put_cpu(self, th: Thread) -> None:
        cpu = th.cpu
        cpu.thread = None
        th.cpu = None
        if self.runq:
            self._assign(cpu, self.runq.popleft())

    def _cont(self, th: Thread) -> None:
        cpu = th.cpu
        if self.now >= cpu.slice_end:
            if self.runq and th.nonpreempt == 0:
                self._set_state(th, RUNNABLE)
                self.runq.append(th)
                self._put_cpu(th)
                return
            cpu.slice_end = self.now + self.slice_ns
        self._advance(th)

    # -- running a thread's generator ---------------------------------------------------
    def _advance(self, th: Thread) -> None:
        """Send the thread its last result and perform steps until one takes time."""
        value, th.value = th.value, None
        while True:
            gen = th.gens[-1]
            self.active = th
            try:
                step = gen.send(value)
            except StopIteration:
                th.gens.pop()
                if th.gens:
                    value = None
                    continue
                self._finish(th)
                return
            finally:
                self.active = None
            th.steps += 1
            if th.debt:
                debt, th.debt = th.debt, 0
                if type(step) is Cost:
                    self._schedule(self.now + debt + step.ns, NORMAL, _CONT, th)
                else:
                    th.pending = step
                    self._schedule(self.now + debt, NORMAL, _STEP, th)
                return
            if not self._do_step(th, step):
                return
            value, th.value = th.value, None

    def _do_step(self, th: Thread, step: Any) -> bool:
        """Perform one step; True if it completed at once (result in th.value)."""
        now = self.now
        kind = type(step)
        if kind is Cost:
            if step.ns == 0:
                return True
            self._schedule(now + step.ns, NORMAL, _CONT, th)
            return False
        if kind is Acquire:
            return self._acquire(th, step.lock, step.mode)
        if kind is Batch:
            if step.n == 0:
                return True
            if self.aggregated:
                return self._run_fluid(th, step)
            th.gens.append(expand_batch(step, self._rng if self.jitter else None, self.jitter))
            return True
        if kind is Touch:
            if self.aggregated:
                return self._run_fluid(th, Batch(1, (Atomic(step.line, step.count),)))
            done = step.line.touch(th, now, step.count)
            if done == now:
                return True
            self._schedule(done, NORMAL, _CONT, th)
            return False
        if kind is Park:
            th.parked = True
            return False
        if kind is Sleep:
            self._block(th)
            self._schedule(now + step.ns, NORMAL, _WAKE, th)
            return False
        if kind is SynchronizeRcu:
            if th.held:
                raise LockError(f"{th.name}: synchronize_rcu while holding "
                                f"{', '.join(h.lock.name for h in th.held)}")
            self._block(th)
            if step.rcu.synchronize(th):
                self._schedule(now + self.costs.synchronize_rcu, NORMAL, _WAKE, th)
            return False
        raise TypeError(f"{th.name} yielded {step!r}; timing processes yield steps from "
                        "mglru.timing.steps (cost, acquire, touch, sleep, synchronize_rcu, park, "
                        "Batch)")

    def _block(self, th: Thread) -> None:
        self._set_state(th, BLOCKED)
        self._put_cpu(th)

    def _finish(self, th: Thread) -> None:
        if th.held:
            raise LockError(f"{th.name} exited holding "
                            f"{', '.join(f'{h.lock.name}({h.mode})' for h in th.held)}")
        if th.debt:
            debt, th.debt = th.debt, 0
            self._schedule(self.now + debt, NORMAL, _EXIT, th)
            return
        self._exit(th)

    def _exit(self, th: Thread) -> None:
        self._set_state(th, DONE)
        th.finished_at = self.now
        self._planner.forget(th)
        self._put_cpu(th)

    # -- locks -------------------------------------------------------------------------
    def _acquire(self, th: Thread, lock: Lock | Rcu, mode: str) -> bool:
        now = self.now
        lock.check_mode(mode)
        if isinstance(lock, Rcu):
            lock.read_lock(th)
            th.nonpreempt += 1
            held = Held(lock, mode, th, self._release)
            th.held.append(held)
            th.value = held
            return True
        if self.aggregated and self._planner.uses(lock):
            raise ValueError(f"{th.name}: acquire({lock.name}) in aggregated mode on a lock "
                             "that Batch steps use; express this critical section as a Batch")
        held = Held(lock, mode, th, self._release)
        th.held.append(held)
        if lock.spinning:
            th.nonpreempt += 1
        if lock.request(th, mode, now):
            th.value = held
            done = lock.line.touch(th, now)
            if done == now:
                return True
            self._schedule(done, NORMAL, _CONT, th)
            return False
        # queued: the failed RMW still takes the line
        lock.line.touch(th, now)
        th.value = held
        if lock.spinning:
            self._set_state(th, SPINNING)
            th.spin_since = now
        else:
            self._block(th)
        return False

    def _release(self, th: Thread, lock: Lock | Rcu) -> None:
        """Release `lock` held by `th` (from `Held.release`, at the current time)."""
        now = self.now
        for i, h in enumerate(th.held):
            if h.lock is lock:
                del th.held[i]
                break
        if isinstance(lock, Rcu):
            th.nonpreempt -= 1
            for waiter in lock.read_unlock(th, now):
                self._schedule(now + self.costs.synchronize_rcu, NORMAL, _WAKE, waiter)
            return
        lock.release(th, now)
        if lock.spinning:
            th.nonpreempt -= 1
        th.debt += lock.line.touch(th, now) - now
        for waiter, mode in lock.grant_waiters(now):
            # the hand-off crosses the interconnect when the lock word comes from
            # another socket (the releaser's, or the reader's before in the queue)
            last = lock.line.owner
            handoff = round(handoff_ns(self.costs, float(last is not None
                                                         and last.node != waiter.node)))
            if lock.spinning:
                waiter.spin_ns += now - waiter.spin_since
                self._set_state(waiter, RUNNING)
                if mode == READ and lock.kind == "qrwlock":
                    # queued readers pass the wait_lock on one at a time, on the lock's line
                    done = lock.line.touch(waiter, now, extra=handoff)
                else:
                    done = lock.line.touch(waiter, now) + handoff
                self._schedule(done, NORMAL if done > now else URGENT, _CONT, waiter)
            else:
                waiter.prelude = (lock.line, handoff)
                self._schedule(now, URGENT, _WAKE, waiter)

    # -- aggregated batches --------------------------------------------------------------
    def _run_fluid(self, th: Thread, b: Batch) -> bool:
        duration = self._planner.run_batch(th, b, self.now)
        th.batch_span = (self.now, self.now + duration)
        if duration <= 0:
            return True
        self._schedule(self.now + duration, NORMAL, _CONT, th)
        return False

