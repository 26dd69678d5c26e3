"""Generator factories for the `-p` benchmark: vCPU faulting and aging passes (issue 6, item 5).

Mechanism. A VM's shared kernel objects are a `VmLocks`: kvm->mmu_lock (a
qrwlock on x86/arm64, a spinlock elsewhere), the memcg lruvec's lru_lock,
zone->lock, the mmap_lock count word and the memcg page counter (cache lines:
the benchmark has no mmap_lock writer), and RCU. Two processes use them:

* `vcpu_fault_region` - a vCPU faults in its region, one `Batch` per PTE table
  (512 faults). One fault (`fault_body`) is: VM exit, host fault (GUP takes
  mmap_lock for read: 2 atomics on its count word), page zeroing, memcg charge
  (the shared page counter every MEMCG_CHARGE_BATCH pages), a pcp refill under
  zone->lock every PCP_BATCH pages, a folio batch drained under lru_lock every
  FOLIO_BATCH_SIZE pages, the SPTE install under mmu_lock for read, and the
  guest's access. The contention between vCPUs comes from these shared objects.
* `aging_pass` - one MGLRU aging pass as the kernel model reports it: for each
  PTE table (`WalkBatch`: PTEs walked, young folios updated, notifier calls as
  `AgingCall` groups), the walk cost spread over the table's calls and each call
  under the lock its mode names. `aging_loop` repeats passes until a predicate
  says the vCPUs are done, as `run_benchmark` in access_tracking_perf_test does.

The KVM model feeds `AgingCall`s: per call group, the notifier, the lock mode
(`write`, `read`, `spin`, `rcu`, `rmap`, `none`, as in mglru.kvm.accounting),
and the group's totals of calls, SPTEs visited, atomics, cmpxchg attempts and
TLB flushes.

Granularity: `batch_pages` (faults per vCPU step) and `tables_per_step` (PTE
tables per aging step, `merge_tables`) set how coarse the steps are; the
engine's `granularity` sets whether a step is one event or many.

Future optimizations:
1. a whole vCPU region as one batch when no aging thread runs.
2. THP faults (one PMD-sized folio per fault) for backing sources with THP.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mglru.timing.locks import CacheLine, QRWLock, Rcu, SpinLock
from mglru.timing.steps import READ, WRITE, Atomic, Batch, Locked, Segment, Work, cost

if TYPE_CHECKING:
    from mglru.timing.costs import CostModel
    from mglru.timing.sim import TimingSim

__all__ = ["PTRS_PER_PTE", "FOLIO_BATCH_SIZE", "MEMCG_CHARGE_BATCH", "PCP_BATCH", "LOCK_MODES",
           "VmLocks", "FaultProgress", "AgingCall", "WalkBatch", "AgingRecord", "fault_body",
           "vcpu_fault_region", "aging_call_body", "merge_tables", "aging_pass", "aging_loop",
           "uniform_pass", "spread_totals",
           "BenchResult", "fault_benchmark"]

#: PTEs per PTE table (x86-64, 4 KiB pages)
PTRS_PER_PTE = 512
#: folios per folio_batch before the LRU add drains it (v6.10: PAGEVEC_SIZE 15)
FOLIO_BATCH_SIZE = 15
#: pages charged to the shared page counter at once (mm/memcontrol.c)
MEMCG_CHARGE_BATCH = 64
#: pages per pcp refill (pcp->batch on a large zone)
PCP_BATCH = 63
#: lock modes of an aging notifier call (mglru.kvm.accounting's LOCK_* plus "none")
LOCK_MODES = ("write", "read", "spin", "rcu", "rmap", "none")


@dataclass(frozen=True, slots=True)
class VmLocks:
    """The shared kernel objects a VM's faults and aging touch.

    Attributes:
        mmu_lock: kvm->mmu_lock: a QRWLock (x86, arm64) or a SpinLock.
        lru_lock: lruvec->lru_lock of the VM's memcg on its node.
        zone_lock: zone->lock of the node's zone.
        mmap_lock: the mmap_lock count word (readers only in the benchmark).
        memcg_counter: the memcg's page_counter.
        rcu: RCU of the machine.
    """

    mmu_lock: QRWLock | SpinLock
    lru_lock: SpinLock
    zone_lock: SpinLock
    mmap_lock: CacheLine
    memcg_counter: CacheLine
    rcu: Rcu

    @classmethod
    def create(cls, sim: TimingSim, *, mmu_lock: str = "qrwlock", prefix: str = "") -> VmLocks:
        """Create the objects in `sim`, named `{prefix}mmu_lock` etc.

        Args:
            sim: the event loop.
            mmu_lock: "qrwlock" (x86, arm64) or "spinlock" (riscv, loongarch, mips, powerpc).
            prefix: name prefix, for several VMs in one simulation.
        """
        if mmu_lock not in ("qrwlock", "spinlock"):
            raise ValueError(f"mmu_lock must be 'qrwlock' or 'spinlock'; got {mmu_lock!r}")
        make = sim.qrwlock if mmu_lock == "qrwlock" else sim.spinlock
        return cls(make(f"{prefix}mmu_lock"), sim.spinlock(f"{prefix}lru_lock"),
                   sim.spinlock(f"{prefix}zone_lock"), sim.line(f"{prefix}mmap_lock"),
                   sim.line(f"{prefix}memcg_counter"), sim.rcu)

    def lock_for(self, mode: str) -> tuple[QRWLock | SpinLock | Rcu, str] | None:
        """The (lock, READ/WRITE) an aging call in `mode` takes; None for no lock.

        Raises:
            ValueError: unknown mode, or a rwlock mode on a spinlock VM (or vice versa).

        Spec: §6.2-6.5 (which lock each arch and version takes).
        """
        if mode not in LOCK_MODES:
            raise ValueError(f"aging lock mode must be one of {', '.join(LOCK_MODES)}; "
                             f"got {mode!r}")
        if mode in ("none", "rmap"):
            return None
        if mode == "rcu":
            return self.rcu, READ
        is_spin = isinstance(self.mmu_lock, SpinLock)
        if (mode == "spin") != is_spin:
            raise ValueError(f"aging call in mode {mode!r} on a VM whose mmu_lock is a "
                             f"{self.mmu_lock.kind}")
        return self.mmu_lock, READ if mode == "read" else WRITE


@dataclass(slots=True)
class FaultProgress:
    """Pages faulted so far per vCPU and finish times.

    `pages_done` is updated when a step ends; `pages_at(now)` also counts the
    running step's faults pro rata (aggregated mode: over the batch's planned
    span; exact mode: at the rate of the vCPU's previous steps), so that coarse
    steps do not make aging passes see stale page counts.
    """

    pages_done: list[int]
    finished_at: list[int | None]
    #: per vCPU: (start of the running step, its pages, ns per page so far, thread)
    running: list[tuple] = field(default_factory=list)

    @classmethod
    def create(cls, nr_vcpus: int) -> FaultProgress:
        """Progress of `nr_vcpus` vCPUs at zero."""
        return cls([0] * nr_vcpus, [None] * nr_vcpus, [(0, 0, 0.0, None)] * nr_vcpus)

    def vcpu_pages_at(self, now: int) -> list[int]:
        """Pages faulted by each vCPU at `now`, its running step pro rata.

        This is what a pass starting at `now` should find populated in the
        functional model (fault it in up to these counts, then walk).
        """
        return [self.vcpu_pages(i, now) for i in range(len(self.pages_done))]

    def vcpu_pages(self, i: int, now: int) -> int:
        """Pages faulted by vCPU `i` at `now`, its running step pro rata."""
        done = self.pages_done[i]
        start, n, ns_per_page, th = self.running[i]
        if n:
            b0, b1 = th.batch_span if th is not None else (0, 0)
            if b0 == start and b1 > b0:
                done += min(n, n * (now - start) // (b1 - b0))
            elif ns_per_page > 0:
                done += min(n, int((now - start) / ns_per_page))
        return done

    def pages_at(self, now: int) -> int:
        """Pages faulted by all vCPUs at `now` (see `vcpu_pages_at`)."""
        return sum(self.vcpu_pages_at(now))

    def all_done(self) -> bool:
        """Every vCPU has finished its region."""
        return all(t is not None for t in self.finished_at)

    @property
    def total(self) -> int:
        """Pages faulted by all vCPUs."""
        return sum(self.pages_done)


def fault_body(costs: CostModel, vm: VmLocks) -> tuple[Segment, ...]:
    """The segments of one guest page fault (4 KiB, anon, write). See the module docstring."""
    return (
        Work(costs.kvm_exit + costs.host_fault + costs.page_zero + costs.memcg_charge),
        Atomic(vm.mmap_lock, 2),
        Atomic(vm.memcg_counter, 1, every=MEMCG_CHARGE_BATCH),
        Locked(vm.zone_lock, WRITE, costs.pcp_refill, every=PCP_BATCH),
        Locked(vm.lru_lock, WRITE, costs.lru_add_folio * FOLIO_BATCH_SIZE,
               every=FOLIO_BATCH_SIZE),
        Locked(vm.mmu_lock, READ if isinstance(vm.mmu_lock, QRWLock) else WRITE,
               costs.spte_install),
        Work(costs.guest_page_access),
    )


def vcpu_fault_region(sim: TimingSim, vm: VmLocks, pages: int, *, batch_pages: int = PTRS_PER_PTE,
                      progress: FaultProgress | None = None, index: int = 0) -> Generator:
    """A vCPU faulting in `pages` pages, one Batch of `batch_pages` faults per step.

    Args:
        sim: the event loop (for costs and the clock).
        vm: the VM's shared objects.
        pages: pages in the vCPU's region.
        batch_pages: faults per step (512 = one PTE table).
        progress: updated after every step, and with the finish time.
        index: this vCPU's index in `progress`.
    """
    body = fault_body(sim.costs, vm)
    done = 0
    t0 = sim.now
    while done < pages:
        n = min(batch_pages, pages - done)
        if progress is not None:
            rate = (sim.now - t0) / done if done else float(sum(
                seg.ns for seg in body if isinstance(seg, Work)))
            progress.running[index] = (sim.now, n, rate, sim.active)
        yield Batch(n, body, offset=done)
        done += n
        if progress is not None:
            progress.pages_done[index] = done
    if progress is not None:
        progress.running[index] = (sim.now, 0, 0.0, None)
        progress.finished_at[index] = sim.now


@dataclass(frozen=True, slots=True)
class AgingCall:
    """A group of aging notifier calls of one kind, as the KVM model accounts them.

    All counts are totals over the group (the names follow
    mglru.kvm.accounting.AgingEvent); the timing charges each call the group's
    average.

    Attributes:
        notifier: "test_young", "clear_young", "clear_flush_young", ...
        lock: the lock mode each call takes (`LOCK_MODES`).
        calls: calls in the group.
        visited: leaf SPTEs (or rmap entries) examined.
        atomics: atomic RMWs other than cmpxchg (e.g. clearing Accessed bits).
        cmpxchg: cmpxchg attempts, including failed ones and retries.
        flushes: remote TLB flushes.
    """

    notifier: str
    lock: str
    calls: int = 1
    visited: int = 0
    atomics: int = 0
    cmpxchg: int = 0
    flushes: int = 0

    def __post_init__(self) -> None:
        if self.lock not in LOCK_MODES:
            raise ValueError(f"AgingCall.lock must be one of {', '.join(LOCK_MODES)}; "
                             f"got {self.lock!r}")
        if min(self.calls, self.visited, self.atomics, self.cmpxchg, self.flushes) < 0:
            raise ValueError(f"AgingCall counts must be >= 0; got {self!r}")


@dataclass(frozen=True, slots=True)
class WalkBatch:
    """What the aging walk did on one PTE table (or a run of them).

    Attributes:
        ptes: PTEs walked by walk_pte_range.
        young: folios moved to max_seq (walk_update_folio).
        calls: the table's notifier calls, grouped.
        tables: PTE tables represented.
    """

    ptes: int
    young: int = 0
    calls: tuple[AgingCall, ...] = ()
    tables: int = 1


def aging_call_body(costs: CostModel, vm: VmLocks, call: AgingCall, walk_ns: int,
                    tail_ns: int = 0) -> tuple[Segment, ...]:
    """Segments of one call of `call`'s group, preceded by `walk_ns` of walk.

    The work under the lock is the group's average per call; `tail_ns` (walk
    and rounding left-overs) is added once, after the group's last call.
    """
    under_total = (call.visited * costs.spte_test_clear + call.atomics * costs.atomic
                   + call.cmpxchg * costs.cmpxchg + call.flushes * costs.tlb_flush)
    under = under_total // call.calls
    tail_ns += under_total - under * call.calls
    tail = (Work(tail_ns, every=call.calls),) if tail_ns else ()
    lock = vm.lock_for(call.lock)
    if lock is None:
        extra = costs.atomic * 2 if call.lock == "rmap" else 0   # the rmap bit lock
        return (Work(walk_ns + costs.notifier_call + under + extra),) + tail
    return (Work(walk_ns + costs.notifier_call), Locked(lock[0], lock[1], under)) + tail


def merge_tables(batches: Iterable[WalkBatch], tables_per_step: int) -> Iterator[WalkBatch]:
    """Coalesce runs of up to `tables_per_step` WalkBatches into one (aggregation).

    Call groups with the same notifier and lock mode are summed; the order of
    first appearance is kept.
    """
    if tables_per_step <= 1:
        yield from batches
        return
    acc: list[WalkBatch] = []
    for wb in batches:
        acc.append(wb)
        if len(acc) == tables_per_step:
            yield _merge(acc)
            acc = []
    if acc:
        yield _merge(acc)


def _merge(batches: list[WalkBatch]) -> WalkBatch:
    if len(batches) == 1:
        return batches[0]
    groups: dict[tuple[str, str], list[int]] = {}
    for wb in batches:
        for call in wb.calls:
            acc = groups.setdefault((call.notifier, call.lock), [0, 0, 0, 0, 0])
            acc[0] += call.calls
            acc[1] += call.visited
            acc[2] += call.atomics
            acc[3] += call.cmpxchg
            acc[4] += call.flushes
    calls = tuple(AgingCall(k[0], k[1], *v) for k, v in groups.items())
    return WalkBatch(sum(wb.ptes for wb in batches), sum(wb.young for wb in batches), calls,
                     sum(wb.tables for wb in batches))


def aging_pass(sim: TimingSim, vm: VmLocks, batches: Iterable[WalkBatch], *,
               tables_per_step: int = 1) -> Generator:
    """One aging pass: the fixed cost, then each WalkBatch as walk + calls.

    The walk cost of a table (pte_table + PTEs + young folios) is spread evenly
    over its calls, as the kernel interleaves them with the PTEs it walks.
    Spec: §3.7 (walk_pte_range), §6.2 (kvm_handle_hva_range locking).

    Args:
        sim: the event loop.
        vm: the VM's shared objects.
        batches: the pass's WalkBatches, one per PTE table.
        tables_per_step: PTE tables per step (`merge_tables`); 1 = one per table.
    """
    c = sim.costs
    pte_table, pte_walk, folio_update = c.pte_table, c.pte_walk, c.folio_update_gen
    bodies: dict[tuple, tuple[Segment, ...]] = {}
    yield cost(c.aging_pass_fixed)
    for wb in merge_tables(batches, tables_per_step):
        walk = wb.tables * pte_table + wb.ptes * pte_walk + wb.young * folio_update
        calls = [call for call in wb.calls if call.calls]
        nr_calls = sum(call.calls for call in calls)
        if nr_calls == 0:
            if walk:
                yield cost(walk)
            continue
        left = walk
        for i, call in enumerate(calls):
            share = left if i == len(calls) - 1 else walk * call.calls // nr_calls
            left -= share
            per_call = share // call.calls
            key = (call, per_call, share - per_call * call.calls)
            body = bodies.get(key)
            if body is None:
                if len(bodies) > 256:
                    bodies.clear()
                body = bodies[key] = aging_call_body(c, vm, call, per_call, key[2])
            yield Batch(call.calls, body)


@dataclass(slots=True)
class AgingRecord:
    """What `aging_loop` measured, as the selftest reports it.

    Attributes:
        started_at: when the loop started.
        finished_at: when the last pass ended.
        pass_ns: each pass's duration.
    """

    started_at: int | None = None
    finished_at: int | None = None
    pass_ns: list[int] = field(default_factory=list)

    @property
    def passes(self) -> int:
        """Passes completed."""
        return len(self.pass_ns)

    @property
    def avg_pass_ns(self) -> float | None:
        """Total aging time / passes (the selftest's "avg pass duration")."""
        if not self.pass_ns or self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at) / len(self.pass_ns)


def aging_loop(sim: TimingSim, vm: VmLocks, make_pass: Callable[[int], Iterable[WalkBatch]],
               done: Callable[[], bool], record: AgingRecord, *,
               tables_per_step: int = 1) -> Generator:
    """Aging passes until `done()` holds at a pass boundary (run_benchmark's loop).

    Spec: §7.3 (the v4 selftest's -p mode).

    Args:
        sim: the event loop.
        vm: the VM's shared objects.
        make_pass: pass number -> the pass's WalkBatches (called at the pass's
            start, so it can read the state of the moment, e.g. FaultProgress).
        done: checked before each pass.
        record: filled with the start, end and per-pass durations.
        tables_per_step: PTE tables per step (see `aging_pass`).
    """
    record.started_at = sim.now
    nr = 0
    while not done():
        t0 = sim.now
        yield from aging_pass(sim, vm, make_pass(nr), tables_per_step=tables_per_step)
        record.pass_ns.append(sim.now - t0)
        nr += 1
    record.finished_at = sim.now


def spread_totals(ptes: int, young: int, calls: Iterable[AgingCall],
                  tables: int) -> Iterator[WalkBatch]:
    """Per-walk totals spread evenly over `tables` PTE tables (a fallback adapter).

    For a kernel model that reports one aggregate per walk (e.g. one AgingEvent
    per notifier kind) rather than per PTE table: every table gets an equal
    share of the PTEs, young folios and each call group's counts (the
    remainders go to the first tables), so the pass interleaves the same way.
    """
    calls = [c for c in calls if c.calls]
    if tables <= 0:
        return

    def share(total: int, i: int) -> int:
        return total // tables + (1 if i < total % tables else 0)

    for i in range(tables):
        groups = tuple(AgingCall(c.notifier, c.lock, share(c.calls, i), share(c.visited, i),
                                 share(c.atomics, i), share(c.cmpxchg, i), share(c.flushes, i))
                       for c in calls)
        yield WalkBatch(share(ptes, i), share(young, i), tuple(g for g in groups if g.calls))


def uniform_pass(pages: int, call: AgingCall | None = None, *, young: int = 0,
                 tables_per_step: int = 1) -> Iterator[WalkBatch]:
    """A synthetic pass over `pages` populated pages: per page, one call like `call`.

    Args:
        pages: populated pages walked.
        call: a one-call template (its counts are per call); None for no calls.
        young: young folios per table.
        tables_per_step: PTE tables merged into one WalkBatch (aggregation).
    """
    step = PTRS_PER_PTE * tables_per_step
    for start in range(0, pages, step):
        n = min(step, pages - start)
        tables = -(-n // PTRS_PER_PTE)
        calls = () if call is None else (AgingCall(
            call.notifier, call.lock, n, n * call.visited, n * call.atomics, n * call.cmpxchg,
            n * call.flushes),)
        yield WalkBatch(n, young * tables, calls, tables)


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One `-p` style run: vCPU wall time and aging passes (ns)."""

    vcpu_wall_ns: int
    aging_pass_ns: float | None
    passes: int | None
    events: int


def fault_benchmark(sim: TimingSim, vm: VmLocks, nr_vcpus: int, pages: int, *,
                    make_pass: Callable[[FaultProgress, int], Iterable[WalkBatch]] | None = None,
                    batch_pages: int = PTRS_PER_PTE, tables_per_step: int = 1) -> BenchResult:
    """Run vCPUs faulting `pages` each, with an aging loop if `make_pass` is given.

    Args:
        sim: a fresh event loop.
        vm: its VM objects.
        nr_vcpus: vCPU threads.
        pages: pages per vCPU.
        make_pass: (progress, pass number) -> WalkBatches; None for "no aging".
        batch_pages: faults per vCPU step.
        tables_per_step: PTE tables per aging step.

    Returns:
        The slowest vCPU's finish time after the start, the average pass time
        and the number of passes.
    """
    t0 = sim.now
    progress = FaultProgress.create(nr_vcpus)
    for i in range(nr_vcpus):
        sim.spawn(f"vcpu{i}", vcpu_fault_region(sim, vm, pages, batch_pages=batch_pages,
                                                progress=progress, index=i))
    record = None
    if make_pass is not None:
        record = AgingRecord()
        sim.spawn("aging", aging_loop(sim, vm, lambda nr: make_pass(progress, nr),
                                      progress.all_done, record,
                                      tables_per_step=tables_per_step))
    sim.run()
    wall = max(t for t in progress.finished_at if t is not None) - t0
    if record is None:
        return BenchResult(wall, None, None, sim.events)
    return BenchResult(wall, record.avg_pass_ns, record.passes, sim.events)
