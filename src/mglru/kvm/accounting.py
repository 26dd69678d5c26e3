"""What each aging notifier call did, for tests and the timing model.

Kernel: virt/kvm/kvm_main.c and each arch's kvm_age_gfn(); v4 3-6/7.

The functional model is sequential, so it does not *take* locks; it records
which ones the modelled kernel would take, how often, and the work done under
them. One `AgingEvent` describes either one notifier call made from Python
(`source="call"`: look-around, rmap, tests) or the aggregate of all calls one
aging walk made on one mm (`source="walk"`), with the same fields, so a timing
model can charge both the same way.

Lock modes: `write` / `read` (kvm->mmu_lock as a rwlock: x86, arm64), `spin`
(mmu_lock as a spinlock: riscv, loongarch, mips, powerpc), `rcu` (an RCU
read-side section: lockless TDP aging), `rmap` (v6.15's per-rmap bit lock).
No entry means no lock.

A long run that needs only sums (an experiment, a replay) keeps a summed log
(`AgingLog(per_call=False)`): one event per notifier, source and set of lock modes
taken, so its memory stays bounded and every total a timing or cost model takes
from the events, including per-event sums conditioned on the locks an event took,
is the per-call log's.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields

__all__ = ["AgingEvent", "AgingLog", "TEST_YOUNG", "CLEAR_YOUNG", "CLEAR_FLUSH_YOUNG",
           "FAST_ONLY", "LOCK_WRITE", "LOCK_READ", "LOCK_SPIN", "LOCK_RCU", "LOCK_RMAP",
           "NOTIFIERS"]

TEST_YOUNG = "test_young"
CLEAR_YOUNG = "clear_young"
CLEAR_FLUSH_YOUNG = "clear_flush_young"
#: v5 what-if (never merged): test_clear_young_fast_only
FAST_ONLY = "test_clear_young_fast_only"
NOTIFIERS = (TEST_YOUNG, CLEAR_YOUNG, CLEAR_FLUSH_YOUNG, FAST_ONLY)

LOCK_WRITE = "write"
LOCK_READ = "read"
LOCK_SPIN = "spin"
LOCK_RCU = "rcu"
LOCK_RMAP = "rmap"


def _empty_counter() -> Counter:
    """An empty Counter without Counter.__init__ (its update() machinery costs 5x the
    allocation; look-around logs one event per KVM call, tens of thousands a second)."""
    return Counter.__new__(Counter)


@dataclass(slots=True)
class AgingEvent:
    """One aging notifier call (or a walk's aggregate of them) on one VM.

    Attributes:
        notifier: which notifier (`NOTIFIERS`).
        source: "call" for one call, "walk" for an aging walk's aggregate.
        calls: notifier calls.
        slot_calls: calls that found at least one memslot (kvm_handle_hva_range(): only
            those take the common mmu_lock).
        ranges: arch handler calls (`kvm_age_gfn`/`kvm_test_age_gfn`), one
            per memslot overlapping a call.
        young: calls that returned young.
        visited: leaf SPTEs (or rmap entries) examined.
        cleared: accessed bits cleared (or SPTEs marked for access tracking).
        atomics: atomic read-modify-writes other than cmpxchg (fetch-and,
            clear_bit).
        cmpxchg: compare-exchange attempts, failed ones and retries included.
        retries: cmpxchg retries (v4 5/7: still a present leaf).
        failed: cmpxchg / try-set races lost and given up.
        flushes: remote TLB flushes (kvm_flush_remote_tlbs).
        locks: lock mode -> acquisitions (a call that would take mmu_lock
            twice never gets here: it raises KernelDeadlock).
    """

    notifier: str
    source: str = "call"
    calls: int = 0
    slot_calls: int = 0
    ranges: int = 0
    young: int = 0
    visited: int = 0
    cleared: int = 0
    atomics: int = 0
    cmpxchg: int = 0
    retries: int = 0
    failed: int = 0
    flushes: int = 0
    locks: Counter = field(default_factory=_empty_counter)

    @property
    def lock(self) -> str:
        """The strongest lock each call takes: write > read > spin > rmap > rcu > none."""
        for mode in (LOCK_WRITE, LOCK_READ, LOCK_SPIN, LOCK_RMAP, LOCK_RCU):
            if self.locks.get(mode):
                return mode
        return "none"

    def add(self, other: AgingEvent) -> None:
        """Accumulate another event's counts into this one."""
        for name in _COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        locks = self.locks
        for mode, n in other.locks.items():  # Counter.update's Mapping test costs more
            locks[mode] = locks.get(mode, 0) + n


#: the counts of an event (what `AgingEvent.add` sums besides the locks)
_COUNTS = tuple(f.name for f in fields(AgingEvent) if f.name not in ("notifier", "source", "locks"))


class AgingLog:
    """The events of one VM: each in order, or (`per_call=False`) summed.

    A summed log keeps one event per (notifier, source, lock modes taken): each new
    event is added into the one of its kind, so `events` holds a few sums whatever
    the run's length, and a sum over events that depends on an event only through
    its counts and which lock modes it took (`totals`, the experiments' lock hold
    times) is the same as over the calls one by one.
    """

    def __init__(self, per_call: bool = True) -> None:
        self.per_call = per_call
        self._events: list[AgingEvent] = []
        self._sums: dict[tuple, AgingEvent] = {}

    @property
    def events(self) -> list[AgingEvent]:
        """The events in order (a summed log: its sums, in the order their kinds came)."""
        return self._events if self.per_call else list(self._sums.values())

    def append(self, ev: AgingEvent) -> None:
        """Record one event."""
        if self.per_call:
            self._events.append(ev)
            return
        self.sum_for(ev.notifier, ev.source,
                     frozenset(m for m, n in ev.locks.items() if n)).add(ev)

    def sum_for(self, notifier: str, source: str, modes: frozenset) -> AgingEvent:
        """The running sum of a summed log's events of one kind (`modes`: the lock modes
        each of them took), for a caller that adds many calls' counts into it at once."""
        total = self._sums.get((notifier, source, modes))
        if total is None:
            total = self._sums[notifier, source, modes] = AgingEvent(notifier, source)
        return total

    def clear(self) -> None:
        """Forget all events (e.g. between the phases of a test)."""
        self._events.clear()
        self._sums.clear()

    def totals(self, notifier: str | None = None, source: str | None = None) -> AgingEvent:
        """Sum of the events of one notifier (all if None), optionally of one source."""
        out = AgingEvent(notifier or "all", source or "all")
        for ev in self.events:
            if notifier not in (None, ev.notifier) or source not in (None, ev.source):
                continue
            out.add(ev)
        return out

    def __len__(self) -> int:
        """Events kept (a summed log: its sums)."""
        return len(self._events) if self.per_call else len(self._sums)
