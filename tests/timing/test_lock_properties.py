"""Lock semantics as properties over random workloads (hypothesis; exact mode, real costs).

Random threads take a qrwlock (read or write), a spinlock and RCU read
sections in random order, with random work inside and between, on a machine
with fewer or more CPUs than threads, with and without cost jitter. Whatever
the interleaving, the timeline must keep:

* exclusion: a writer's critical section overlaps no other holder's on its lock;
  spinlock sections never overlap;
* writer preference: a reader that asks while a writer is queued ahead of it is
  granted after that writer;
* FIFO writers: two writers of one lock enter in the order they asked;
* RCU readers never wait;
* progress and accounting: every thread finishes, no thread finishes before its
  own work adds up, each lock's `acquired` equals the acquisitions made;
* determinism: the same workload and seed give the same timeline.
"""

from __future__ import annotations

from hypothesis import given, settings, strategies as st

from mglru.timing import READ, WRITE, TimingSim, acquire, cost, load_costs

OPS = st.lists(
    st.tuples(st.sampled_from(["rd", "wr", "spin", "rcu", "work"]),
              st.integers(0, 400),      # ns inside the section (or of plain work)
              st.integers(0, 300)),     # ns of work after it
    min_size=1, max_size=12)


def _run(workload: list[list[tuple[str, int, int]]], cpus: int, jitter: float, seed: int):
    sim = TimingSim(cpus, load_costs(), granularity="exact", jitter=jitter, seed=seed)
    rw = sim.qrwlock("rw")
    spin = sim.spinlock("spin")
    seq = [0]
    events: list[tuple] = []   # (thread, op, ask order, asked at, entered at, left at)
    finished: dict[str, int] = {}

    def thread(name, ops):
        for op, inside, after in ops:
            if op == "work":
                yield cost(inside + after)
                continue
            lock, mode = {"rd": (rw, READ), "wr": (rw, WRITE), "spin": (spin, WRITE),
                          "rcu": (sim.rcu, READ)}[op]
            # settle the previous release's line touch (charged before the next
            # step) so that `asked` is when this request is really made
            yield cost(0)
            seq[0] += 1
            order, asked = seq[0], sim.now
            with (yield acquire(lock, mode)):
                entered = sim.now
                if inside:
                    yield cost(inside)
                left = sim.now
            events.append((name, op, order, asked, entered, left))
            if after:
                yield cost(after)
        finished[name] = sim.now

    for i, ops in enumerate(workload):
        sim.spawn(f"t{i}", thread(f"t{i}", ops))
    sim.run()
    return sim, rw, spin, events, finished


def _overlap(a, b) -> bool:
    return a[4] < b[5] and b[4] < a[5]


@settings(max_examples=60, deadline=None)
@given(workload=st.lists(OPS, min_size=1, max_size=5), cpus=st.integers(1, 6),
       jitter=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 3))
def test_lock_invariants_hold_for_any_workload(workload, cpus, jitter, seed):
    sim, rw, spin, events, finished = _run(workload, cpus, jitter, seed)
    # progress: every thread ran to its end, none before its own work
    assert set(finished) == {f"t{i}" for i in range(len(workload))}
    if jitter == 0.0:
        for i, ops in enumerate(workload):
            assert finished[f"t{i}"] >= sum(a + b for _, a, b in ops)
    writes = [e for e in events if e[1] == "wr"]
    reads = [e for e in events if e[1] == "rd"]
    spins = [e for e in events if e[1] == "spin"]
    # exclusion (sections with work inside: an empty one has no interval)
    for w in writes:
        for o in writes + reads:
            if o is not w:
                assert not _overlap(w, o), (w, o)
    for a in spins:
        for b in spins:
            if a is not b:
                assert not _overlap(a, b), (a, b)
    # writer preference: a reader asking after a writer that was still queued
    # (asked earlier, entered later than the reader asked) enters after it
    for w in writes:
        for r in reads:
            if w[2] < r[2] and w[4] > r[3]:
                assert r[4] >= w[4], (w, r)
    # FIFO among writers of one lock
    for a in writes:
        for b in writes:
            if a[2] < b[2]:
                assert a[4] <= b[4], (a, b)
    # RCU readers never wait
    assert all(e[4] == e[3] for e in events if e[1] == "rcu")
    # accounting
    assert rw.stats[READ].acquired == len(reads)
    assert rw.stats[WRITE].acquired == len(writes)
    assert spin.stats[WRITE].acquired == len(spins)
    assert not rw.holders and not rw.waiters and not spin.holders


@settings(max_examples=15, deadline=None)
@given(workload=st.lists(OPS, min_size=1, max_size=4), cpus=st.integers(1, 4),
       seed=st.integers(0, 3))
def test_same_workload_and_seed_give_the_same_timeline(workload, cpus, seed):
    a = _run(workload, cpus, 0.3, seed)
    b = _run(workload, cpus, 0.3, seed)
    assert a[3] == b[3] and a[4] == b[4] and a[0].now == b[0].now
