"""Locks with kernel semantics, and the cache lines under them.

Mechanism. A lock is a resource in the SimPy sense: the base class keeps the
holders, a FIFO queue of waiters and per-mode statistics, and a subclass supplies
only the `_do_acquire(mode)` hook, "can a new holder in `mode` enter given the
current holders". The base applies it FIFO:

* a request is granted at once only if the queue is empty and `_do_acquire`
  agrees; otherwise it joins the tail of the queue;
* after every release the head of the queue is granted while `_do_acquire`
  agrees, so consecutive readers at the head enter together.

With `QRWLock._do_acquire` (readers share; a writer needs the lock free) this
is the kernel's queued rwlock: a waiting writer blocks every reader that arrives
after it (writer preference), nobody starves, and a batch of readers queued
behind a writer enters together when the writer leaves
(`queued_read_lock_slowpath` / `queued_write_lock_slowpath`). `SpinLock` is the
queued spinlock (exclusive, FIFO). `RWSem` is the rw_semaphore (mmap_lock) with
the same queue rule, but its waiters sleep instead of spinning. `Rcu` never
blocks a reader; `synchronize_rcu` waits for the readers present when it starts.

Whether waiters spin is the lock's `spinning` attribute: spinning waiters keep
their CPU (and burn it: the time is `spin_ns`), sleeping waiters leave it. A
holder of a spinning lock, or of an RCU read section, is not preemptible
(spin_lock/read_lock/rcu_read_lock disable preemption on a PREEMPT_NONE kernel).

Every lock word is a `CacheLine`: a FIFO server of atomics. An atomic on a
line last touched by the same thread costs `atomic`; on a line last touched by
another thread it costs `cacheline_transfer` (the line moves; `cacheline_transfer_remote`
from a thread on another socket, `mglru.timing.topology`), and atomics queue
behind each other, so contention on a hot line emerges from queueing. Taking a
lock touches its line (the acquiring RMW); releasing touches it again; a waiter
granted the lock also pays `lock_handoff` (noticing the release); readers let in
together by a writer's release pay it one after the other on the lock word's
line (queued_read_lock_slowpath: each takes the wait_lock in turn, adds its
bias, and passes the wait_lock on), so the last of k enters k hand-offs and
transfers after the release. The timing is
applied by the event loop (`mglru.timing.sim`); this module is state and counts,
and the loop drives it through a small interface: `Lock.request`, `release` and
`grant_waiters`, `Rcu.read_lock`, `read_unlock` and `synchronize`, `CacheLine.touch`.

Release is `with`: the process resumes from `acquire` with a `Held`, whose
`__exit__` releases, so `with (yield acquire(lock, WRITE)):` can never leak a
lock, even when the body raises. `assert_held(lock)` is lockdep_assert_held.

Future optimizations:
1. qspinlock's pending bit and the interrupt-context reader bypass of qrwlock.
2. rwsem optimistic spinning (waiters spin while the owner runs, then sleep).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from mglru.timing.costs import CostModel
    from mglru.timing.threads import Thread

__all__ = ["READ", "WRITE", "MODES", "LockError", "ModeStats", "Machine", "CacheLine", "Lock",
           "SpinLock", "QRWLock", "RWSem", "Rcu", "Held", "assert_held"]

#: shared mode: read_lock, down_read, rcu_read_lock
READ = "read"
#: exclusive mode: write_lock, spin_lock, down_write
WRITE = "write"
MODES = (READ, WRITE)


class Machine(Protocol):
    """What locks need of the event loop (`mglru.timing.sim.TimingSim`)."""

    #: the cost model (atomics, line transfers)
    costs: CostModel
    #: the thread whose generator is running (lockdep checks), or None
    active: Thread | None


class LockError(AssertionError):
    """A lockdep-style violation: recursion, double unlock, exit with a lock held."""


@dataclass(slots=True)
class ModeStats:
    """Per-mode counts of one lock (floats: aggregated mode adds expectations).

    Attributes:
        acquired: acquisitions.
        contended: acquisitions that had to wait in the queue.
        wait_ns: total time from request to grant.
        max_wait_ns: the longest single wait (exact mode only).
        hold_ns: total time from grant to release.
    """

    acquired: float = 0
    contended: float = 0
    wait_ns: float = 0
    max_wait_ns: float = 0
    hold_ns: float = 0

    def as_dict(self) -> dict[str, float]:
        """The counts as a plain dict (for JSON)."""
        return {"acquired": self.acquired, "contended": self.contended, "wait_ns": self.wait_ns,
                "max_wait_ns": self.max_wait_ns, "hold_ns": self.hold_ns}


class CacheLine:
    """A shared cache line: a FIFO server of atomics with a last owner.

    Attributes:
        name: for statistics.
        owner: the thread that touched the line last (None: nobody yet).
        free_at: when the atomics queued so far are done.
        touches, transfers, wait_ns: statistics.
    """

    kind = "line"

    def __init__(self, sim: Machine, name: str) -> None:
        self.sim = sim
        self.name = name
        self.owner: Thread | None = None
        self.free_at = 0
        self.touches: float = 0
        self.transfers: float = 0
        self.wait_ns: float = 0

    def __repr__(self) -> str:
        return f"CacheLine({self.name!r})"

    def touch(self, th: Thread, now: int, count: int = 1, extra: int = 0) -> int:
        """Queue `count` atomics by `th` at `now`; return when they are done.

        `extra` ns keep the line busy after them (a hand-off done on this line).
        """
        costs = self.sim.costs
        start = now if now >= self.free_at else self.free_at
        svc = costs.atomic * count + extra
        if self.owner is not None and self.owner is not th:
            # from a core on another socket the line crosses the interconnect
            svc += (costs.cacheline_transfer_remote if self.owner.node != th.node
                    else costs.cacheline_transfer) - costs.atomic
            self.transfers += 1
        self.owner = th
        self.touches += count
        self.wait_ns += start - now
        th.spin_ns += start - now
        self.free_at = start + svc
        return self.free_at

    def stats(self) -> dict[str, float]:
        """Touches, transfers and queueing time."""
        return {"touches": self.touches, "transfers": self.transfers, "wait_ns": self.wait_ns}


class Lock:
    """Base of the blocking locks: holders, FIFO waiters, stats. See the module docstring.

    Subclasses set `kind`, `spinning`, `modes` and implement `_do_acquire`.
    """

    kind = "lock"
    spinning = True
    modes: tuple[str, ...] = MODES

    def __init__(self, sim: Machine, name: str) -> None:
        self.sim = sim
        self.name = name
        self.line = CacheLine(sim, name)
        self.holders: dict[Thread, str] = {}
        self.nr_readers = 0
        self.writer: Thread | None = None
        self.waiters: deque[tuple[Thread, str, int]] = deque()
        self.stats = {m: ModeStats() for m in self.modes}
        self._granted_at: dict[Thread, int] = {}

    def __repr__(self) -> str:
        holders = ", ".join(f"{t.name}({m})" for t, m in self.holders.items())
        return (f"{type(self).__name__}({self.name!r}, holders=[{holders}], "
                f"waiters={len(self.waiters)})")

    # -- the hook ----------------------------------------------------------------
    def _do_acquire(self, mode: str) -> bool:
        """Can a holder in `mode` enter now, given only the current holders?"""
        raise NotImplementedError

    # -- state changes (the event loop's interface) ---------------------------------
    def check_mode(self, mode: str) -> None:
        """Raise ValueError unless this lock takes `mode`."""
        if mode not in self.modes:
            raise ValueError(f"{self.kind} {self.name!r} takes mode(s) {', '.join(self.modes)}; "
                             f"got {mode!r}")

    def request(self, th: Thread, mode: str, now: int) -> bool:
        """A request by `th`: True if granted now, else queued FIFO."""
        self.check_mode(mode)
        if th in self.holders:
            raise LockError(f"{th.name}: recursive {self.kind} {self.name!r} ({mode}) while "
                            f"holding it ({self.holders[th]})")
        if not self.waiters and self._do_acquire(mode):
            self._grant(th, mode, now, now, queued=False)
            return True
        self.waiters.append((th, mode, now))
        return False

    def _grant(self, th: Thread, mode: str, now: int, requested: int, queued: bool) -> None:
        self.holders[th] = mode
        if mode == WRITE:
            self.writer = th
        else:
            self.nr_readers += 1
        self._granted_at[th] = now
        st = self.stats[mode]
        st.acquired += 1
        wait = now - requested
        if queued:
            st.contended += 1
        st.wait_ns += wait
        if wait:
            th.lock_wait_ns[self] = th.lock_wait_ns.get(self, 0) + wait
        if wait > st.max_wait_ns:
            st.max_wait_ns = wait

    def release(self, th: Thread, now: int) -> str:
        """`th` releases: update the state; return the mode it held."""
        try:
            mode = self.holders.pop(th)
        except KeyError:
            raise LockError(f"{th.name}: unlock of {self.kind} {self.name!r} it does not hold") \
                from None
        if mode == WRITE:
            self.writer = None
        else:
            self.nr_readers -= 1
        self.stats[mode].hold_ns += now - self._granted_at.pop(th)
        return mode

    def grant_waiters(self, now: int) -> list[tuple[Thread, str]]:
        """After a release: grant from the head of the queue while `_do_acquire` agrees."""
        granted = []
        while self.waiters:
            th, mode, requested = self.waiters[0]
            if not self._do_acquire(mode):
                break
            self.waiters.popleft()
            self._grant(th, mode, now, requested, queued=True)
            granted.append((th, mode))
        return granted

    # -- lockdep -----------------------------------------------------------------
    def assert_held(self, mode: str | None = None) -> None:
        """lockdep_assert_held: the running thread holds this lock (in `mode`, if given).

        Raises:
            LockError: it does not.
        """
        th = self.sim.active
        held = self.holders.get(th) if th is not None else None
        if held is None or (mode is not None and held != mode):
            who = th.name if th is not None else "<no running thread>"
            holders = ", ".join(f"{t.name}({m})" for t, m in self.holders.items()) or "none"
            want = f" for {mode}" if mode else ""
            raise LockError(f"lockdep_assert_held({self.name}){want} failed in {who}; "
                            f"holders: {holders}")

    def lock_stats(self) -> dict:
        """Per-mode statistics plus the lock word's line statistics."""
        out = {m: s.as_dict() for m, s in self.stats.items()}
        out["line"] = self.line.stats()
        return out


class SpinLock(Lock):
    """spinlock_t (queued spinlock): exclusive, FIFO, waiters spin. Use mode WRITE."""

    kind = "spinlock"
    spinning = True
    modes = (WRITE,)

    def _do_acquire(self, mode: str) -> bool:
        return not self.holders


class QRWLock(Lock):
    """rwlock_t (queued rwlock): readers share, writers exclusive, writer preference, FIFO.

    A waiting writer blocks readers that arrive after it because the base class
    queues any request while the queue is non-empty. Waiters spin.
    """

    kind = "qrwlock"
    spinning = True

    def _do_acquire(self, mode: str) -> bool:
        if mode == READ:
            return self.writer is None
        return not self.holders


class RWSem(QRWLock):
    """rw_semaphore (e.g. mmap_lock): qrwlock's queue rule, but waiters sleep."""

    kind = "rwsem"
    spinning = False


class Rcu:
    """RCU: `rcu_read_lock` never blocks; `synchronize_rcu` waits for current readers.

    Readers take it with `acquire(rcu, READ)` (nesting allowed) and release with
    `with`. A read section costs nothing beyond its work (a per-task counter) and
    makes the holder non-preemptible.
    """

    kind = "rcu"
    spinning = False
    modes = (READ,)

    def __init__(self, sim: Machine, name: str = "rcu") -> None:
        self.sim = sim
        self.name = name
        self.readers: dict[Thread, int] = {}
        self.stats = {READ: ModeStats()}
        self.grace_periods = 0
        self._gp_waiters: list[tuple[Thread, set]] = []

    def __repr__(self) -> str:
        return f"Rcu({self.name!r}, readers={len(self.readers)})"

    def check_mode(self, mode: str) -> None:
        """Raise ValueError unless `mode` is READ (RCU has read-side sections only)."""
        if mode != READ:
            raise ValueError(f"rcu {self.name!r} has only read-side sections (mode {READ!r}); "
                             f"got {mode!r}")

    def read_lock(self, th: Thread) -> None:
        """rcu_read_lock by `th` (nesting counts)."""
        self.readers[th] = self.readers.get(th, 0) + 1
        self.stats[READ].acquired += 1

    def read_unlock(self, th: Thread, now: int) -> list[Thread]:
        """Leave one nesting level; return the synchronize_rcu waiters now free."""
        depth = self.readers.get(th, 0)
        if depth == 0:
            raise LockError(f"{th.name}: rcu_read_unlock without rcu_read_lock")
        if depth > 1:
            self.readers[th] = depth - 1
            return []
        del self.readers[th]
        freed = []
        for entry in list(self._gp_waiters):
            waiter, pending = entry
            pending.discard(th)
            if not pending:
                self._gp_waiters.remove(entry)
                freed.append(waiter)
        return freed

    def synchronize(self, th: Thread) -> bool:
        """Start a grace period for `th`: True if no reader has to be waited for."""
        self.grace_periods += 1
        if th in self.readers:
            raise LockError(f"{th.name}: synchronize_rcu inside an RCU read section")
        if not self.readers:
            return True
        self._gp_waiters.append((th, set(self.readers)))
        return False

    def assert_held(self, mode: str | None = None) -> None:
        """rcu_read_lock_held(): the running thread is in a read section.

        Raises:
            LockError: it is not.
        """
        th = self.sim.active
        if th is None or th not in self.readers:
            who = th.name if th is not None else "<no running thread>"
            raise LockError(f"rcu_read_lock_held() failed in {who}")

    def lock_stats(self) -> dict:
        """Read-side sections entered and grace periods started."""
        return {READ: self.stats[READ].as_dict(), "grace_periods": self.grace_periods}


class Held:
    """A granted lock, as a context manager: `__exit__` releases it.

    Attributes:
        lock: the lock.
        mode: the mode granted.
        thread: the holder.
    """

    __slots__ = ("lock", "mode", "thread", "released", "_on_release")

    def __init__(self, lock: Lock | Rcu, mode: str, thread: Thread,
                 on_release: Callable[[Thread, Lock | Rcu], None]) -> None:
        self.lock = lock
        self.mode = mode
        self.thread = thread
        self.released = False
        #: the event loop's release, which applies its timing
        self._on_release = on_release

    def __repr__(self) -> str:
        return f"Held({self.lock.name!r}, {self.mode}, {self.thread.name})"

    def __enter__(self) -> Held:
        return self

    def __exit__(self, *exc: object) -> bool:
        if not self.released:
            self.release()
        return False

    def release(self) -> None:
        """Release now (at the simulated time of the running step).

        Raises:
            LockError: already released (a double unlock).
        """
        if self.released:
            raise LockError(f"{self.thread.name}: double unlock of {self.lock.name!r}")
        self.released = True
        self._on_release(self.thread, self.lock)


def assert_held(lock: Lock | Rcu, mode: str | None = None) -> None:
    """lockdep_assert_held(lock) for the running timing process (STYLE item 5).

    Raises:
        LockError: the running thread does not hold `lock` (in `mode`).
    """
    lock.assert_held(mode)
