"""Ground-truth metrics of a run: what reclaim saved, what it got wrong, how well MGLRU guessed.

Kernel: mm/vmscan.c: shrink_folio_list() (evictions), lru_gen_seq_show() (the
generations' ages), mm/workingset.c (refaults), mm/memcontrol.c:
memory_stat_show(); v6.10-v6.16.

Mechanism. A `Recorder` watches groups of pages, each a memcg holding one
VM (its VMM process) or host tasks. It is fed by the experiment at every
agent interval (`sample`) and at the end (`finish`), and sees each eviction
as it happens through `SimKernel.reclaim_hook`. The truth comes from the
workload `Engine`: `guest_last_ms[id(vm)][gfn]` for guest pages and
`last_access_ms[pfn]` for host pages, both "simulated ms since boot + 1 of
the last access, 0 = never". The idle time of a page at time t is
floor(t / 1 ms) - (stamp - 1) ms; a page never accessed is idle forever.
Kernel counters are read through the kernel's files (/proc/vmstat,
memory.stat, memory.current, lru_gen).

Definitions (all deltas are from `start` to `finish`):

- footprint(g): pages group g has touched: gfns with a non-zero stamp for a
  VM (the start-up touch of all guest memory counts), distinct virtual pages
  of its tasks' streams applied so far for host tasks.
- saved_mib(t) = sum over groups of (footprint - memory.current / 4 KiB) in
  MiB at a sample; saved_mib_mean is its mean over all samples (every
  `sample` and the `finish`), saved_mib_end its value at `finish`.
- reclaimed_pages = pgsteal_anon + pgsteal_file (/proc/vmstat), which counts
  the pages `reclaim_hook` sees freed.
- warm_reclaimed: evicted pages whose idle time at eviction is < warm_ms
  (evicted within warm_ms of the last access); warm_reclaimed_frac =
  warm_reclaimed / evicted pages (0 when nothing was evicted).
- refaults = workingset_refault_anon + workingset_refault_file (/proc/vmstat).
- guest_major_faults = pgmajfault of the VMs' memcgs (memory.stat): the VMM
  process is alone there, so each is a KVM fault whose GUP had to swap in.
- scanned = pgscan_anon + pgscan_file; scanned_per_reclaimed = scanned /
  reclaimed_pages (None when nothing was reclaimed).
- wss_error: at each sample and group, E = pages of the generations with
  age_ms <= wss_ms (lru_gen, all nodes), T = resident pages of the group (on
  an LRU list) whose true idle time is <= wss_ms; the error is |E - T| / T
  (samples with T = 0 are skipped); wss_error is the mean over samples and
  groups (None if none counted).

Future optimizations:
1. keep the pfn -> truth overlay between samples when no guest page moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PTE_PRESENT, PTE_SPECIAL
from mglru.tools.lru_gen import MemcgNotFound, parse_lru_gen

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm.kvm_main import Kvm
    from mglru.workload.engine import Engine
    from mglru.workload.stream import Stream

__all__ = ["Recorder", "Group", "read_counters", "idle_ms"]

_MIB_PAGES = (1 << 20) // PAGE_SIZE
_VMSTAT_KEYS = ("workingset_refault_anon", "workingset_refault_file", "pgscan_anon",
                "pgscan_file", "pgsteal_anon", "pgsteal_file", "pswpin")


def read_counters(text: str) -> dict[str, int]:
    """`key value` lines (/proc/vmstat, memory.stat) as a dict."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().lstrip("-").isdigit():
            out[key] = int(value)
    return out


def idle_ms(stamps: npt.NDArray[np.uint32], now_ns: int) -> npt.NDArray[np.float64]:
    """Idle time in ms at `now_ns` of pages with these truth stamps (inf if never accessed)."""
    now_ms = now_ns // 1_000_000
    st = stamps.astype(np.float64)
    return np.where(st > 0, now_ms - (st - 1), np.inf)


@dataclass
class Group:
    """A watched memcg: one VM's VMM or some host tasks.

    Attributes:
        memcg: cgroup path below the cgroup root ("/exp/vm0").
        kind: "guest" or "host".
        vm: the VM (guest groups).
        streams: the host tasks' streams (host groups).
        evicted, warm: pages evicted, and the warm ones among them.
    """

    memcg: str
    kind: str
    vm: Kvm | None = None
    streams: list[Stream] = field(default_factory=list)
    memcg_id: int = 0
    evicted: int = 0
    warm: int = 0
    # guest: per gfn its flat PTE index in the VMM's page-table pool; sorted copy -> gfn
    gfn_idx: npt.NDArray[np.int64] | None = None
    idx_sorted: npt.NDArray[np.int64] | None = None
    gfn_of_sorted: npt.NDArray[np.int64] | None = None
    start: dict[str, int] = field(default_factory=dict)
    touched: dict[int, npt.NDArray[np.int64]] = field(default_factory=dict)


class Recorder:
    """Collects the metrics of the module docstring while an Engine runs.

    Args:
        k: the kernel.
        engine: the Engine whose ground truth is read.
        warm_ms: T of "warm": evicted within T of the last access.
        wss_ms: the idle-time bound of the working-set estimate (default warm_ms).
    """

    def __init__(self, k: SimKernel, engine: Engine, *, warm_ms: float,
                 wss_ms: float | None = None) -> None:
        if engine.last_access_ms is None:
            raise ValueError("the Engine must keep ground truth (Engine(k, truth=True))")
        self.k = k
        self.engine = engine
        self.warm_ms = warm_ms
        self.wss_ms = warm_ms if wss_ms is None else wss_ms
        self.groups: list[Group] = []
        self.saved: list[float] = []
        self.wss_errors: list[float] = []
        self._start: dict[str, int] = {}
        self._by_memcg_id: dict[int, Group] = {}

    # -- set-up ------------------------------------------------------------------------
    def watch_vm(self, vm: Kvm, memcg: str, touched_ns: int | None = None) -> Group:
        """Watch a VM whose VMM process is alone in `memcg`.

        `touched_ns`: the guest touched all its memory at that time (a start-up
        touch done outside the Engine); its gfns get that stamp.
        """
        g = Group(memcg, "guest", vm=vm, memcg_id=self.k.memcg(memcg).id)
        n = vm.memslots.gfn_limit(0)
        gfns = np.arange(n, dtype=np.int64)
        idx = np.full(n, -1, np.int64)
        mm = vm.process.mm
        for slot in vm.memslots.by_as[0]:
            sel = gfns[slot.base_gfn: slot.gfn_end]
            vpns = (slot.userspace_addr >> PAGE_SHIFT) + (sel - slot.base_gfn)
            vma = mm.find_vma(slot.userspace_addr)
            idx[sel] = vma.pte_index(vpns)
        g.gfn_idx = idx
        order = np.argsort(idx)
        g.idx_sorted, g.gfn_of_sorted = idx[order], gfns[order]
        if touched_ns is not None:
            truth = self.engine.guest_last_ms.get(id(vm))
            size = max(len(a) for a in vm.mmu.sptes)
            if truth is None or len(truth) < size:
                new = np.zeros(size, np.uint32)
                if truth is not None:
                    new[: len(truth)] = truth
                truth = new
            truth[:n] = np.maximum(truth[:n], touched_ns // 1_000_000 + 1)
            self.engine.guest_last_ms[id(vm)] = truth
        self._add(g)
        return g

    def watch_tasks(self, memcg: str, streams: list[Stream],
                    touched: dict[int, npt.NDArray[np.int64]] | None = None) -> Group:
        """Watch host tasks in `memcg` through their streams.

        `touched`: per task (by id()) virtual page numbers it touched outside
        the Engine (a start-up touch); they count in the footprint. Their
        truth stamps are the caller's to set in `Engine.last_access_ms`.
        """
        g = Group(memcg, "host", streams=list(streams), memcg_id=self.k.memcg(memcg).id,
                  touched=dict(touched or {}))
        self._add(g)
        return g

    def _add(self, g: Group) -> None:
        if g.memcg_id in self._by_memcg_id:
            raise ValueError(f"memcg {g.memcg} is watched twice")
        self.groups.append(g)
        self._by_memcg_id[g.memcg_id] = g

    def start(self) -> None:
        """Take the baselines and install the eviction hook."""
        self._start = self._vmstat()
        for g in self.groups:
            g.start = self._memcg_stat(g)
        self.k.reclaim_hook = self._on_reclaim

    # -- ground truth ---------------------------------------------------------------------
    def _guest_truth(self, g: Group) -> npt.NDArray[np.uint32]:
        truth = self.engine.guest_last_ms.get(id(g.vm))
        return truth if truth is not None else np.zeros(len(g.gfn_idx), np.uint32)

    def truth_by_pfn(self) -> npt.NDArray[np.uint32]:
        """Per pfn the stamp of its page's last access: host truth, guest pages overlaid."""
        out = self.engine.last_access_ms.copy()
        for g in self.groups:
            if g.kind != "guest":
                continue
            pt = g.vm.process.mm.pt
            gfns = np.flatnonzero(g.gfn_idx >= 0)
            idx = g.gfn_idx[gfns]
            present = (pt.flat_flags()[idx] & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT
            gfns, idx = gfns[present], idx[present]
            truth = self._guest_truth(g)
            gfns_ok = gfns < len(truth)
            out[pt.flat_pfn()[idx].astype(np.int64)] = np.where(
                gfns_ok, truth[np.minimum(gfns, len(truth) - 1)], 0)
        return out

    def _on_reclaim(self, k: SimKernel, heads: npt.NDArray[np.int64],
                    nr: npt.NDArray[np.int64]) -> None:
        """`SimKernel.reclaim_hook`: classify each freed page as warm or not."""
        pfns = np.concatenate([np.arange(h, h + n, dtype=np.int64)
                               for h, n in zip(heads.tolist(), nr.tolist(), strict=True)]) \
            if (nr > 1).any() else heads
        memcgs = np.repeat(k.mem.memcg[heads], nr)
        hint = k.mem.rmap_hint
        for mid in np.unique(memcgs).tolist():
            g = self._by_memcg_id.get(int(mid))
            if g is None:
                continue
            sel = pfns[memcgs == mid]
            if g.kind == "guest" and hint is not None:
                idx = hint[sel].astype(np.int64)
                pos = np.minimum(np.searchsorted(g.idx_sorted, idx), len(g.idx_sorted) - 1)
                found = g.idx_sorted[pos] == idx
                gfns = g.gfn_of_sorted[pos]
                truth = self._guest_truth(g)
                ok = found & (gfns < len(truth))
                stamps = np.where(ok, truth[np.minimum(gfns, len(truth) - 1)], 0)
            else:
                stamps = self.engine.last_access_ms[sel]
            idle = idle_ms(stamps.astype(np.uint32), k.clock_ns)
            g.evicted += len(sel)
            g.warm += int(np.count_nonzero(idle < self.warm_ms))

    # -- samples --------------------------------------------------------------------------
    def _vmstat(self) -> dict[str, int]:
        c = read_counters(self.k.read("/proc/vmstat"))
        return {key: c.get(key, 0) for key in _VMSTAT_KEYS}

    def _memcg_stat(self, g: Group) -> dict[str, int]:
        c = read_counters(self.k.read(f"/sys/fs/cgroup/{g.memcg.strip('/')}/memory.stat"))
        return {"refaults": c.get("workingset_refault_anon", 0)
                + c.get("workingset_refault_file", 0),
                "pgmajfault": c.get("pgmajfault", 0)}

    def resident_pages(self, g: Group) -> int:
        """memory.current of the group's memcg, in pages."""
        return int(self.k.read(f"/sys/fs/cgroup/{g.memcg.strip('/')}/memory.current")) \
            // PAGE_SIZE

    def footprint_pages(self, g: Group) -> int:
        """Pages the group has touched so far (see the module docstring)."""
        if g.kind == "guest":
            truth = self._guest_truth(g)
            return int(np.count_nonzero(truth[: len(g.gfn_idx)]))
        by_task: dict[int, list[npt.NDArray[np.int64]]] = {
            task: [vpns] for task, vpns in g.touched.items()}
        for s in g.streams:
            by_task.setdefault(id(s.task), []).append(s.pages[: s.pos])
        return sum(len(np.unique(np.concatenate(parts))) for parts in by_task.values())

    def sample(self, now_ns: int) -> None:
        """Record memory saved and the working-set estimate error now."""
        saved = sum(self.footprint_pages(g) - self.resident_pages(g) for g in self.groups)
        self.saved.append(saved / _MIB_PAGES)
        self._wss_sample(now_ns)

    def _wss_sample(self, now_ns: int) -> None:
        stats = parse_lru_gen(self.k.read("/sys/kernel/debug/lru_gen"))
        truth = None
        mem = self.k.mem
        for g in self.groups:
            try:
                ms = stats.find(g.memcg_id)
            except MemcgNotFound:
                continue
            est = sum(gen.nr_pages for node in ms.nodes for gen in node.gens
                      if gen.age_ms <= self.wss_ms)
            if truth is None:
                truth = self.truth_by_pfn()
            resident = (mem.memcg == g.memcg_id) & (mem.gen != 0)
            true = int(np.count_nonzero(idle_ms(truth[resident], now_ns) <= self.wss_ms))
            if true:
                self.wss_errors.append(abs(est - true) / true)

    def finish(self, now_ns: int) -> dict[str, object]:
        """The last sample and the metrics of the module docstring, with per-group details."""
        self.sample(now_ns)
        self.k.reclaim_hook = None
        end = self._vmstat()
        d = {key: end[key] - self._start.get(key, 0) for key in _VMSTAT_KEYS}
        reclaimed = d["pgsteal_anon"] + d["pgsteal_file"]
        scanned = d["pgscan_anon"] + d["pgscan_file"]
        evicted = sum(g.evicted for g in self.groups)
        warm = sum(g.warm for g in self.groups)
        groups = {}
        major = 0
        for g in self.groups:
            st = self._memcg_stat(g)
            resident = self.resident_pages(g)
            groups[g.memcg] = {
                "kind": g.kind,
                "refaults": st["refaults"] - g.start["refaults"],
                "major_faults": st["pgmajfault"] - g.start["pgmajfault"],
                "rss_mib_end": resident / _MIB_PAGES,
                "saved_mib_end": (self.footprint_pages(g) - resident) / _MIB_PAGES,
                "evicted": g.evicted,
                "warm": g.warm,
            }
            if g.kind == "guest":
                major += groups[g.memcg]["major_faults"]
        return {
            "saved_mib_mean": float(np.mean(self.saved)),
            "saved_mib_end": self.saved[-1],
            "reclaimed_pages": reclaimed,
            "warm_reclaimed": warm,
            "warm_reclaimed_frac": warm / evicted if evicted else 0.0,
            "refaults": d["workingset_refault_anon"] + d["workingset_refault_file"],
            "guest_major_faults": major,
            "scanned": scanned,
            "scanned_per_reclaimed": scanned / reclaimed if reclaimed else None,
            "wss_error": float(np.mean(self.wss_errors)) if self.wss_errors else None,
            "evicted_seen": evicted,
            "groups": groups,
        }
