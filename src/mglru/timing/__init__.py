"""The timing model: one event loop, locks with kernel semantics, a cost model (issue 6).

The kernel model decides *what happens*; this package decides *when* and *how
long* (DESIGN.md, "Function and time are separate concerns"). Timing processes
are generators that yield steps; see docs/architecture.md, "Timing model".

    from mglru.timing import TimingSim, load_costs, cost, acquire, WRITE
    sim = TimingSim(cpus=4, costs=load_costs())
    lock = sim.qrwlock("mmu_lock")
    def writer():
        with (yield acquire(lock, WRITE)):
            yield cost(1000)
    sim.spawn("aging", writer())
    sim.run()

Modules: `steps` (what processes yield), `locks` (spinlock, qrwlock, rwsem,
RCU, cache lines), `sim` (the event loop and CPUs), `fluid` (aggregated
granularity), `costs` + costs.toml (the cost model), `workloads` (generator
factories for the `-p` benchmark: vCPU faulting, aging passes), `lru_gen_bench`
(the simulated `access_tracking_perf_test -p` run on a SimKernel: `seed_benchmark`,
`run_lru_gen_benchmark`), `calibrate` (the cover letter's rows 1-16).
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
