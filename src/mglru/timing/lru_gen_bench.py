"""The simulated `access_tracking_perf_test -p -l` run: vCPUs fault while MGLRU ages (issue 6).

Mechanism. Two layers run together, as DESIGN.md asks ("Function and time are
separate concerns"):

* the functional model (a `SimKernel`, a memcg, a VM) decides *what happens*:
  every vCPU faults its region in through the host (`vm.vcpu_access`, write),
  and an aging thread issues passes through the lru_gen ABI (by default the
  selftest's `lru_gen_do_aging_quiet`: read debugfs, write `+ memcg node
  max_seq 1 1`, read again);
* the timing layer (`TimingSim`) decides *when* and *how long*: one thread per
  vCPU faulting in steps of `batch_pages` (`workloads.fault_body`, its
  memory-bound work slowed by the other vCPUs' load, `load_factor`), and one
  aging thread that pays, per pass, `aging_pass_fixed`, the walk of
  each chunk of PTE tables (`pte_table`, `pte_walk`, `folio_update_gen`), each
  notifier call (`notifier_call`, `gfn_range` per memslot range, SPTEs visited,
  atomics) under the lock the KVM model says that call takes on this preset and
  arch (`mmu.lock_plan`: mmu_lock for write on seed-v4-noopt x86, RCU on
  seed-v4 x86, ...), and `inc_min_seq_folio` per folio `inc_max_seq` moves up
  under lru_lock, in MAX_LRU_BATCH holds; its memory-bound costs are slowed by
  the load of the vCPUs faulting at the time too.

The two advance together. At each pass the aging thread pays the pass's fixed
cost and parks (`park()`); the driver then runs the functional pass, whose walk
takes its PTE tables from this run's pacer (`SimKernel.walk_pacer`): after each
chunk the pacer unparks the aging thread with what the chunk did (`ChunkWork`)
and runs the simulation until the thread has paid for it (the clock moves, the
vCPUs fault meanwhile); it then faults the region under the walker up to
where that vCPU has got at this simulated time and hands the walk the next
rows as they are now. A chunk stops before the first PTE table that does not
exist yet, so the walk chases a vCPU through its region and sees the pages
faulted while it walks, as the kernel's walk does; that is what makes a slow
pass slower still (no opt at 16 vCPUs). Regions are faulted lazily (the one
under the walker, and all of them at the end): a vCPU touches only its region,
and a new folio goes to max_seq - 1 whenever it is added between two
increments of max_seq, so the walk sees the generations of faulting in time
order.

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

from mglru.kvm.accounting import LOCK_SPIN
from mglru.lru_gen.aging import type_is_evictable
from mglru.lru_gen.helpers import (
    ANON_AND_FILE,
    MAX_LRU_BATCH,
    MAX_NR_GENS,
    MM_LEAF_OLD,
    MM_LEAF_YOUNG,
    lru_gen_from_seq,
)
from mglru.lru_gen.walk import aging_subscribers
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_NONE
from mglru.timing.chunks import ChunkWork, chunk_steps, walk_events
from mglru.timing.costs import CostModel, load_costs
from mglru.timing.load import (
    AGING_WORK,
    FAULT_WORK,
    fault_work_ns,
    load_factor,
    quantize_load,
    scaled_costs,
)
from mglru.timing.sim import TimingSim
from mglru.timing.steps import WRITE, Batch, Locked, Work, cost, park
from mglru.timing.workloads import AgingRecord, FaultProgress, VmLocks, fault_body

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm.kvm_main import Kvm
    from mglru.lru_gen.walk import MmWalk
    from mglru.mm.process import Mm

__all__ = ["BenchResult", "ChunkWork", "CONFIGS", "CONFIG_PRESETS", "COVER_LETTER",
           "EXACT_MAX_PAGES", "EXACT_JITTER", "run_lru_gen_benchmark", "seed_benchmark",
           "default_aging", "walk_events", "fault_work_ns", "load_factor", "scaled_costs",
           "FAULT_WORK", "AGING_WORK"]

#: the cover letter's configurations, in its order
CONFIGS = ("no aging", "no opt", "opt")
#: configuration -> (preset, aging thread?): only the preset differs between "no opt" and "opt"
CONFIG_PRESETS: dict[str, tuple[str, bool]] = {
    "no aging": ("seed-v4", False),
    "no opt": ("seed-v4-noopt", True),
    "opt": ("seed-v4", True),
}
#: PATCH v4 0/7, `access_tracking_perf_test -p -l -b 1G -v N` on x86 TDP, no THP:
#: vCPUs -> config -> (vcpu wall time s, aging avg pass time s or None). The
#: calibration data; the rows for 32, 64 and 112 vCPUs are withheld on purpose.
COVER_LETTER: dict[int, dict[str, tuple[float, float | None]]] = {
    1: {"no aging": (0.878822016, None), "no opt": (0.938250568, 0.008236007),
        "opt": (0.912270190, 0.007314582)},
    2: {"no aging": (0.984959659, None), "no opt": (1.057880728, 0.017989741),
        "opt": (1.037735641, 0.013996319)},
    4: {"no aging": (1.264881581, None), "no opt": (1.318849182, 0.056164918),
        "opt": (1.314653465, 0.029311993)},
    8: {"no aging": (1.473883699, None), "no opt": (1.589441079, 0.227419586),
        "opt": (1.498439592, 0.063857740)},
    16: {"no aging": (2.048766096, None), "no opt": (2.399335597, 1.247142841),
         "opt": (2.000914001, 0.121628689)},
}
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
                 fault_all: bool = True, jitter: float = 0.0) -> None:
        if len(regions) != len(vm.vcpus):
            raise ValueError(f"one region per vCPU: {len(vm.vcpus)} vCPUs, {len(regions)} regions")
        self.k = k
        self.vm = vm
        self.aging = aging
        self.fault_all = fault_all
        self.nr = len(regions)
        self.gpa = [g for g, _ in regions]
        self.pages = [nbytes >> PAGE_SHIFT for _, nbytes in regions]
        if any(g % PAGE_SIZE or n % PAGE_SIZE for g, n in regions):
            raise ValueError(f"regions must be page aligned; got {list(regions)}")
        total = sum(self.pages)
        if granularity == "auto":
            granularity = "exact" if total <= EXACT_MAX_PAGES else "aggregated"
        self.granularity = granularity
        self.batch_pages = batch_pages or (512 if granularity == "exact" else 4096)
        self.chunk_tables = chunk_tables
        # the host has a CPU for every vCPU thread and for the aging thread
        self.sim = TimingSim(cpus or self.nr + 1, costs, granularity=granularity,
                             jitter=jitter if granularity == "exact" else 0.0)
        spin = vm.mmu.mmu_lock == LOCK_SPIN
        self.locks = VmLocks.create(self.sim, mmu_lock="spinlock" if spin else "qrwlock")
        self.progress = FaultProgress.create(self.nr)
        self.active = self.nr
        # memory-bound share of each vCPU's time (alone: its fault's memory-bound work
        # over the whole fault); their sum over the faulting vCPUs is the load
        c0 = self.sim.costs
        alone = fault_work_ns(c0) / max(1, fault_work_ns(c0) + c0.kvm_exit)
        self.duty = [alone] * self.nr
        self.load = alone * self.nr
        self.fdone = [0] * self.nr          # pages faulted in the functional model
        self.record = AgingRecord()
        self.cache: dict = {}
        self.aging_th = None
        self.moved = 0
        self.aging_costs: dict[int, CostModel] = {}
        self.pass_walked: list[int] = []
        self.pass_faulted: list[int] = []
        # SPTE arrays must keep their identity while a walk holds them (see Kvm.aging_segments)
        for as_id in range(vm.memslots.nr_address_spaces):
            if vm.memslots.by_as[as_id]:
                vm.mmu.ensure(as_id, vm.memslots.gfn_limit(as_id))
        self._layout()

    # -- where the regions are in the VMM's page tables ---------------------------------
    def _layout(self) -> None:
        pt = self.vm.mm.pt
        self.rows = pt.sorted_rows().copy()
        addr = pt.pmd_addr[self.rows]
        hva0 = np.array([self.vm.gpa_to_hva(g) for g in self.gpa], np.int64)
        hva1 = hva0 + np.array(self.pages, np.int64) * PAGE_SIZE
        order = np.argsort(hva0, kind="stable")
        # region of each row (-1: outside every region), by the row's 2 MiB slot
        self.row_region = np.full(len(self.rows), -1, np.int64)
        for i in order.tolist():
            inside = (addr + (1 << 21) > hva0[i]) & (addr < hva1[i])
            self.row_region[inside & (self.row_region < 0)] = i

    # -- the functional faults ------------------------------------------------------------
    def _fault(self, i: int, target: int) -> None:
        """Fault vCPU i's region in the functional model up to `target` pages."""
        target = min(target, self.pages[i])
        step = 1 << 14
        while self.fdone[i] < target:
            n = min(step, target - self.fdone[i])
            self.vm.vcpu_access(i, self.gpa[i] + (self.fdone[i] << PAGE_SHIFT), n << PAGE_SHIFT,
                                write=True)
            self.fdone[i] += n

    # -- timing threads --------------------------------------------------------------------
    def _vcpu(self, i: int) -> Iterator:
        """vCPU i faults its region, its memory-bound work slowed by the others' (`load_factor`)."""
        sim, c, p = self.sim, self.sim.costs, self.progress
        bodies: dict[float, tuple] = {}
        mem = fault_work_ns(c)
        pages, done, t0 = self.pages[i], 0, sim.now
        while done < pages:
            n = min(self.batch_pages, pages - done)
            load = quantize_load(self.load - self.duty[i])
            body = bodies.get(load)
            if body is None:
                loaded = scaled_costs(c, load_factor(c, load), FAULT_WORK)
                body = bodies[load] = fault_body(loaded, self.locks)
            rate = (sim.now - t0) / done if done else float(sum(
                s.ns for s in body if isinstance(s, Work)))
            p.running[i] = (sim.now, n, rate, sim.active)
            t_step = sim.now
            yield Batch(n, body, offset=done)
            done += n
            p.pages_done[i] = done
            # the share of its time this vCPU spent in memory-bound work
            per_page = (sim.now - t_step) / n
            duty = min(1.0, mem * load_factor(c, load) / per_page) if per_page > 0 else 1.0
            self.load += duty - self.duty[i]
            self.duty[i] = duty
        p.running[i] = (sim.now, 0, 0.0, None)
        p.finished_at[i] = sim.now
        self.load -= self.duty[i]
        self.duty[i] = 0.0
        self.active -= 1

    def _aging_thread(self) -> Iterator:
        """Passes until every vCPU is done, as run_benchmark's loop (spec §7.3).

        Each pass pays its fixed cost, then parks: the driver runs the
        functional pass, and its walk pacer unparks this thread with each chunk
        to charge ("chunk", ChunkWork), then with ("end", folios inc_min_seq moves).
        """
        sim, rec = self.sim, self.record
        rec.started_at = sim.now
        while not self.progress.all_done():
            t0 = sim.now
            self.pass_faulted.append(self.progress.pages_at(sim.now))
            self.pass_walked.append(0)
            yield cost(sim.costs.aging_pass_fixed)
            work = yield park()
            while work[0] == "chunk":
                self.pass_walked[-1] += work[1].ptes
                yield from chunk_steps(self._aging_costs(), self.locks, work[1], self.cache)
                work = yield park()
            moved = work[1]
            c = self._aging_costs()
            if moved:
                # inc_max_seq -> inc_min_seq: MAX_LRU_BATCH folios per lru_lock hold
                full, rest = divmod(moved, MAX_LRU_BATCH)
                if full:
                    yield Batch(full, (Locked(self.locks.lru_lock, WRITE,
                                              MAX_LRU_BATCH * c.inc_min_seq_folio),))
                if rest:
                    yield Batch(1, (Locked(self.locks.lru_lock, WRITE,
                                           rest * c.inc_min_seq_folio),))
            rec.pass_ns.append(sim.now - t0)
        rec.finished_at = sim.now

    def _aging_costs(self) -> CostModel:
        """The aging thread's costs under the load of the vCPUs faulting now (cached)."""
        load = quantize_load(self.load)
        c = self.aging_costs.get(load)
        if c is None:
            c = self.aging_costs[load] = scaled_costs(
                self.sim.costs, load_factor(self.sim.costs, load), AGING_WORK)
        return c

    def _inc_min_seq_folios(self, walk: MmWalk) -> int:
        """Folios inc_max_seq will move up after this walk: the oldest lists of full types."""
        lruvec = walk.lruvec
        n = 0
        for t in range(ANON_AND_FILE):
            if lruvec.get_nr_gens(t) == MAX_NR_GENS and type_is_evictable(t, walk.swappiness):
                n += int(lruvec.nr_listed[lru_gen_from_seq(lruvec.min_seq[t]), t].sum())
        return n

    def _charge(self, work: tuple) -> None:
        """Hand the parked aging thread some work and run the simulation until it parks again."""
        th = self.aging_th
        self.sim.unpark(th, work)
        self.sim.run(stop=lambda: th.parked)
        if not th.parked:
            raise RuntimeError("the aging thread ended in the middle of a pass")

    def _pacer(self, mm: Mm, walk: MmWalk, sec_stats: np.ndarray) -> Iterator[np.ndarray]:
        """`SimKernel.walk_pacer` of this run: each chunk is charged before the next is chosen."""
        cursor = _Cursor(self, mm, walk)
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
            self._charge(("chunk", ChunkWork(tables, int(d_mm[MM_LEAF_OLD]) + young, young,
                                             tuple(events), tuple(plans))))

    def run(self) -> BenchResult:
        """Run the simulation and the functional passes it asks for; see the module docstring."""
        t_wall = time.perf_counter()
        sim = self.sim
        t0 = sim.now
        for i in range(self.nr):
            sim.spawn(f"vcpu{i}", self._vcpu(i))
        if self.aging is None:
            sim.run()
        else:
            th = self.aging_th = sim.spawn("aging", self._aging_thread())
            self.k.walk_pacer = self._pacer
            try:
                while True:
                    sim.run(stop=lambda: th.parked)
                    if not th.parked:
                        break
                    # the aging thread is at a pass's walk: run the functional pass
                    self.moved = 0
                    self.aging()
                    sim.unpark(th, ("end", self.moved))
            finally:
                self.k.walk_pacer = None
        if self.fault_all:
            for i in range(self.nr):
                self._fault(i, self.pages[i])
        wall = max(t for t in self.progress.finished_at if t is not None) - t0
        rec = self.record
        common = dict(nr_vcpus=self.nr, pages=sum(self.pages), vcpu_wall_s=wall * _NS,
                      granularity=self.granularity, events=sim.events,
                      wall_s=time.perf_counter() - t_wall, lock_stats=sim.lock_stats())
        if self.aging is None:
            return BenchResult(aging_pass_s=None, passes=None, total_aging_s=None, **common)
        total = rec.finished_at - rec.started_at
        return BenchResult(aging_pass_s=rec.avg_pass_ns * _NS, passes=rec.passes,
                           total_aging_s=total * _NS,
                           pass_s=tuple(x * _NS for x in rec.pass_ns),
                           pass_walked=tuple(self.pass_walked),
                           pass_faulted=tuple(self.pass_faulted), **common)


class _Cursor:
    """Where one aging walk of an mm is, and which PTE tables it takes next (main thread).

    For the VMM's mm, rows come in address order; a chunk is at most
    `chunk_tables` tables of one region and ends before the first table that does
    not exist (pmd_none): the walk sees that table only if it exists when the walk
    gets there. Before each chunk, the region under the walker is faulted up to
    where its vCPU has got. Other mms are walked in one chunk.
    """

    def __init__(self, run: _Run, mm: Mm, walk: MmWalk) -> None:
        self.run = run
        self.mm = mm
        self.walk = walk
        self.idx = 0
        self.tables = 0
        self.vmm = mm is run.vm.mm

    def next_rows(self, now: int) -> np.ndarray | None:
        run = self.run
        pt = self.mm.pt
        if not self.vmm:
            if self.idx:
                return None
            self.idx = 1
            rows = pt.sorted_rows()
            self.tables = int(np.count_nonzero(pt.pmd_state[rows] != PMD_NONE))
            return rows
        rows, region = run.rows, run.row_region
        n = len(rows)
        if self.idx >= n:
            return None
        i = int(region[self.idx])
        if i >= 0 and run.fdone[i] < run.pages[i]:
            run._fault(i, run.progress.vcpu_pages(i, now))
        end = self.idx + 1
        lim = min(n, self.idx + run.chunk_tables)
        while end < lim and region[end] == i:
            end += 1
        present = pt.pmd_state[rows[self.idx:end]] != PMD_NONE
        if present[0]:
            # populated tables up to the first hole
            stop = int(np.argmin(present)) if not present.all() else len(present)
        else:
            # a run of holes: passed at once
            stop = int(np.argmax(present)) if present.any() else len(present)
        chunk = rows[self.idx:self.idx + stop]
        self.tables = int(np.count_nonzero(present[:stop]))
        self.idx += stop
        return chunk


def run_lru_gen_benchmark(k: SimKernel, vm: Kvm, memcg_name: str,
                          regions: Sequence[tuple[int, int]],
                          aging: Callable[[], None] | bool | None = None,
                          costs: CostModel | None = None, granularity: str = "auto", *,
                          cpus: int | None = None, batch_pages: int | None = None,
                          chunk_tables: int = 64, fault_all: bool = True,
                          jitter: float = EXACT_JITTER) -> BenchResult:
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
               cpus, batch_pages, chunk_tables, fault_all, jitter)
    return run.run()


def seed_benchmark(nr_vcpus: int, config: str = "opt", vcpu_bytes: int = 1 << 30,
                   aging: bool | None = None, arch: str = "x86", *,
                   costs: CostModel | None = None, granularity: str = "auto",
                   **kwargs: Any) -> BenchResult:
    """The cover letter's scenario: one VM of `nr_vcpus` vCPUs with `vcpu_bytes` each.

    A fresh SimKernel, a memcg `access_tracking_perf_test`, the VMM process in it,
    a VM with one memslot (memstress: partitioned regions, vCPU i at i x
    vcpu_bytes), then `run_lru_gen_benchmark` with the selftest's aging pass.

    Args:
        nr_vcpus: vCPUs.
        config: "no aging", "no opt" or "opt" (see CONFIG_PRESETS), or a preset name.
        vcpu_bytes: memory per vCPU (a multiple of 4 KiB).
        aging: for a preset name, whether an aging thread runs (default True);
            ignored for the three configurations.
        arch: the VM's arch model.
        costs, granularity, **kwargs: as for `run_lru_gen_benchmark`.
    """
    from mglru.kernel import SimKernel

    if config in CONFIG_PRESETS:
        preset, with_aging = CONFIG_PRESETS[config]
    else:
        preset, with_aging = config, True if aging is None else aging
    memcg = "access_tracking_perf_test"
    total = nr_vcpus * vcpu_bytes
    # one node with room for the guest memory (per-node scans are O(node))
    node = -(-(total + (256 << 20)) // (2 << 20)) * (2 << 20)
    k = SimKernel(config=preset, seed=0, node_bytes=(node,))
    k.mkdir(f"/sys/fs/cgroup/{memcg}")
    p = k.spawn(memcg=f"/{memcg}")
    # memstress writes each page once: no translation is reused, so a guest TLB
    # changes nothing here and is left out (tlb_entries=0)
    vm = k.create_vm(p, arch=arch, nr_vcpus=nr_vcpus, mem_bytes=total, tlb_entries=0)
    regions = [(i * vcpu_bytes, vcpu_bytes) for i in range(nr_vcpus)]
    return run_lru_gen_benchmark(k, vm, memcg, regions, with_aging, costs, granularity, **kwargs)
