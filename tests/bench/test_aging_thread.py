"""The aging side of the -p scenario: passes, chunks, driver. Mirrors mglru/bench/aging_thread.py.

The chunks are made up (tests/bench/bench_harness.py); the thread, the driver
and the notifier-call cost formula are the scenario's.
"""

from __future__ import annotations

import pytest
from bench_harness import calls, chunk, drive, fault_benchmark, one_pass, start_aging, uniform_pass

from mglru.bench.fault import VmLocks
from mglru.timing import READ, WRITE, TimingSim, zero_costs

GRANULARITIES = ["exact", "aggregated"]


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("mode, lock, lock_mode", [
    ("write", "mmu_lock", WRITE), ("read", "mmu_lock", READ), ("rcu", "rcu", READ),
])
def test_aging_pass_takes_the_lock_per_call(granularity, mode, lock, lock_mode):
    """Each call of a pass takes the lock its mode names, once."""
    sim = TimingSim(cpus=1, granularity=granularity)
    vm = VmLocks.create(sim)
    one_pass(sim, vm, uniform_pass(1500, mode, visited=1))
    assert sim.lock_stats()[lock][lock_mode]["acquired"] == 1500


def test_aging_pass_time_alone():
    """A pass alone costs the fixed cost, the walk and the calls, nothing else."""
    c = zero_costs(aging_pass_fixed=1000, pte_table=100, pte_walk=10, folio_update_gen=5,
                   notifier_call=40, spte_test_clear=15, atomic=3)
    chunks = [chunk(512, 7, (calls("clear_young", "none", 100, 200, 100),)), chunk(300, 0, ())]
    sim = TimingSim(cpus=1, costs=c)
    vm = VmLocks.create(sim)
    one_pass(sim, vm, chunks)
    walk = 2 * 100 + (512 + 300) * 10 + 7 * 5
    calls_ns = 100 * (40 + 2 * 15 + 3)
    assert sim.threads["aging"].finished_at == 1000 + walk + calls_ns


def test_aging_loop_records_passes():
    """The loop runs passes until done() and reports total time / passes."""
    sim = TimingSim(cpus=1, costs=zero_costs(aging_pass_fixed=100, pte_walk=1))
    vm = VmLocks.create(sim)
    passes = iter(range(3))
    state = {"left": 3}

    def done():
        return state["left"] == 0

    def make_pass(nr):
        state["left"] -= 1
        next(passes)
        return [chunk(50)]

    th, record = start_aging(sim, vm, done)
    drive(sim, th, make_pass)
    assert record.pass_ns == [150, 150, 150]
    assert record.avg_pass_ns == 150


def test_inc_min_seq_folios_are_paid_under_lru_lock():
    """The folios a pass moves up are paid under lru_lock, MAX_LRU_BATCH per hold."""
    from mglru.bench.aging_thread import drive_aging
    from mglru.lru_gen.helpers import MAX_LRU_BATCH

    sim = TimingSim(cpus=1, costs=zero_costs(aging_pass_fixed=100, inc_min_seq_folio=2))
    vm = VmLocks.create(sim)
    th, record = start_aging(sim, vm, lambda: record.passes >= 1)
    moved = 2 * MAX_LRU_BATCH + 5
    drive_aging(sim, th, lambda: moved)
    assert sim.lock_stats()["lru_lock"][WRITE]["acquired"] == 3
    assert record.pass_ns == [100 + 2 * moved]


def test_scale_112_vcpus_x_1gib_aggregated():
    """112 vCPUs x 262144 pages with write-locked aging stays in the low 10^4-10^5 events."""
    sim = TimingSim(cpus=113, granularity="aggregated")
    vm = VmLocks.create(sim)
    result = fault_benchmark(sim, vm, 112, 262144, batch_pages=4096,
                             make_pass=lambda pr, nr: uniform_pass(pr.pages_at(sim.now), "write",
                                                                   tables_per_chunk=8))
    assert result.events < 100_000
    assert result.passes >= 2
    assert result.vcpu_wall_ns > 262144 * 3000
