"""The timing engine: one event loop, locks with kernel semantics, a cost model.

The kernel model decides *what happens*; this package decides *when* and *how
long*. Timing processes are generators that yield steps; see
docs/architecture.md, "Timing engine and benchmarks". The engine knows no
benchmark: scenarios (the `-p` run of access_tracking_perf_test) live in
`mglru.bench` and are built from its steps.

    from mglru.timing import TimingSim, load_costs, cost, acquire, WRITE
    sim = TimingSim(cpus=4, costs=load_costs())
    lock = sim.qrwlock("mmu_lock")
    def writer():
        with (yield acquire(lock, WRITE)):
            yield cost(1000)
    sim.spawn("aging", writer())
    sim.run()

Modules, bottom up: `costs` + costs.toml (the cost model), `threads`
(simulated CPUs and threads), `locks` (spinlock, qrwlock, rwsem, RCU, cache
lines), `steps` (what processes yield), `streams` and `waits` (the mean-field
records and wait formulas), `fluid` (the aggregated planner), `sim` (the event
loop). No module imports one above it, not even for type checking.
"""

from mglru.timing.costs import COST_KEYS, CostEntry, CostModel, load_costs, zero_costs
from mglru.timing.locks import (
    CacheLine,
    Held,
    Lock,
    LockError,
    QRWLock,
    Rcu,
    RWSem,
    SpinLock,
    assert_held,
)
from mglru.timing.sim import GRANULARITIES, NORMAL, URGENT, Thread, TimingSim
from mglru.timing.steps import (
    READ,
    WRITE,
    Atomic,
    Batch,
    Locked,
    Work,
    acquire,
    batch,
    cost,
    park,
    sleep,
    synchronize_rcu,
    touch,
)

__all__ = [
    "COST_KEYS", "CostEntry", "CostModel", "load_costs", "zero_costs",
    "CacheLine", "Held", "Lock", "LockError", "QRWLock", "Rcu", "RWSem", "SpinLock",
    "assert_held",
    "GRANULARITIES", "NORMAL", "URGENT", "Thread", "TimingSim",
    "READ", "WRITE", "Atomic", "Batch", "Locked", "Work", "acquire", "batch", "cost", "park",
    "sleep",
    "synchronize_rcu", "touch",
]
