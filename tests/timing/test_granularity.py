"""Exact and aggregated granularity agree on small runs (issue 6, item 3; DESIGN.md).

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
   approximates: the gap grows with N (measured: -1 %, -9 %, -13 % wall at 1, 4,
   8 vCPUs with 8192 pages), hence 12 % for "batch" at 4 vCPUs;
3. the average pass time is total aging time / passes, and a pass more or less
   (of 30-100) moves it by 1-3 %.
"""

from __future__ import annotations

import pytest

from mglru.timing import TimingSim
from mglru.timing.workloads import AgingCall, VmLocks, WalkBatch, fault_benchmark, uniform_pass


def _batch_pass(pages: int):
    for start in range(0, pages, 512):
        n = min(512, pages - start)
        yield WalkBatch(n, 0, (AgingCall("clear_young", "write", 1, visited=n, atomics=n // 2),))


def _make_pass(kind: str):
    if kind == "none":
        return None
    if kind == "batch":
        return lambda progress, nr: _batch_pass(progress.total)
    call = AgingCall("test_young", kind, visited=1)
    return lambda progress, nr: uniform_pass(progress.total, call)


def _run(granularity: str, kind: str, nr_vcpus: int, pages: int):
    sim = TimingSim(cpus=nr_vcpus + 1, granularity=granularity)
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
