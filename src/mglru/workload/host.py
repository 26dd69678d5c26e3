"""Apply a host task's stream: compiled hits and simple faults, the rest one access at a time.

Exactness: each access that the compiled loop cannot finish goes through
`paths.fault.user_access` for its one page, exactly as `p.access(addr,
PAGE_SIZE)` would, after the clock has been set to its time. A fault may
reclaim (memory.max, node pressure) and so clear accessed bits set by earlier
hits or unmap their pages; running hits only up to the first such fault keeps
the order of everything that can observe them.

Faults on a 4 KiB anonymous VMA stay compiled (`_host_fault.anon_fault`) while
the node stays above its low watermark (kswapd would wake); so do their charges
at memory.max where the loop may reclaim itself (`host_reclaim`), else such a
charge runs from here (`_make_room`: try_charge(), then the loop faults the
page in). Their effects on Python objects (page counters, the allocator's
lists, vmstat and memcg events, free swap slots, the eviction loop's counters)
are applied by `apply_faults` right after the loop, before any Python code can
read them. A reclaim that a charge began before Python took over leaves the
faulting access's PMD bits and the mm's lru_gen_use_mm() mark as it left them
(`pmd_skip`). The property tests in tests/workload check the result against
the per-page path.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.lru_gen.walk import vma_has_recency
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_LEAF, PMD_SHIFT, PTE_SWAP, PTRS_PER_PTE
from mglru.mm.vmstat import count_event, count_workingset
from mglru.paths.charge import try_charge
from mglru.paths.fault import fault_anon_page, user_access
from mglru.paths.reclaim import MemcgOom
from mglru.workload._host_fault import (
    L_EMPTIED,
    L_MAXEV,
    L_POPPED,
    L_REASON,
    L_RECLAIMS,
    L_SLOTS_MOVED,
    NR_PAR,
    NR_RES,
    P_PMD_SKIP,
    P_RESET_TIER,
    P_SWAP_CACHE,
    R_ACTIVATE,
    R_ALLOC,
    R_FAULTS,
    R_FREED,
    R_HEAD,
    R_MAJ,
    R_PGFAULT,
    R_REFAULT,
    R_RESTORE,
    R_STOP,
)
from mglru.workload._host_kernel import (
    KIND_FILE,
    KIND_RECENCY,
    KIND_THP,
    PLAIN_BLOCK,
    PLAIN_SHORT,
    PLAIN_SPLIT,
    host_hits,
)
from mglru.workload.host_reclaim import (
    FAULT_BATCH,
    count_failed_fault,
    hand_back,
    memcg_room,
    node_room,
    reclaim_context,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.evict_fast import _Run
    from mglru.mm.memory import Node
    from mglru.mm.process import Mm, Process
    from mglru.workload.stream import Stream
    from mglru.workload.truth import HostTruth

__all__ = ["run_host", "set_clock", "access_ms", "fault_context", "apply_faults", "FaultBufs",
           "vma_key"]

_EMPTY_U32 = np.zeros(0, np.uint32)


def set_clock(k: SimKernel, ns: int) -> None:
    """Move simulated time forward to `ns` (never back): what `SimKernel.tick` adds up."""
    if ns > k.clock_ns:
        k.clock_ns = int(ns)


def access_ms(t_ns: int) -> int:
    """Ground-truth stamp of a time: simulated ms since boot plus 1 (0 = never accessed)."""
    return int(t_ns) // 1_000_000 + 1


def vma_key(mm: Mm) -> tuple:
    """What tables built from `mm`'s VMAs depend on: they are rebuilt when it changes."""
    return tuple((v.start, v.end, id(v.rows), v.flags) for v in mm.vmas)


class _VmaTable:
    """The flat VMA arrays of one mm for the compiled loop, rebuilt when the VMAs change."""

    def __init__(self) -> None:
        self.key: tuple | None = None

    def of(self, mm: Mm) -> _VmaTable:
        key = vma_key(mm)
        if key != self.key:
            self.key = key
            vmas = mm.vmas
            self.start = np.array([v.start >> PAGE_SHIFT for v in vmas], np.int64)
            self.end = np.array([v.end >> PAGE_SHIFT for v in vmas], np.int64)
            sizes = [len(v.rows) for v in vmas]
            self.row0 = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) \
                if vmas else np.zeros(0, np.int64)
            self.kind = np.array([(KIND_THP if v.thp else 0)
                                  | (KIND_FILE if v.file is not None else 0)
                                  | (KIND_RECENCY if vma_has_recency(v) else 0)
                                  for v in vmas], np.int64)
            self.rows = np.concatenate([v.rows for v in vmas]).astype(np.int64) \
                if vmas else np.zeros(0, np.int64)
        return self


#: the compiled loop prefetches the lines of later accesses: always when it stamps the
#: ground truth (measured faster from 0.25 GiB on), else from a page table of
#: PREFETCH_MIN_PAGES PTEs (8 GiB), whose flag bytes outgrow the CPU caches
#: (benchmarks/prefetch_ab.py); the plain-hit loop's blocks always do (their indices
#: are at hand)
PREFETCH = True
PREFETCH_MIN_PAGES = 1 << 21

def _next_pfns(node: Node, n: int) -> npt.NDArray[np.int64]:
    """The pages `alloc_pages(nid, 1)` would return next, n times: the free lists'
    last chunk from its end, then the one before, then never-used memory."""
    parts = []
    left = n
    for chunk in reversed(node.free):
        if left <= 0:
            break
        parts.append(chunk[::-1][:left])
        left -= len(parts[-1])
    if left > 0:
        parts.append(np.arange(node.fresh, min(node.end_pfn, node.fresh + left), dtype=np.int64))
    if len(parts) == 1:
        return np.ascontiguousarray(parts[0], np.int64)
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, np.int64)


class FaultBufs:
    """The arrays of `fault_context` that do not depend on the state, and the hit loop's
    room for a block of PTE indices per thread and each thread's end, its one-at-a-time
    run and the runs it splits between two threads, made once per stream."""

    def __init__(self) -> None:
        self.par = np.zeros(NR_PAR, np.int64)
        self.res = np.zeros(NR_RES, np.int64)
        self.freed = np.empty(FAULT_BATCH, np.int64)
        self.fidx = np.empty(FAULT_BATCH, np.int64)
        self.blocks = np.empty((2, PLAIN_BLOCK), np.int64)  # per thread (one: the first)
        self.ends = np.zeros(2, np.int64)
        self.short = PLAIN_SHORT
        self.split = PLAIN_SPLIT


def fault_context(k: SimKernel, p: Process, bufs: FaultBufs, npfns: int,
                  pmd_skip: int = -1) -> tuple:
    """What the compiled loop needs to fault pages in (`_host_fault.anon_fault`):
    `npfns` pages prepared from the allocator, the parameters, the arrays.

    `pmd_skip`: the access whose PMD bits were set before its charge (see run_host).
    """
    mm = p.mm
    memcg = mm.memcg
    mem = k.mem
    node = mem.nodes[p.nid]
    next_pfns = _next_pfns(node, npfns)
    lruvec = memcg.lruvecs[p.nid]
    par = bufs.par
    par[:P_RESET_TIER + 1] = (memcg.id, p.nid, lruvec.max_seq, *lruvec.min_seq,
                              lruvec.nr_hist_gens, k.rules.folio_seq_by_workingset,
                              k.cfg.independent_min_seq, k.cfg.refault_stats_only_recent,
                              k.cfg.two_step_promotion, k.rules.active_add_resets_tier)
    par[P_SWAP_CACHE] = not k.swap.bypass_ok
    par[P_PMD_SKIP] = pmd_skip
    res = bufs.res
    res[:] = 0
    res[R_HEAD] = mem.order_head
    hint = mem.rmap_hint if mem.rmap_hint is not None else _EMPTY_U32
    return (next_pfns, par, mem.gen, mem.lru, mem.memcg, lruvec.nr_pages[:, :, 0],
            lruvec.nr_listed[:, :, 0], lruvec.refaulted, k.swap.shadow,
            bufs.freed, hint, res, bufs.fidx)


def apply_faults(k: SimKernel, p: Process, fault: tuple, run: _Run | None,
                 lim: np.ndarray) -> int:
    """Apply what the compiled faults (and reclaims, if any) left to Python objects;
    returns how many faults there were."""
    next_pfns, res = fault[0], fault[11]
    nf = int(res[R_FAULTS])
    reclaims = int(lim[L_RECLAIMS])
    if not nf and not reclaims:
        return 0
    mem = k.mem
    memcg = p.mm.memcg
    n = int(res[R_ALLOC])
    if n:
        # the allocator's own bookkeeping: n pages taken at once leave the free lists as
        # n one-page allocations do (the order they come back in differs); taken before
        # the pages reclaim freed in between join the lists
        got = mem.alloc_pages(p.nid, n)
        if len(got) != n or sum(got.tolist()) != sum(next_pfns[:n].tolist()):
            # the same pages (the order differs); the property tests check them one by one
            raise AssertionError(f"allocation of {n} pages: expected {next_pfns[:n]}, got {got}")
    memcg.charge(n + int(lim[L_POPPED]))
    moved = int(lim[L_SLOTS_MOVED])
    if reclaims:  # what the eviction loop did, with the slots faults pushed before it
        run.flush(int(lim[L_EMPTIED]))
        memcg.nr_max_events += int(lim[L_MAXEV])
    mem.order_head = int(res[R_HEAD])
    count_event(k, memcg, "pgfault", int(res[R_PGFAULT]))
    count_event(k, memcg, "pgmajfault", int(res[R_MAJ]))
    lruvec = memcg.lruvecs[p.nid]
    for what, r in (("refault", R_REFAULT), ("activate", R_ACTIVATE), ("restore", R_RESTORE)):
        count_workingset(k, lruvec, what, 0, int(res[r]))
    nfreed = int(res[R_FREED])
    if nfreed:
        swap = k.swap
        later = fault[9][moved:nfreed].tolist()  # freed after the last reclaim
        swap._free.extend(later)  # noqa: SLF001
        swap.nr_used -= len(later)
        swap.pswpin += nfreed
        k.stats["pswpin"] += nfreed
    return nf


def _pte_is_swap(mm: Mm, vpn: int) -> bool:
    """Whether the PTE of `vpn` (in a 4 KiB VMA) holds a swap entry."""
    return bool(mm.pt.flat_flags()[mm.find_vma(vpn << PAGE_SHIFT).pte_index(vpn)] & PTE_SWAP)


def _pfn_of(mm: Mm, vpn: int) -> int:
    """The pfn mapping `vpn` now, or -1 (for the ground truth of a faulted access)."""
    vma = mm.find_vma(vpn << PAGE_SHIFT)
    if vma is None:
        return -1
    pt = mm.pt
    row = int(vma.rows[(vpn >> 9) - (vma.start >> PMD_SHIFT)])
    if pt.pmd_state[row] == PMD_LEAF:
        return int(pt.pmd_pfn[row]) + (vpn & (PTRS_PER_PTE - 1))
    return int(pt.pte_pfn[row, vpn & (PTRS_PER_PTE - 1)])


_CHARGED, _ROOM = 1, 2


def _make_room(k: SimKernel, p: Process, vpn: int) -> int:
    """Let the compiled loop go on with a fault that stopped at its budget.

    Returns `_ROOM` if the budget was only the loop's batch size, `_CHARGED` after
    try_charge() made room in the memcg (reclaiming), as the fault would first do
    (mm/memory.c: do_anonymous_page() and do_swap_page() charge before they
    allocate); 0 if the fault must go the Python way (the node is at its low
    watermark: the allocation wakes kswapd).
    """
    memcg = p.mm.memcg
    node = k.mem.nodes[p.nid]
    if node_room(k, node) < 1 or not k.caps.lru_gen_enabled():
        return 0
    if memcg_room(memcg) >= 1:
        return _ROOM
    swap_in = _pte_is_swap(p.mm, vpn)  # before the charge: the OOM killer may unmap it
    try:
        try_charge(k, memcg, 1, p)
    except MemcgOom:
        count_failed_fault(k, memcg, swap_in)
        raise
    return _CHARGED


def run_host(k: SimKernel, s: Stream, stop: int, truth: HostTruth | None) -> None:
    """Apply accesses [s.pos, stop) of host stream `s`; the clock ends at the last one's time.

    `truth`: where the accesses' stamps go (None: no ground truth).

    Raises:
        ValueError: an access outside the task's mappings (SIGSEGV), as `p.access`.
        MemcgOom: as the fault path; `s.pos` is then the failing access.
    """
    p = s.task
    mm = p.mm
    if "host" not in s.scratch:
        s.scratch["host"] = (_VmaTable(), FaultBufs())
    table, bufs = s.scratch["host"]
    last_ms = truth.by_pfn if truth is not None else None
    mem_flags = k.mem.flags
    pmd_skip = -1
    resume = None
    i = s.pos
    while i < stop:
        if pmd_skip != i:
            mm.use()  # every access is by a running task of this mm (lru_gen_use_mm)
        v = table.of(mm)
        pt = mm.pt
        run, lim, npfns = reclaim_context(k, p, resume)
        resume = None
        # one fault at most per access: a short slice (an engine quantum) prepares few
        fault = fault_context(k, p, bufs, min(npfns, stop - i), pmd_skip)
        stamps = truth.target(k, mm) if truth is not None else (_EMPTY_U32, False)
        pfns = pt.flat_pfn()
        j = host_hits(s.pages, s.writes, s.t_ns, i, stop,
                      (v.start, v.end, v.row0, v.kind, v.rows),
                      (pt.pmd_state, pt.pmd_flags, pt.pmd_pfn, pt.flat_flags(), pfns),
                      mem_flags, stamps, fault, (run.arrays(), lim),
                      PREFETCH and (truth is not None or pfns.size >= PREFETCH_MIN_PAGES),
                      (bufs.blocks, bufs.ends, bufs.short, bufs.split))
        if pmd_skip == i and (j > i + 1 or i < j < stop):
            # access i charged (its reclaim may have aged) after its task ran: the
            # accesses after it, and access j whose charge may follow, are by a running
            # task again; nothing in the loop reads the mark, so setting it now will do
            mm.use()
        at_budget = bool(bufs.res[R_STOP])
        nf = apply_faults(k, p, fault, run, lim)
        s.hits += j - i - nf
        s.faults += nf
        if s.record_faults:
            s.fault_index.frombytes(bufs.fidx[:nf].tobytes())
        s.pos = j
        if j == stop:
            break
        set_clock(k, int(s.t_ns[j]))
        if nf >= len(bufs.fidx) and not lim[L_REASON]:  # the round's fault buffer is full
            pmd_skip = -1
            i = j
            continue
        vpn = int(s.pages[j])
        if lim[L_REASON]:
            # the compiled reclaim of access j's charge stopped: Python does its part,
            # then the loop goes on with the reclaim (or the charge is done) and faults
            # j in, leaving its PMD bits (and the mm's use mark) as the charge left them
            resume = hand_back(k, p, run, lim, _pte_is_swap(mm, vpn))
            pmd_skip = i = j
            continue
        if at_budget and pmd_skip != j:
            how = _make_room(k, p, vpn)
            if how:
                # the loop faults access j itself; after a charge that reclaimed, it
                # leaves the PMD bits it set before (and the mm's use) as they are now
                pmd_skip = j if how == _CHARGED else -1
                i = j
                continue
        if pmd_skip == j:  # charged, but the loop could not finish this fault
            fault_anon_page(k, p, vpn, bool(s.writes[j]))
        else:
            user_access(k, p, vpn << PAGE_SHIFT, PAGE_SIZE, bool(s.writes[j]))
        s.faults += 1
        if s.record_faults:
            s.fault_index.append(j)
        if last_ms is not None:
            pfn = _pfn_of(mm, vpn)
            if pfn >= 0:
                last_ms[pfn] = access_ms(s.t_ns[j])
        i = s.pos = j + 1
    if stop > 0:
        set_clock(k, int(s.t_ns[stop - 1]))
