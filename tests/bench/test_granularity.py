"""Exact and aggregated granularity agree on small runs of the -p scenario's steps.

The workload is the `-p` benchmark in miniature: N vCPU threads fault their
regions (the real fault path: mmu_lock for read per fault, lru_lock, zone->lock,
the mmap_lock and memcg cache lines) while an aging thread makes passes over the
pages populated so far. Aging variants:

* "batch": the aging thread takes mmu_lock for write once per PTE table and
  clears 512 SPTEs under it (the brief's "lock per batch");
* "write": one write-locked test_young call per page (the cover letter's no opt);
* "rcu": one call per page in an RCU read section (opt: lockless TDP aging);
* "none": no aging thread.

Tolerance: the aggregated vCPU wall time and average pass time are within 10 %
of exact mode, 12 % for the batch-held write lock. Why not tighter:
1. an aggregated batch's duration is fixed when it starts, from the contention
   the other threads' records show then, so a change is seen one batch late
   (with 512-page batches and 4096-page regions, 1/8 of a region);
2. the mean-field model assumes threads do not synchronise; when a writer holds
   the lock for long, the readers it releases restart together and queue on the
   next cache lines (a convoy), which exact mode shows and the model only
   approximates: the gap grows with N (measured with 4096 pages: -5 % and -11 %
   vCPU wall at 1 and 4 vCPUs; jittering exact mode does not change it), hence
   12 % for "batch" at 4 vCPUs;
3. the average pass time is total aging time / passes, and a pass more or less
   (of 30-100) moves it by 1-3 %.
Measured for the others: "write" at 2 vCPUs +3 % wall, +6 % pass; "none" and
"rcu" within 1 %.

The second part holds the mean-field lock model to exact mode where it matters
for the cover letter's "no opt" rows: a writer making one write-locked call
after another while 4-16 vCPUs fault, with exact mode's costs jittered so that
its threads have the random phases the model assumes.
"""

from __future__ import annotations

import pytest
from bench_harness import calls, chunk, fault_benchmark, uniform_pass

from mglru.bench.fault import VmLocks, fault_body
from mglru.bench.load import FAULT_WORK, load_factor, scaled_costs
from mglru.timing import WRITE, Batch, Locked, TimingSim, Work, cost, load_costs

#: these tests hold the mean-field model to exact mode, not to the calibration: they
#: run the one-socket costs their tolerances were measured with (the fit before the
#: two-socket host), so a refit of costs.toml does not move them
COSTS = load_costs().replace(host_fault=1262, spte_install=220, lock_handoff=260,
                             fault_contention=380, notifier_call=89, spte_test_clear=13)


def _batch_pass(pages: int):
    for start in range(0, pages, 512):
        n = min(512, pages - start)
        yield chunk(n, 0, (calls("clear_young", "write", 1, visited=n, atomics=n // 2),))


def _make_pass(kind: str):
    if kind == "none":
        return None
    if kind == "batch":
        return lambda progress, nr: _batch_pass(progress.total)
    return lambda progress, nr: uniform_pass(progress.total, kind, visited=1)


def _run(granularity: str, kind: str, nr_vcpus: int, pages: int):
    sim = TimingSim(cpus=nr_vcpus + 1, costs=COSTS, granularity=granularity)
    vm = VmLocks.create(sim)
    return fault_benchmark(sim, vm, nr_vcpus, pages, make_pass=_make_pass(kind))


@pytest.mark.parametrize("kind, nr_vcpus, pages, tolerance", [
    ("none", 1, 4096, 0.10),
    ("none", 4, 4096, 0.10),
    ("batch", 1, 4096, 0.12),
    ("batch", 4, 4096, 0.12),
    ("write", 2, 4096, 0.10),
    ("rcu", 2, 2048, 0.10),
])
def test_exact_and_aggregated_agree(kind, nr_vcpus, pages, tolerance):
    """vCPU wall time and average aging pass agree within the stated tolerance."""
    exact = _run("exact", kind, nr_vcpus, pages)
    agg = _run("aggregated", kind, nr_vcpus, pages)
    assert agg.vcpu_wall_ns == pytest.approx(exact.vcpu_wall_ns, rel=tolerance)
    if kind != "none":
        assert agg.aging_pass_ns == pytest.approx(exact.aging_pass_ns, rel=tolerance)
        assert agg.passes == pytest.approx(exact.passes, rel=tolerance + 0.05)
    # the point of aggregation: far fewer events
    assert agg.events * 20 < exact.events


def test_aging_slows_vcpus_in_both_modes():
    """The contention mechanism is present in both: write-locked aging slows the vCPUs."""
    for granularity in ("exact", "aggregated"):
        none = _run(granularity, "none", 2, 4096)
        batch = _run(granularity, "batch", 2, 4096)
        assert batch.vcpu_wall_ns > 1.1 * none.vcpu_wall_ns


# -- jittered exact mode: the reference for the mean-field lock model ------------------

def _steady_write_contention(granularity: str, nr_vcpus: int, pages: int = 4096,
                             jitter: float = 0.3) -> tuple[float, float, dict]:
    """N vCPUs fault while a writer makes one write-locked call after another.

    The cover letter's "no opt" in steady state: per call, a walk step outside
    the lock, then mmu_lock for write. Returns the writer's mean cycle per call
    (middle half of its batches), the vCPUs' mean time per fault, and the
    mmu_lock statistics.
    """
    c = COSTS
    # the benchmark's regime: each other vCPU's memory traffic (duty ~0.6) slows
    # a fault's memory-bound work (mglru.bench.load.load_factor)
    loaded = scaled_costs(c, load_factor(c, 0.6 * (nr_vcpus - 1)), FAULT_WORK)
    sim = TimingSim(nr_vcpus + 1, c, granularity=granularity,
                    jitter=jitter if granularity == "exact" else 0.0, seed=1)
    vm = VmLocks.create(sim)
    body = fault_body(loaded, vm)
    finished: list[int] = []

    def vcpu():
        for done in range(0, pages, 512):
            yield Batch(512, body, offset=done)
        finished.append(sim.now)

    call = (Work(c.pte_walk + c.notifier_call),
            Locked(vm.mmu_lock, WRITE, 2 * c.gfn_range + 2 * c.spte_test_clear))
    cycles: list[float] = []

    def writer():
        yield cost(100_000)
        while True:
            t = sim.now
            yield Batch(256, call)
            cycles.append((sim.now - t) / 256)

    for i in range(nr_vcpus):
        sim.spawn(f"vcpu{i}", vcpu())
    sim.spawn("aging", writer())
    sim.run(stop=lambda: len(finished) == nr_vcpus)
    mid = cycles[len(cycles) // 4: 3 * len(cycles) // 4]
    return sum(mid) / len(mid), max(finished) / pages, sim.lock_stats()["mmu_lock"]


@pytest.mark.parametrize("nr_vcpus", [4, 8, 16])
def test_aggregated_matches_jittered_exact_under_a_per_call_write_lock(nr_vcpus):
    """The writer's cycle and the vCPUs' fault time agree within 10 % at 4-16 vCPUs.

    Exact mode with deterministic costs phase-locks (equal-cost threads keep
    meeting the lock at the same offsets: at 4 vCPUs the writer waits on 67 %
    of its calls instead of ~35 %); real faults vary, so the reference is exact
    mode with costs jittered by +-30 %, whose random phases are what the
    mean-field model assumes. Measured: writer -1 % / -5 % / -2 %, vCPU -2 % /
    -4 % / -4 % at 4 / 8 / 16 vCPUs.
    """
    ex_call, ex_fault, ex_st = _steady_write_contention("exact", nr_vcpus)
    ag_call, ag_fault, ag_st = _steady_write_contention("aggregated", nr_vcpus)
    assert ag_call == pytest.approx(ex_call, rel=0.10)
    assert ag_fault == pytest.approx(ex_fault, rel=0.10)
    # the mechanism, not only the totals: the writer waits on most calls in both
    ex_p = ex_st["write"]["contended"] / ex_st["write"]["acquired"]
    ag_p = ag_st["write"]["contended"] / ag_st["write"]["acquired"]
    assert ag_p == pytest.approx(ex_p, abs=0.1)


def test_the_writer_cycle_grows_superlinearly_with_readers():
    """Each reader queued behind the writer delays its next call: per-call cost is convex in N."""
    calls = [_steady_write_contention("aggregated", n)[0] for n in (4, 8, 16)]
    assert calls[1] / calls[0] > 2.0 and calls[2] / calls[1] > 1.5


def test_jitter_is_seeded():
    """Same seed, same timeline; another seed, another one; bad jitter is refused."""
    def run(seed):
        sim = TimingSim(2, granularity="exact", jitter=0.3, seed=seed)
        vm = VmLocks.create(sim)
        def vcpu():
            yield Batch(64, fault_body(sim.costs, vm))

        sim.spawn("v", vcpu())
        sim.run()
        return sim.now

    assert run(1) == run(1)
    assert run(1) != run(2)
    with pytest.raises(ValueError, match="jitter"):
        TimingSim(1, jitter=1.5)
