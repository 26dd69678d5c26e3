"""One fault, the VM's locks and the vCPU loop. Mirrors mglru/bench/fault.py and vcpu.py."""

from __future__ import annotations

import pytest

from mglru.bench.fault import FOLIO_BATCH_SIZE, MEMCG_CHARGE_BATCH, PCP_BATCH, VmLocks
from mglru.bench.load import FaultLoad
from mglru.bench.vcpu import FaultProgress, vcpu_fault_region
from mglru.timing import READ, WRITE, Batch, TimingSim, Work, zero_costs

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


@pytest.mark.parametrize("with_load", [False, True])
def test_fault_region_time_alone_is_the_sum_of_costs(with_load):
    """One vCPU alone: no waits, no transfers, so its time is the sum of its costs.

    With a `FaultLoad` of one vCPU nothing else loads the memory system either.
    """
    c = zero_costs(kvm_exit=1000, page_zero=400, spte_install=300, lru_add_folio=60,
                   pcp_refill=2500, atomic=20)
    for granularity in GRANULARITIES:
        sim = TimingSim(cpus=1, costs=c, granularity=granularity)
        vm = VmLocks.create(sim)
        pages = 1024
        load = FaultLoad(c, 1) if with_load else None
        sim.spawn("vcpu0", vcpu_fault_region(sim, vm, pages, load=load))
        sim.run()
        expected = (pages * (1000 + 400 + 300 + 2 * 20 + 2 * 20)       # work, mmap, mmu_lock
                    + (pages // 15) * (15 * 60 + 2 * 20)              # lru drains
                    + (pages // 63) * (2500 + 2 * 20)                 # pcp refills
                    + (pages // 64) * 20)                             # memcg counter
        assert sim.threads["vcpu0"].finished_at == expected, granularity


def test_other_vcpus_load_slows_the_memory_bound_work():
    """Two vCPUs with a FaultLoad take longer per fault than without: each loads the other."""
    def run(with_load):
        sim = TimingSim(cpus=2, granularity="aggregated")
        vm = VmLocks.create(sim)
        load = FaultLoad(sim.costs, 2) if with_load else None
        for i in range(2):
            sim.spawn(f"vcpu{i}", vcpu_fault_region(sim, vm, 4096, index=i, load=load))
        sim.run()
        return sim.now, load

    plain, _ = run(False)
    loaded, load = run(True)
    assert loaded > plain
    assert load.duty == [0.0, 0.0] and abs(load.load) < 1e-9   # finished vCPUs load nothing


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
        vm.lock_for("srcu")


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


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_a_vcpu_on_node_1_takes_node_1s_zone_and_lru_locks(granularity):
    """Per-node objects: a fault on node 1 refills its pcp under node 1's zone->lock and
    drains its folio batch under node 1's lru_lock; the page counter and mmap_lock are shared."""
    sim = TimingSim(cpus=2, granularity=granularity)
    vm = VmLocks.create(sim, nodes=2)
    pages = 630
    sim.spawn("vcpu1", vcpu_fault_region(sim, vm, pages, batch_pages=315, node=1), node=1)
    sim.run()
    stats = sim.lock_stats()
    assert stats["zone_lock@1"][WRITE]["acquired"] == pages // PCP_BATCH
    assert stats["lru_lock@1"][WRITE]["acquired"] == pages // FOLIO_BATCH_SIZE
    assert stats["zone_lock"][WRITE]["acquired"] == 0
    assert stats["lru_lock"][WRITE]["acquired"] == 0
    assert stats["memcg_counter"]["touches"] == pages // MEMCG_CHARGE_BATCH
    assert vm.lru_lock is vm.lru_locks[0] and vm.zone_lock is vm.zone_locks[0]


def test_fault_load_splits_the_others_by_socket():
    """FaultLoad levels are (same node, other nodes), each vCPU counted with its duty."""
    c = zero_costs(host_fault=600, kvm_exit=400, fault_contention=300,
                   fault_contention_remote=100)
    load = FaultLoad(c, 4, nodes=(0, 1, 0, 1), aging_node=0)
    # alone, a vCPU's duty is its memory-bound work over the fault: 600 / (600 + 400)
    assert load.duty == [0.6] * 4
    assert load.others(0) == (0.625, 1.25)    # 0.6 on node 0 and 1.2 on node 1, to 1/8
    load.finish(3)
    assert load.others(1) == (0.0, 1.25)
    # the aging thread on node 0 counts both vCPUs there as local
    assert load.aging_costs() is load.aging_costs()
    assert load._level(0, 0.0) == (1.25, 0.625)


def test_load_factor_charges_local_and_remote_others_their_own_cost():
    """load_factor = 1 + (local x fault_contention + remote x fault_contention_remote) / work."""
    from mglru.bench.load import fault_work_ns, load_factor

    c = zero_costs(host_fault=1000, fault_contention=300, fault_contention_remote=100)
    assert fault_work_ns(c) == 1000
    assert load_factor(c, 2.0) == pytest.approx(1.6)
    assert load_factor(c, 2.0, 3.0) == pytest.approx(1.9)
    assert load_factor(c, 0.0, 3.0) == pytest.approx(1.3)


def test_a_vcpu_blocked_behind_a_writer_keeps_its_load():
    """Time blocked behind a writer of mmu_lock (which blocks every vCPU at once) counts as
    if the vCPU worked; other waits (spinlocks, lines: staggered) give the load back."""
    c = zero_costs(host_fault=600, kvm_exit=400, fault_contention=200)
    load = FaultLoad(c, 2)
    # alone 600 / (600 + 400); 600 ns of the 1600 blocked behind a writer: still 0.6
    load.step_done(0, (0.0, 0.0), 1600.0, blocked=600.0)
    assert load.duty[0] == pytest.approx(0.6)
    # the same 600 ns waiting for lru_lock: 600 / 1600
    load.step_done(0, (0.0, 0.0), 1600.0)
    assert load.duty[0] == pytest.approx(0.375)
    # under one other's load the work is 600 x (1 + 200 / 600) = 800: 800 / 1200
    load.step_done(0, (1.0, 0.0), 1200.0)
    assert load.duty[0] == pytest.approx(800 / 1200)
    assert load.load == pytest.approx(800 / 1200 + 0.6)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_threads_record_their_wait_per_lock(granularity):
    """Both granularities keep each thread's wait per lock (the load model reads mmu_lock's)."""
    sim = TimingSim(cpus=3, costs=zero_costs(kvm_exit=1000, spte_install=300),
                    granularity=granularity)
    vm = VmLocks.create(sim)
    for i in range(2):
        sim.spawn(f"vcpu{i}", vcpu_fault_region(sim, vm, 4096, batch_pages=512, index=i))

    def writer():
        from mglru.timing.steps import Locked

        for _ in range(8):
            yield Batch(256, (Work(500), Locked(vm.mmu_lock, WRITE, 2000)))

    sim.spawn("aging", writer())
    sim.run()
    waited = [sim.threads[f"vcpu{i}"].lock_wait_ns.get(vm.mmu_lock, 0.0) for i in range(2)]
    assert all(w > 0 for w in waited)
    assert sum(waited) == pytest.approx(sim.lock_stats()["mmu_lock"][READ]["wait_ns"])
