"""The simulated `access_tracking_perf_test -p -l` run: vCPUs fault while MGLRU ages.

Mechanism. Two layers run together (function and time are separate concerns):

* the functional model (a `SimKernel`, a memcg, a VM) decides *what happens*:
  every vCPU faults its region in through the host (`vm.vcpu_access`, write),
  and an aging thread issues passes through the lru_gen ABI (by default the
  selftest's `lru_gen_do_aging_quiet`: read debugfs, write `+ memcg node
  max_seq 1 1`, read again);
* the timing layer (`TimingSim`) decides *when* and *how long*: one thread per
  vCPU faulting in steps of `batch_pages` (`mglru.bench.vcpu`, its memory-bound
  work slowed by the other vCPUs' load, `mglru.bench.load`), and one aging
  thread (`mglru.bench.aging_thread`) that pays, per pass, `aging_pass_fixed`,
  the walk of each chunk of PTE tables (`pte_table`, `pte_walk`,
  `folio_update_gen`), each notifier call (`notifier_call`, `gfn_range` per
  memslot range, SPTEs visited, atomics: `mglru.bench.chunks`) under the lock
  the KVM model says that call takes on this preset and arch (`mmu.lock_plan`:
  mmu_lock for write on seed-v4-noopt x86, RCU on seed-v4 x86, ...), and
  `inc_min_seq_folio` per folio `inc_max_seq` moves up under lru_lock, in
  MAX_LRU_BATCH holds; its memory-bound costs are slowed by the load of the
  vCPUs faulting at the time too.

The two advance together. At each pass the aging thread pays the pass's fixed
cost and parks (`park()`); the driver then runs the functional pass, whose walk
takes its PTE tables from this run's pacer (`SimKernel.walk_pacer`): after each
chunk the pacer unparks the aging thread with what the chunk did (`ChunkWork`)
and runs the simulation until the thread has paid for it (the clock moves, the
vCPUs fault meanwhile); it then faults the region under the walker up to
where that vCPU has got at this simulated time and hands the walk the next
rows as they are now (`mglru.bench.walk_cursor`). A chunk stops before the
first PTE table that does not exist yet, so the walk chases a vCPU through its
region and sees the pages faulted while it walks, as the kernel's walk does;
that is what makes a slow pass slower still (no opt at 16 vCPUs). Regions are
faulted lazily (the one under the walker, and all of them at the end): a vCPU
touches only its region, and a new folio goes to max_seq - 1 whenever it is
added between two increments of max_seq, so the walk sees the generations of
faulting in time order.

Granularity: "exact" runs every fault and every notifier call as its own steps
against the real lock queues (small runs); "aggregated" runs each step (a
batch of faults, a chunk's calls of one kind) as one event of the mean-field
model (`mglru.timing.fluid`); "auto" picks exact up to 65536 pages in all.

Future optimizations:
1. a whole vCPU region as one step when no aging thread runs.
2. THP-backed regions (one PMD fault per 512 pages).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mglru.bench.aging_thread import AgingRecord, aging_thread, charge, drive_aging
from mglru.bench.chunks import ChunkWork, walk_events
from mglru.bench.fault import VmLocks
from mglru.bench.load import FaultLoad
from mglru.bench.vcpu import FaultProgress, vcpu_fault_region
from mglru.bench.walk_cursor import VmRegions, WalkCursor
from mglru.kvm.accounting import LOCK_SPIN
from mglru.lru_gen.aging import type_is_evictable
from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    MAX_NR_GENS,
    MM_LEAF_OLD,
    MM_LEAF_YOUNG,
    lru_gen_from_seq,
)
from mglru.lru_gen.walk import aging_subscribers
from mglru.timing.costs import CostModel, load_costs
from mglru.timing.sim import TimingSim
from mglru.timing.topology import ONE_SOCKET, Topology

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm.kvm_main import Kvm
    from mglru.lru_gen.walk import MmWalk
    from mglru.mm.process import Mm
    from mglru.timing.threads import Thread

__all__ = ["BenchResult", "EXACT_MAX_PAGES", "EXACT_JITTER", "run_lru_gen_benchmark",
           "default_aging"]

#: "auto" granularity runs exact events up to this many pages in all
EXACT_MAX_PAGES = 1 << 16
#: exact mode's default cost jitter (+-30 %): real faults vary, and with equal
#: deterministic costs the vCPUs and the aging thread phase-lock (see fluid.py)
EXACT_JITTER = 0.3

_NS = 1e-9


@dataclass(frozen=True, slots=True)
class BenchResult:
    """One simulated `-p` run, in the selftest's terms (seconds).

    Attributes:
        nr_vcpus: vCPUs.
        pages: pages faulted in all.
        vcpu_wall_s: from the start to the slowest vCPU's finish ("vcpu wall time").
        aging_pass_s: total aging time / passes ("lru_gen avg pass duration"); None without aging.
        passes: aging passes; None without aging.
        total_aging_s: from the start to the end of the last pass; None without aging.
        pass_s: each pass's duration.
        pass_walked: per pass, present PTEs the walk examined.
        pass_faulted: per pass, pages the vCPUs had faulted when it started (the
            walk sees more when it chases a vCPU through its region).
        granularity: "exact" or "aggregated".
        events: timing events processed.
        wall_s: host seconds the simulation took.
        lock_stats: `TimingSim.lock_stats()` at the end (acquisitions, waits, holds).
    """

    nr_vcpus: int
    pages: int
    vcpu_wall_s: float
    aging_pass_s: float | None
    passes: int | None
    total_aging_s: float | None
    pass_s: tuple[float, ...] = ()
    pass_walked: tuple[int, ...] = ()
    pass_faulted: tuple[int, ...] = ()
    granularity: str = "aggregated"
    events: int = 0
    wall_s: float = 0.0
    lock_stats: dict = field(default_factory=dict, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """The numbers as a plain dict (for JSON)."""
        return {"vcpus": self.nr_vcpus, "pages": self.pages, "vcpu_wall_s": self.vcpu_wall_s,
                "aging_pass_s": self.aging_pass_s, "passes": self.passes,
                "total_aging_s": self.total_aging_s, "granularity": self.granularity,
                "events": self.events, "wall_s": self.wall_s}


def default_aging(k: SimKernel, memcg_name: str) -> Callable[[], None]:
    """One aging pass as the v4 selftest's `lru_gen_do_aging_quiet` does it, through the ABI."""
    from mglru.tools.lru_gen.client import lru_gen_do_aging

    def aging() -> None:
        lru_gen_do_aging(k, memcg_name, swappiness=1, force_scan=True)

    return aging


# -- the run --------------------------------------------------------------------------

class _Run:
    """State of one benchmark run (see the module docstring)."""

    def __init__(self, k: SimKernel, vm: Kvm, regions: Sequence[tuple[int, int]],
                 aging: Callable[[], None] | None, costs: CostModel, granularity: str,
                 cpus: int | None, batch_pages: int | None, chunk_tables: int,
                 fault_all: bool = True, jitter: float = 0.0,
                 topology: Topology = ONE_SOCKET) -> None:
        self.regions = VmRegions(vm, regions)
        self.k = k
        self.vm = vm
        self.aging = aging
        self.fault_all = fault_all
        self.nr = len(regions)
        total = sum(self.regions.pages)
        if granularity == "auto":
            granularity = "exact" if total <= EXACT_MAX_PAGES else "aggregated"
        self.granularity = granularity
        self.batch_pages = batch_pages or (512 if granularity == "exact" else 4096)
        self.chunk_tables = chunk_tables
        # the host has a CPU for every vCPU thread and for the aging thread
        self.sim = TimingSim(cpus or self.nr + 1, costs, granularity=granularity,
                             jitter=jitter if granularity == "exact" else 0.0)
        spin = vm.mmu.mmu_lock == LOCK_SPIN
        self.locks = VmLocks.create(self.sim, mmu_lock="spinlock" if spin else "qrwlock",
                                    nodes=topology.sockets)
        self.progress = FaultProgress.create(self.nr)
        # the aging thread is the test's main thread, started first: node 0
        self.nodes = topology.place(self.nr)
        self.load = FaultLoad(self.sim.costs, self.nr, self.nodes, aging_node=0)
        self.record = AgingRecord()
        self.aging_th: Thread | None = None
        self.moved = 0
        # SPTE arrays must keep their identity while a walk holds them (see Kvm.aging_segments)
        for as_id in range(vm.memslots.nr_address_spaces):
            if vm.memslots.by_as[as_id]:
                vm.mmu.ensure(as_id, vm.memslots.gfn_limit(as_id))

    def _inc_min_seq_folios(self, walk: MmWalk) -> int:
        """Folios inc_max_seq will move up after this walk: the oldest lists of full types."""
        lruvec = walk.lruvec
        n = 0
        for t in range(ANON_AND_FILE):
            if lruvec.get_nr_gens(t) == MAX_NR_GENS and type_is_evictable(t, walk.swappiness):
                n += int(lruvec.nr_listed[lru_gen_from_seq(lruvec.min_seq[t]), t].sum())
        return n

    def _pacer(self, mm: Mm, walk: MmWalk, sec_stats: np.ndarray) -> Iterator[np.ndarray]:
        """`SimKernel.walk_pacer` of this run: each chunk is charged before the next is chosen."""
        cursor = WalkCursor(self.regions, self.progress, self.chunk_tables, mm, walk)
        subs = aging_subscribers(self.k.rules, mm) or []
        if len(subs) != len(sec_stats):
            subs = []   # secondary MMUs off for this walk: sec_stats has no rows
        while True:
            rows = cursor.next_rows(self.sim.now)
            if rows is None:
                self.moved += self._inc_min_seq_folios(walk)
                return
            tables = cursor.tables
            mm_prev = walk.mm_stats.copy()
            sec_prev = sec_stats.copy()
            yield rows
            d_mm = walk.mm_stats - mm_prev
            events, plans = [], []
            for sub, row in zip(subs, sec_stats - sec_prev, strict=True):
                for ev in walk_events(sub, row):
                    events.append(ev)
                    plans.append(sub.mmu.lock_plan(ev.notifier))
            young = int(d_mm[MM_LEAF_YOUNG])
            charge(self.sim, self.aging_th, ChunkWork(tables, int(d_mm[MM_LEAF_OLD]) + young,
                                                      young, tuple(events), tuple(plans)))

    def _one_pass(self) -> int:
        """The functional pass (the aging thread is parked at its walk); folios it moves up."""
        self.moved = 0
        self.aging()
        return self.moved

    def run(self) -> BenchResult:
        """Run the simulation and the functional passes it asks for; see the module docstring."""
        t_wall = time.perf_counter()
        sim = self.sim
        t0 = sim.now
        for i in range(self.nr):
            sim.spawn(f"vcpu{i}", vcpu_fault_region(
                sim, self.locks, self.regions.pages[i], batch_pages=self.batch_pages,
                progress=self.progress, index=i, load=self.load, node=self.nodes[i]),
                node=self.nodes[i])
        if self.aging is None:
            sim.run()
        else:
            self.aging_th = sim.spawn("aging", aging_thread(
                sim, self.locks, self.record, self.progress.all_done,
                costs=self.load.aging_costs, pages_at=self.progress.pages_at))
            self.k.walk_pacer = self._pacer
            try:
                drive_aging(sim, self.aging_th, self._one_pass)
            finally:
                self.k.walk_pacer = None
        if self.fault_all:
            for i in range(self.nr):
                self.regions.fault(i, self.regions.pages[i])
        wall = max(t for t in self.progress.finished_at if t is not None) - t0
        rec = self.record
        common = dict(nr_vcpus=self.nr, pages=sum(self.regions.pages), vcpu_wall_s=wall * _NS,
                      granularity=self.granularity, events=sim.events,
                      wall_s=time.perf_counter() - t_wall, lock_stats=sim.lock_stats())
        if self.aging is None:
            return BenchResult(aging_pass_s=None, passes=None, total_aging_s=None, **common)
        total = rec.finished_at - rec.started_at
        return BenchResult(aging_pass_s=rec.avg_pass_ns * _NS, passes=rec.passes,
                           total_aging_s=total * _NS,
                           pass_s=tuple(x * _NS for x in rec.pass_ns),
                           pass_walked=tuple(rec.pass_walked),
                           pass_faulted=tuple(rec.pass_faulted), **common)


def run_lru_gen_benchmark(k: SimKernel, vm: Kvm, memcg_name: str,
                          regions: Sequence[tuple[int, int]],
                          aging: Callable[[], None] | bool | None = None,
                          costs: CostModel | None = None, granularity: str = "auto", *,
                          cpus: int | None = None, batch_pages: int | None = None,
                          chunk_tables: int = 64, fault_all: bool = True,
                          jitter: float = EXACT_JITTER,
                          topology: Topology = ONE_SOCKET) -> BenchResult:
    """Simulate `access_tracking_perf_test -p`: vCPUs fault their regions while aging runs.

    The VM's vCPU i writes region i = (gpa, nbytes) once, page by page, from
    simulated time 0; if `aging` is given, an aging thread calls it back to back
    (each call is one pass through the kernel's ABI) until every vCPU is done.
    Pages must not be populated yet. `k.walk_pacer` is set during the run.

    Args:
        k: the kernel; its preset decides the aging rules ("no opt" = seed-v4-noopt).
        vm: the VM, one vCPU per region.
        memcg_name: the memcg the VMM process is in (for `aging=True`).
        regions: per vCPU, (gpa, nbytes) of its region.
        aging: one pass (e.g. the selftest's lru_gen_do_aging_quiet); True for
            `default_aging(k, memcg_name)`; None or False for no aging thread.
        costs: the cost model (default: the packaged costs.toml).
        granularity: "exact", "aggregated" or "auto" (exact up to EXACT_MAX_PAGES).
        cpus: simulated host CPUs (default: one per vCPU plus one for aging).
        batch_pages: faults per vCPU step (default 512 exact, 4096 aggregated).
        chunk_tables: PTE tables per aging step at most.
        fault_all: at the end, fault in the functional model what the walk did not
            need yet, so the kernel holds every page the vCPUs wrote. Nothing reads
            it during a run without aging, whose timing does not depend on it (a
            fresh anonymous region takes one 4 KiB fault per page, THP off), so the
            table runs skip it there.
        jitter: exact mode: costs drawn from [1 - jitter, 1 + jitter] x their value
            (`TimingSim`, seeded), so that the vCPUs and the aging thread do not
            phase-lock as they would with deterministic costs; ignored aggregated.
        topology: the host's sockets: where the vCPU threads run, which node's
            zone->lock and lru_lock their faults take, which transfers cross
            sockets (`mglru.timing.topology`); the aging thread runs on node 0.

    Returns:
        The vCPU wall time, the average pass time and the number of passes.

    Raises:
        ValueError: regions do not match the vCPUs, bad granularity.
    """
    if granularity not in ("auto", "exact", "aggregated"):
        raise ValueError(f"granularity must be auto, exact or aggregated; got {granularity!r}")
    if aging is True:
        aging = default_aging(k, memcg_name)
    elif aging is False:
        aging = None
    run = _Run(k, vm, regions, aging, costs if costs is not None else load_costs(), granularity,
               cpus, batch_pages, chunk_tables, fault_all, jitter, topology)
    return run.run()
