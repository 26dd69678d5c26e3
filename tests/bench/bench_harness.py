"""Made-up aging for the `-p` scenario's steps: walk chunks without a functional walk.

The scenario's vCPU loop, aging thread and driver (mglru.bench.vcpu,
mglru.bench.aging_thread) run here as in `run_lru_gen_benchmark`; only the
chunks differ: each pass charges `ChunkWork`s built from per-call templates
instead of what a SimKernel walk did. Every notifier call is charged by the
scenario's one cost formula (`mglru.bench.chunks.chunk_steps`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from mglru.bench.aging_thread import AgingRecord, aging_thread, charge, drive_aging
from mglru.bench.chunks import ChunkWork
from mglru.bench.fault import PTRS_PER_PTE, VmLocks
from mglru.bench.vcpu import FaultProgress, vcpu_fault_region
from mglru.kvm.accounting import AgingEvent
from mglru.timing import TimingSim

#: lock mode of a made-up call -> its lock plan (common lock, arch locks per range)
PLANS = {"write": ("write", ()), "read": ("read", ()), "spin": ("spin", ()),
         "rcu": (None, ("rcu",)), "rmap": (None, ("rmap",)), "none": (None, ())}


def calls(notifier: str, lock: str, n: int = 1, visited: int = 0, atomics: int = 0,
          cmpxchg: int = 0, flushes: int = 0) -> tuple[AgingEvent, tuple]:
    """`n` notifier calls taking `lock` (a key of PLANS), one memslot range each, and the plan."""
    common, arch = PLANS[lock]
    ev = AgingEvent(notifier, "walk", calls=n, slot_calls=n, ranges=n, visited=visited,
                    atomics=atomics, cmpxchg=cmpxchg, flushes=flushes)
    if common is not None:
        ev.locks[common] += n
    for mode in arch:
        ev.locks[mode] += n
    return ev, (common, arch)


def chunk(ptes: int, young: int = 0, groups: Iterable[tuple[AgingEvent, tuple]] = (),
          tables: int = 1) -> ChunkWork:
    """A ChunkWork of `tables` PTE tables with these call groups."""
    groups = list(groups)
    return ChunkWork(tables, ptes, young, tuple(e for e, _ in groups), tuple(p for _, p in groups))


def uniform_pass(pages: int, lock: str | None = None, *, visited: int = 1, notifier: str =
                 "test_young", tables_per_chunk: int = 1) -> Iterator[ChunkWork]:
    """A pass over `pages` populated pages: per page, one call taking `lock` (None: no calls)."""
    step = PTRS_PER_PTE * tables_per_chunk
    for start in range(0, pages, step):
        n = min(step, pages - start)
        groups = () if lock is None else (calls(notifier, lock, n, n * visited),)
        yield chunk(n, 0, groups, -(-n // PTRS_PER_PTE))


def start_aging(sim: TimingSim, vm: VmLocks, done: Callable[[], bool]) -> tuple:
    """Spawn the scenario's aging thread; returns (thread, record)."""
    record = AgingRecord()
    th = sim.spawn("aging", aging_thread(sim, vm, record, done))
    return th, record


def drive(sim: TimingSim, th, make_pass: Callable[[int], Iterable[ChunkWork]]) -> None:
    """Run to the end; pass number nr charges the chunks of make_pass(nr), at its walk."""
    nr = 0

    def one_pass() -> int:
        nonlocal nr
        for cw in make_pass(nr):
            charge(sim, th, cw)
        nr += 1
        return 0

    drive_aging(sim, th, one_pass)


def one_pass(sim: TimingSim, vm: VmLocks, chunks: Iterable[ChunkWork]):
    """Run one aging pass over `chunks`; returns the aging thread."""
    th, record = start_aging(sim, vm, lambda: record.passes >= 1)
    drive(sim, th, lambda nr: chunks)
    return th


@dataclass(frozen=True, slots=True)
class Result:
    """One synthetic `-p` style run: vCPU wall time and aging passes (ns)."""

    vcpu_wall_ns: int
    aging_pass_ns: float | None
    passes: int | None
    events: int


def fault_benchmark(sim: TimingSim, vm: VmLocks, nr_vcpus: int, pages: int, *,
                    make_pass: Callable[[FaultProgress, int], Iterable[ChunkWork]] | None = None,
                    batch_pages: int = PTRS_PER_PTE) -> Result:
    """vCPUs faulting `pages` each (no memory-system load), with aging if `make_pass` is given."""
    t0 = sim.now
    progress = FaultProgress.create(nr_vcpus)
    for i in range(nr_vcpus):
        sim.spawn(f"vcpu{i}", vcpu_fault_region(sim, vm, pages, batch_pages=batch_pages,
                                                progress=progress, index=i))
    record = None
    if make_pass is None:
        sim.run()
    else:
        th, record = start_aging(sim, vm, progress.all_done)
        drive(sim, th, lambda nr: make_pass(progress, nr))
    wall = max(t for t in progress.finished_at if t is not None) - t0
    if record is None:
        return Result(wall, None, None, sim.events)
    return Result(wall, record.avg_pass_ns, record.passes, sim.events)
