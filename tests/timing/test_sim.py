"""The event loop: CPUs, the scheduler, determinism, errors. Mirrors mglru/timing/sim.py."""

from __future__ import annotations

import pytest

from mglru.timing import (
    READ,
    WRITE,
    Batch,
    Locked,
    TimingSim,
    Work,
    acquire,
    cost,
    load_costs,
    sleep,
    zero_costs,
)


def cpu_bound(sim, log, name, steps, ns):
    """`steps` steps of `ns`, logging the start of each."""
    for _ in range(steps):
        log.append((name, sim.now))
        yield cost(ns)
    log.append((name + " done", sim.now))


def test_more_threads_than_cpus_round_robin():
    """Three CPU-bound threads on two CPUs share them in slices, paying context switches.

    slice 100, steps of 30, context_switch 10. At 120 both A and B are past
    their slice and C waits: A yields cpu0 to C, B yields cpu1 to A (both resume
    at 130 after the switch). A ends at 190 and B, first in the run queue, takes
    cpu1 (200). C's slice runs out at 230 but nobody waits, so it goes on.
    """
    sim = TimingSim(cpus=2, costs=zero_costs(context_switch=10), slice_ns=100)
    log = []
    for name in "ABC":
        sim.spawn(name, cpu_bound(sim, log, name, 6, 30))
    sim.run()
    assert log == [("A", 0), ("B", 0), ("A", 30), ("B", 30), ("A", 60), ("B", 60), ("A", 90),
                   ("B", 90), ("C", 130), ("A", 130), ("C", 160), ("A", 160), ("C", 190),
                   ("A done", 190), ("B", 200), ("C", 220), ("B", 230), ("C", 250),
                   ("B done", 260), ("C", 280), ("C done", 310)]
    stats = sim.thread_stats()
    assert stats["C"]["runq_ns"] == 120
    assert stats["B"]["runq_ns"] == 70
    assert sum(s["oncpu_ns"] for s in stats.values()) == 3 * 180 + 3 * 10
    assert sim.cpus[0].busy_ns + sim.cpus[1].busy_ns == 3 * 180 + 3 * 10


def test_no_preemption_while_holding_a_spinlock():
    """A thread past its slice keeps the CPU while it holds a spinning lock (preempt off)."""
    sim = TimingSim(cpus=1, costs=zero_costs(), slice_ns=100)
    lock = sim.spinlock("s")
    log = []

    def holder():
        with (yield acquire(lock, WRITE)):
            for _ in range(5):
                log.append(("h", sim.now))
                yield cost(50)
        log.append(("h released", sim.now))
        yield cost(50)
        log.append(("h done", sim.now))

    sim.spawn("h", holder())
    sim.spawn("o", cpu_bound(sim, log, "o", 1, 10))
    sim.run()
    # no switch at 100, 150, 200, 250 (lock held: the step ending at 250 is the
    # last one under the lock); the first boundary after the unlock is 300
    assert log == [("h", 0), ("h", 50), ("h", 100), ("h", 150), ("h", 200), ("h released", 250),
                   ("o", 300), ("o done", 310), ("h done", 310)]


def test_sleep_leaves_the_cpu():
    """A sleeping thread frees its CPU and is runnable again after the sleep."""
    sim = TimingSim(cpus=1, costs=zero_costs())
    log = []

    def sleeper():
        yield cost(10)
        yield sleep(100)
        log.append(("s", sim.now))

    sim.spawn("s", sleeper())
    sim.spawn("o", cpu_bound(sim, log, "o", 2, 30))
    sim.run()
    assert log == [("o", 10), ("o", 40), ("o done", 70), ("s", 110)]
    assert sim.threads["s"].blocked_ns == 100


def test_run_until_stops_and_resumes():
    """run(until) processes events strictly before `until`; a later run continues."""
    sim = TimingSim(cpus=1, costs=zero_costs())
    log = []
    sim.spawn("a", cpu_bound(sim, log, "a", 4, 100))
    assert sim.run(until=250) == 250
    assert log == [("a", 0), ("a", 100), ("a", 200)]
    sim.run()
    assert log[-1] == ("a done", 400)


def test_spawn_validation():
    """Names are unique and threads cannot start in the past."""
    sim = TimingSim(cpus=1, costs=zero_costs())
    sim.spawn("a", cpu_bound(sim, [], "a", 1, 10))
    with pytest.raises(ValueError, match="already exists"):
        sim.spawn("a", cpu_bound(sim, [], "a", 1, 10))
    sim.run()
    with pytest.raises(ValueError, match="in the past"):
        sim.spawn("b", cpu_bound(sim, [], "b", 1, 10), at=0)
    with pytest.raises(ValueError, match="granularity must be one of exact, aggregated"):
        TimingSim(cpus=1, granularity="coarse")


def test_bad_step_is_an_error():
    """Yielding something that is not a step raises, naming the thread (never ignored)."""
    sim = TimingSim(cpus=1, costs=zero_costs())

    def bad():
        yield 42

    sim.spawn("bad", bad())
    with pytest.raises(TypeError, match="bad yielded 42"):
        sim.run()


def _contended_workload(granularity: str) -> tuple[list, dict, dict]:
    sim = TimingSim(cpus=3, costs=load_costs(), granularity=granularity)
    lock = sim.qrwlock("mmu_lock")
    lru = sim.spinlock("lru_lock")
    log = []

    def vcpu(name):
        for i in range(4):
            yield Batch(64, (Work(1500), Locked(lru, WRITE, 600, every=15),
                             Locked(lock, READ, 300)), offset=64 * i)
            log.append((name, sim.now))

    def aging():
        for _ in range(6):
            yield Batch(100, (Work(40), Locked(lock, WRITE, 30)))
            log.append(("aging", sim.now))
            yield cost(20_000)

    for i in range(4):
        sim.spawn(f"vcpu{i}", vcpu(f"vcpu{i}"))
    sim.spawn("aging", aging())
    sim.run()
    return log, sim.thread_stats(), sim.lock_stats()


@pytest.mark.parametrize("granularity", ["exact", "aggregated"])
def test_determinism(granularity):
    """The same inputs give the same timeline and statistics, in both granularities."""
    assert _contended_workload(granularity) == _contended_workload(granularity)


def test_aggregated_mode_rejects_mixing_acquire_and_batches():
    """In aggregated mode a lock used by batches cannot also be taken with acquire()."""
    sim = TimingSim(cpus=2, granularity="aggregated", costs=zero_costs())
    lock = sim.qrwlock("mmu_lock")

    def batcher():
        yield Batch(10, (Work(10), Locked(lock, READ, 5)))

    def acquirer():
        yield cost(1)
        with (yield acquire(lock, WRITE)):
            yield cost(1)

    sim.spawn("b", batcher())
    sim.spawn("a", acquirer())
    with pytest.raises(ValueError, match="express this critical section as a Batch"):
        sim.run()


def test_batch_validation():
    """Batch bodies are segments with every >= 1 and no sleeping locks."""
    sim = TimingSim(cpus=1, costs=zero_costs())
    with pytest.raises(TypeError, match="Work, Atomic or Locked"):
        Batch(1, (cost(5),))
    with pytest.raises(ValueError, match="every must be >= 1"):
        Batch(1, (Work(5, every=0),))
    with pytest.raises(ValueError, match="not the rwsem 'mmap_lock'"):
        Batch(1, (Locked(sim.rwsem("mmap_lock"), READ, 5),))
    assert Batch(100, (Work(1, every=15),), offset=10).count(Work(1, every=15)) == 7
