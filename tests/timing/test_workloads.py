"""Generator factories for the -p benchmark. Mirrors mglru/timing/workloads.py."""

from __future__ import annotations

import pytest

from mglru.timing import READ, WRITE, TimingSim, zero_costs
from mglru.timing.workloads import (
    FOLIO_BATCH_SIZE,
    MEMCG_CHARGE_BATCH,
    PCP_BATCH,
    AgingCall,
    AgingRecord,
    FaultProgress,
    VmLocks,
    WalkBatch,
    aging_loop,
    aging_pass,
    fault_benchmark,
    merge_tables,
    uniform_pass,
    vcpu_fault_region,
)

GRANULARITIES = ["exact", "aggregated"]


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_fault_region_counts(granularity):
    """A region of N pages is N faults: one mmu_lock read each, batched LRU/pcp/memcg work."""
    sim = TimingSim(cpus=2, granularity=granularity)
    vm = VmLocks.create(sim)
    progress = FaultProgress.create(1)
    pages = 3000
    sim.spawn("vcpu0", vcpu_fault_region(sim, vm, pages, batch_pages=512, progress=progress))
    sim.run()
    stats = sim.lock_stats()
    assert stats["mmu_lock"][READ]["acquired"] == pages
    assert stats["lru_lock"][WRITE]["acquired"] == pages // FOLIO_BATCH_SIZE
    assert stats["zone_lock"][WRITE]["acquired"] == pages // PCP_BATCH
    assert stats["memcg_counter"]["touches"] == pages // MEMCG_CHARGE_BATCH
    assert stats["mmap_lock"]["touches"] == 2 * pages
    assert progress.pages_done == [pages] and progress.all_done()
    assert progress.finished_at == [sim.threads["vcpu0"].finished_at]


def test_fault_region_time_alone_is_the_sum_of_costs():
    """One vCPU alone: no waits, no transfers, so its time is the sum of its costs."""
    c = zero_costs(kvm_exit=1000, page_zero=400, spte_install=300, lru_add_folio=60,
                   pcp_refill=2500, atomic=20)
    for granularity in GRANULARITIES:
        sim = TimingSim(cpus=1, costs=c, granularity=granularity)
        vm = VmLocks.create(sim)
        pages = 1024
        sim.spawn("vcpu0", vcpu_fault_region(sim, vm, pages))
        sim.run()
        expected = (pages * (1000 + 400 + 300 + 2 * 20 + 2 * 20)       # work, mmap, mmu_lock
                    + (pages // 15) * (15 * 60 + 2 * 20)              # lru drains
                    + (pages // 63) * (2500 + 2 * 20)                 # pcp refills
                    + (pages // 64) * 20)                             # memcg counter
        assert sim.threads["vcpu0"].finished_at == expected, granularity


@pytest.mark.parametrize("granularity", GRANULARITIES)
@pytest.mark.parametrize("mode, lock, lock_mode", [
    ("write", "mmu_lock", WRITE), ("read", "mmu_lock", READ), ("rcu", "rcu", READ),
])
def test_aging_pass_takes_the_lock_per_call(granularity, mode, lock, lock_mode):
    """Each call of a pass takes the lock its mode names, once."""
    sim = TimingSim(cpus=1, granularity=granularity)
    vm = VmLocks.create(sim)
    passes = uniform_pass(1500, AgingCall("test_young", mode, visited=1))
    sim.spawn("aging", aging_pass(sim, vm, passes))
    sim.run()
    assert sim.lock_stats()[lock][lock_mode]["acquired"] == 1500


def test_aging_pass_time_alone():
    """A pass alone costs the fixed cost, the walk and the calls, nothing else."""
    c = zero_costs(aging_pass_fixed=1000, pte_table=100, pte_walk=10, folio_update_gen=5,
                   notifier_call=40, spte_test_clear=15, atomic=3)
    batches = [WalkBatch(512, 7, (AgingCall("clear_young", "none", 100, 200, 100),)),
               WalkBatch(300, 0, ())]
    sim = TimingSim(cpus=1, costs=c)
    vm = VmLocks.create(sim)
    sim.spawn("aging", aging_pass(sim, vm, batches))
    sim.run()
    walk = 2 * 100 + (512 + 300) * 10 + 7 * 5
    calls = 100 * (40 + 2 * 15 + 3)
    assert sim.threads["aging"].finished_at == 1000 + walk + calls


def test_merge_tables_conserves_work():
    """Merging PTE tables sums PTEs, young folios and calls per signature."""
    tables = [WalkBatch(512, 3, (AgingCall("test_young", "write", 10, 10),
                                 AgingCall("clear_young", "write", 4, 4, 4))),
              WalkBatch(512, 1, (AgingCall("test_young", "write", 20, 25, 0, 3, 1),)),
              WalkBatch(100, 0, ())]
    merged = list(merge_tables(tables, 8))
    assert len(merged) == 1
    m = merged[0]
    assert (m.ptes, m.young, m.tables) == (1124, 4, 3)
    assert m.calls == (AgingCall("test_young", "write", 30, 35, 0, 3, 1),
                       AgingCall("clear_young", "write", 4, 4, 4))
    assert list(merge_tables(tables, 1)) == tables


def test_lock_modes_match_the_vm():
    """rwlock modes need a qrwlock mmu_lock and 'spin' a spinlock; unknown modes are rejected."""
    sim = TimingSim(cpus=1)
    vm = VmLocks.create(sim)
    assert vm.lock_for("write") == (vm.mmu_lock, WRITE)
    assert vm.lock_for("rcu") == (vm.rcu, READ)
    assert vm.lock_for("rmap") is None and vm.lock_for("none") is None
    with pytest.raises(ValueError, match="on a VM whose mmu_lock is a qrwlock"):
        vm.lock_for("spin")
    spin_vm = VmLocks.create(sim, mmu_lock="spinlock", prefix="riscv_")
    assert spin_vm.lock_for("spin") == (spin_vm.mmu_lock, WRITE)
    with pytest.raises(ValueError, match="must be one of write, read, spin, rcu, rmap, none"):
        AgingCall("test_young", "srcu")


def test_aging_loop_records_passes():
    """The loop runs passes until done() and reports total time / passes."""
    sim = TimingSim(cpus=1, costs=zero_costs(aging_pass_fixed=100, pte_walk=1))
    vm = VmLocks.create(sim)
    record = AgingRecord()
    passes = iter(range(3))
    state = {"left": 3}

    def done():
        return state["left"] == 0

    def make_pass(nr):
        state["left"] -= 1
        next(passes)
        return [WalkBatch(50)]

    sim.spawn("aging", aging_loop(sim, vm, make_pass, done, record))
    sim.run()
    assert record.pass_ns == [150, 150, 150]
    assert record.avg_pass_ns == 150


def test_progress_interpolates_running_batches():
    """pages_at counts the running aggregated batch pro rata."""
    sim = TimingSim(cpus=1, granularity="aggregated", costs=zero_costs(kvm_exit=1000))
    vm = VmLocks.create(sim)
    progress = FaultProgress.create(1)
    sim.spawn("vcpu0", vcpu_fault_region(sim, vm, 4096, batch_pages=4096, progress=progress))
    sim.run(until=1_000_000)
    assert progress.pages_done == [0]
    assert progress.pages_at(sim.now) == 1000
    assert progress.vcpu_pages_at(sim.now) == [1000]


def test_scale_112_vcpus_x_1gib_aggregated():
    """112 vCPUs x 262144 pages with write-locked aging stays in the low 10^4-10^5 events."""
    sim = TimingSim(cpus=113, granularity="aggregated")
    vm = VmLocks.create(sim)
    call = AgingCall("test_young", "write", visited=1)
    result = fault_benchmark(sim, vm, 112, 262144, batch_pages=4096, tables_per_step=8,
                             make_pass=lambda pr, nr: uniform_pass(pr.pages_at(sim.now), call))
    assert result.events < 100_000
    assert result.passes >= 2
    assert result.vcpu_wall_ns > 262144 * 3000


def test_spread_totals_conserves_counts():
    """Per-walk totals spread over tables keep every total and give each table a share."""
    from mglru.timing.workloads import spread_totals

    calls = [AgingCall("test_young", "write", 1000, 1000), AgingCall("clear_young", "write", 7,
                                                                       7, 7)]
    tables = list(spread_totals(1030, 10, calls, 4))
    assert len(tables) == 4
    assert sum(t.ptes for t in tables) == 1030 and sum(t.young for t in tables) == 10
    merged = list(merge_tables(tables, 4))[0]
    assert merged.calls == tuple(calls)
    assert [t.calls[0].calls for t in tables] == [250, 250, 250, 250]
