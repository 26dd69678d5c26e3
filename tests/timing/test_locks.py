"""Lock semantics with exact (who, what, t) timelines. Mirrors mglru/timing/locks.py."""

from __future__ import annotations

import pytest

from mglru.timing import (
    READ,
    WRITE,
    LockError,
    TimingSim,
    acquire,
    assert_held,
    cost,
    synchronize_rcu,
    touch,
    zero_costs,
)


def test_qrwlock_readers_share(sim0, log):
    """Two readers hold a qrwlock at the same time."""
    lock = sim0.qrwlock("l")
    sim0.spawn("r1", log.proc(sim0, "r1", lock, READ, 0, 100))
    sim0.spawn("r2", log.proc(sim0, "r2", lock, READ, 10, 100))
    sim0.run()
    assert log == [("r1", "req", 0), ("r1", "got", 0), ("r2", "req", 10), ("r2", "got", 10),
                   ("r1", "rel", 100), ("r2", "rel", 110)]
    assert lock.stats[READ].contended == 0


def test_qrwlock_writer_waits_for_readers_to_drain(sim0, log):
    """A writer enters only when the last reader leaves."""
    lock = sim0.qrwlock("l")
    sim0.spawn("r1", log.proc(sim0, "r1", lock, READ, 0, 100))
    sim0.spawn("r2", log.proc(sim0, "r2", lock, READ, 0, 150))
    sim0.spawn("w", log.proc(sim0, "w", lock, WRITE, 10, 50))
    sim0.run()
    assert [e for e in log if e[0] == "w"] == [("w", "req", 10), ("w", "got", 150),
                                              ("w", "rel", 200)]
    assert lock.stats[WRITE].wait_ns == 140


def test_qrwlock_writer_preference(sim0, log):
    """A reader arriving while a writer waits queues behind the writer (no reader barging)."""
    lock = sim0.qrwlock("l")
    sim0.spawn("r1", log.proc(sim0, "r1", lock, READ, 0, 100))
    sim0.spawn("w", log.proc(sim0, "w", lock, WRITE, 10, 50))
    sim0.spawn("r2", log.proc(sim0, "r2", lock, READ, 20, 100))
    sim0.run()
    assert log == [("r1", "req", 0), ("r1", "got", 0), ("w", "req", 10), ("r2", "req", 20),
                   ("r1", "rel", 100), ("w", "got", 100), ("w", "rel", 150),
                   ("r2", "got", 150), ("r2", "rel", 250)]


def test_qrwlock_readers_behind_writer_enter_together(sim0, log):
    """Readers queued behind a writer all enter at its release; a writer behind them waits."""
    lock = sim0.qrwlock("l")
    sim0.spawn("w1", log.proc(sim0, "w1", lock, WRITE, 0, 100))
    sim0.spawn("r1", log.proc(sim0, "r1", lock, READ, 10, 30))
    sim0.spawn("r2", log.proc(sim0, "r2", lock, READ, 20, 50))
    sim0.spawn("w2", log.proc(sim0, "w2", lock, WRITE, 30, 10))
    sim0.run()
    got = {e[0]: e[2] for e in log if e[1] == "got"}
    assert got == {"w1": 0, "r1": 100, "r2": 100, "w2": 150}


def test_writers_are_fifo(sim0, log):
    """Queued writers (and spinlock waiters) are granted in arrival order."""
    lock = sim0.spinlock("s")
    for i, start in enumerate((0, 30, 10, 20)):
        sim0.spawn(f"t{i}", log.proc(sim0, f"t{i}", lock, WRITE, start, 100))
    sim0.run()
    got = [e[0] for e in log if e[1] == "got"]
    assert got == ["t0", "t2", "t3", "t1"]
    assert [e[2] for e in log if e[1] == "got"] == [0, 100, 200, 300]


def test_spinlock_waiters_burn_cpu(log):
    """A spinning waiter keeps its CPU: a runnable thread cannot use it meanwhile."""
    sim = TimingSim(cpus=2, costs=zero_costs())
    lock = sim.spinlock("s")
    sim.spawn("holder", log.proc(sim, "holder", lock, WRITE, 0, 1000))
    sim.spawn("spinner", log.proc(sim, "spinner", lock, WRITE, 10, 100))

    def other():
        log.append(("other", "run", sim.now))
        yield cost(50)

    sim.spawn("other", other(), at=20)
    sim.run()
    # both CPUs stay busy (holder working, spinner spinning) until the holder exits
    assert ("other", "run", 1000) in log
    assert sim.threads["spinner"].spin_ns == 990
    assert sim.threads["spinner"].oncpu_ns == 1100   # 10 work + 990 spin + 100 hold
    assert sim.threads["other"].runq_ns == 980


def test_rwsem_waiters_sleep(log):
    """An rwsem waiter leaves its CPU, so another thread runs meanwhile."""
    sim = TimingSim(cpus=2, costs=zero_costs())
    sem = sim.rwsem("mmap_lock")
    sim.spawn("holder", log.proc(sim, "holder", sem, WRITE, 0, 1000))
    sim.spawn("sleeper", log.proc(sim, "sleeper", sem, READ, 10, 100))

    def other():
        log.append(("other", "run", sim.now))
        yield cost(50)

    sim.spawn("other", other(), at=20)
    sim.run()
    assert ("other", "run", 20) in log
    assert ("sleeper", "got", 1000) in log
    assert sim.threads["sleeper"].blocked_ns == 990
    assert sim.threads["sleeper"].spin_ns == 0


def test_rcu_readers_never_block(sim0, log):
    """rcu_read_lock enters at once while a grace period is pending and a writer holds a lock."""
    rcu = sim0.rcu
    lock = sim0.qrwlock("mmu_lock")
    sim0.spawn("w", log.proc(sim0, "w", lock, WRITE, 0, 1000))
    sim0.spawn("r1", log.proc(sim0, "r1", rcu, READ, 0, 500))

    def gp():
        yield cost(100)
        log.append(("gp", "start", sim0.now))
        yield synchronize_rcu(rcu)
        log.append(("gp", "end", sim0.now))

    sim0.spawn("gp", gp())
    sim0.spawn("r2", log.proc(sim0, "r2", rcu, READ, 200, 800))
    sim0.run()
    got = {e[0]: e[2] for e in log if e[1] == "got"}
    assert got["r1"] == 0 and got["r2"] == 200
    # the grace period waits for r1 (present at its start), not for r2 (arrived later)
    assert ("gp", "end", 500) in log


def test_synchronize_rcu_latency_is_charged(log):
    """synchronize_rcu costs at least the `synchronize_rcu` latency after the last old reader."""
    sim = TimingSim(cpus=2, costs=zero_costs(synchronize_rcu=1000))
    sim.spawn("r", log.proc(sim, "r", sim.rcu, READ, 0, 300))

    def gp():
        yield synchronize_rcu(sim.rcu)
        log.append(("gp", "end", sim.now))

    sim.spawn("gp", gp())
    sim.run()
    assert ("gp", "end", 1300) in log


def test_handoff_costs_charged(log):
    """Line transfer on owner change, lock_handoff on a contended grant, release RMW as debt.

    atomic=1, cacheline_transfer=10, lock_handoff=5. r1 takes the line cold (1).
    w queues at 10 (its failed RMW moves the line: 10..20), r2 at 20 (20..30).
    r1 releases at 101: its RMW waits for nothing but moves the line back
    (101..111), so r1 ends at 111. w is granted at 101: RMW after r1's (111..121)
    plus the hand-off, resuming at 126. w releases at 176 (its own line: 1 ns,
    ends at 177); r2 is granted at 176: 177..187 plus 5 = 192.
    """
    sim = TimingSim(cpus=4, costs=zero_costs(atomic=1, cacheline_transfer=10, lock_handoff=5))
    lock = sim.qrwlock("l")
    sim.spawn("r1", log.proc(sim, "r1", lock, READ, 0, 100))
    sim.spawn("w", log.proc(sim, "w", lock, WRITE, 10, 50))
    sim.spawn("r2", log.proc(sim, "r2", lock, READ, 20, 100))
    sim.run()
    assert log == [("r1", "req", 0), ("r1", "got", 1), ("w", "req", 10), ("r2", "req", 20),
                   ("r1", "rel", 101), ("w", "got", 126), ("w", "rel", 176),
                   ("r2", "got", 192), ("r2", "rel", 292)]
    assert sim.threads["r1"].finished_at == 111
    assert sim.threads["w"].finished_at == 177
    line = lock.line.stats()
    assert line["touches"] == 8 and line["transfers"] == 5


def test_assert_held(sim0):
    """assert_held passes for the holder (and mode), raises for others and outside."""
    lock = sim0.qrwlock("l")
    seen = []

    def holder():
        with (yield acquire(lock, READ)):
            assert_held(lock)
            assert_held(lock, READ)
            with pytest.raises(LockError, match="for write"):
                assert_held(lock, WRITE)
            seen.append("ok")
            yield cost(10)
        with pytest.raises(LockError, match="holders: none"):
            assert_held(lock)
        seen.append("after")

    sim0.spawn("h", holder())
    sim0.run()
    assert seen == ["ok", "after"]
    with pytest.raises(LockError, match="no running thread"):
        assert_held(lock)


def test_lockdep_errors(sim0):
    """Recursive locking, double unlock and exiting with a lock held raise LockError."""
    lock = sim0.spinlock("s")

    def recursive():
        with (yield acquire(lock, WRITE)):
            yield acquire(lock, WRITE)

    sim0.spawn("rec", recursive())
    with pytest.raises(LockError, match="recursive"):
        sim0.run()

    sim = TimingSim(cpus=1, costs=zero_costs())
    lock = sim.spinlock("s")

    def leaker():
        yield acquire(lock, WRITE)

    sim.spawn("leak", leaker())
    with pytest.raises(LockError, match="exited holding s"):
        sim.run()

    sim = TimingSim(cpus=1, costs=zero_costs())
    lock = sim.spinlock("s")

    def double():
        held = yield acquire(lock, WRITE)
        held.release()
        held.release()

    sim.spawn("double", double())
    with pytest.raises(LockError, match="double unlock"):
        sim.run()


def test_with_releases_on_exception(sim0, log):
    """An exception inside `with (yield acquire(...))` still releases the lock."""
    lock = sim0.spinlock("s")

    def failing():
        try:
            with (yield acquire(lock, WRITE)):
                yield cost(10)
                raise RuntimeError("boom")
        except RuntimeError:
            log.append(("f", "caught", sim0.now))

    sim0.spawn("f", failing())
    sim0.spawn("w", log.proc(sim0, "w", lock, WRITE, 5, 10))
    sim0.run()
    assert ("w", "got", 10) in log
    assert not lock.holders


def test_modes_checked(sim0):
    """A spinlock has no read mode and RCU has no write mode; errors list the valid ones."""
    lock = sim0.spinlock("s")

    def bad():
        yield acquire(lock, READ)

    sim0.spawn("bad", bad())
    with pytest.raises(ValueError, match="takes mode"):
        sim0.run()
    with pytest.raises(ValueError, match="must be one of read, write"):
        acquire(lock, "exclusive")


def test_cache_line_contention_queues_and_transfers():
    """Atomics on one line queue FIFO; a line last touched by another thread costs a transfer."""
    sim = TimingSim(cpus=2, costs=zero_costs(atomic=1, cacheline_transfer=10))
    line = sim.line("page_counter")
    log = []

    def toucher(name, start, times):
        yield cost(start)
        for _ in range(times):
            yield touch(line)
            log.append((name, sim.now))

    sim.spawn("a", toucher("a", 0, 2))
    sim.spawn("b", toucher("b", 0, 1))
    sim.run()
    # a: cold line, 0..1; b queues behind it and moves the line, 1..11; a's second
    # atomic, issued at 1, queues behind b's and moves the line back, 11..21
    assert log == [("a", 1), ("b", 11), ("a", 21)]
    assert line.stats() == {"touches": 3, "transfers": 2, "wait_ns": 1 + 10}
    assert sim.threads["b"].spin_ns == 1 and sim.threads["a"].spin_ns == 10


def test_rwsem_writer_preference(sim0, log):
    """rw_semaphore follows the same queue rule: a waiting writer blocks later readers."""
    sem = sim0.rwsem("mmap_lock")
    sim0.spawn("r1", log.proc(sim0, "r1", sem, READ, 0, 100))
    sim0.spawn("w", log.proc(sim0, "w", sem, WRITE, 10, 50))
    sim0.spawn("r2", log.proc(sim0, "r2", sem, READ, 20, 100))
    sim0.run()
    got = {e[0]: e[2] for e in log if e[1] == "got"}
    assert got == {"r1": 0, "w": 100, "r2": 150}
