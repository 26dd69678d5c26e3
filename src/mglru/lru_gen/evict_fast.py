"""try_to_shrink_lruvec() in one compiled call per stretch of batches, and its fallbacks.

Kernel: mm/vmscan.c: try_to_shrink_lruvec() and evict_folios().

Mechanism: `shrink_lruvec` packs the lruvec, the scan control, the swap device
and the page tables into arrays, runs `_evict_kernel.evict_loop`, and does in
Python what the loop hands back (aging, writeback, the per-folio shrink path,
rebuilding a list's cached tail order, growing the swap map) before resuming
it. Each hand-over first applies what the loop did (`flush`: counters,
charges, free lists, swap slots, caches, look-around's Bloom filter inserts;
a reclaim hook sees the pages freed), so the Python code always sees the state
it would have seen on its own. The
result is the state the Python path (`eviction.try_to_shrink_lruvec` with
`ENABLED = False`) reaches, exactly: tests/eviction/test_evict_compiled.py
compares the two.

Future optimizations:
1. keep the packed arrays across calls of one reclaim (each call packs anew).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen import _evict_layout as kx
from mglru.lru_gen._evict_kernel import evict_loop
from mglru.lru_gen.bloom import update_bloom_filters
from mglru.lru_gen.helpers import (
    DEF_PRIORITY,
    LRU_REFS_FLAGS,
    LRU_REFS_FLAGS_V6_10,
    MAX_LRU_BATCH,
    MIN_LRU_BATCH,
)
from mglru.lru_gen.lists import scan_order
from mglru.mm.page import NR_RESERVED_PFNS
from mglru.mm.process import VM_LOCKED
from mglru.mm.rmap import rmap_enable
from mglru.mm.vmstat import count_reclaim

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.eviction import ScanControl
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.memory import PhysMem

__all__ = ["ENABLED", "shrink_lruvec", "forget_packed_procs", "stream_run", "resume_shrink",
           "shrink_step"]

#: False forces the Python path (tests compare the two)
ENABLED = True
_NPROCS = 8
_FREED = 1 << 16
#: free swap slots handed to the loop per call (from the end of the device's list)
_SWAP_WINDOW = 256
_EMPTY_I = np.zeros(0, np.int64)
_EMPTY_U = np.zeros(0, np.uint32)
_PAD_F = np.zeros(1, np.uint8)
_PAD_P = np.zeros(1, np.uint32)
_PAD_A = np.zeros(1, np.int64)
_PAD_V = np.zeros((0, 3), np.int64)
_PAD_PMD = (_PAD_F, _PAD_P, _PAD_A, _PAD_V)
#: hand-backs to the Python path (a batch to shrink, an iteration run in Python),
#: agings between batches, and batches whose folios the loop kept itself; tests read them
COUNTS = {"shrink": 0, "iter": 0, "age": 0, "keep": 0}
#: the counters of st that `_Run.flush` applies (and zeroes)
_APPLIED = np.array([kx.S_NR_SCANNED, kx.S_PGSCAN, kx.S_PGSCAN1, kx.S_PGSTEAL, kx.S_PGSTEAL1,
                     kx.S_FREED, kx.S_NFREED, kx.S_NCHUNKS, kx.S_NBLOOM, kx.S_NKEEP])


def _vma_table(mm) -> tuple:  # noqa: ANN001
    """(start, end, flags) of the VMAs of `mm` as an array, and whether one is VM_LOCKED.

    Kept on the mm while its VMA list holds the same VMA objects (a VMA's range and
    flags are never changed in place; mmap adds VMAs, exit drops them all).
    """
    vmas = mm.vmas
    cached = getattr(mm, "_evict_vmas", None)
    if (cached is None or len(cached[0]) != len(vmas)
            or any(a is not b for a, b in zip(cached[0], vmas, strict=True))):
        table = np.array([(v.start, v.end, v.flags) for v in vmas], np.int64).reshape(-1, 3)
        cached = (tuple(vmas), table, any(v.flags & VM_LOCKED for v in vmas))
        mm._evict_vmas = cached  # noqa: SLF001
    return len(vmas), cached[1], cached[2]


def _procs(k: SimKernel):
    """The page tables the loop reads: PTEs of up to _NPROCS tasks, and their PMDs and VMAs.

    PTE arrays are the tasks' own (the loop writes them). PMD state, pfn and address
    and the VMA tables are the task's own arrays for one task; for several they are
    packed into one array each (`_pack_pmd`, when a batch first needs them: the loop
    asks with X_PMD), located by the columns 4-6 of the info rows. Returns (procs,
    pmd or None, usable).
    """
    procs = list(k.procs.values())
    info = np.zeros((_NPROCS, 7), np.int64)
    if len(procs) > _NPROCS:
        return ((_PAD_F,) * _NPROCS, (_PAD_P,) * _NPROCS, info), _PAD_PMD, False
    if not procs:
        return ((_PAD_F,) * _NPROCS, (_PAD_P,) * _NPROCS, info), _PAD_PMD, True
    pf, pp, rows_info = [], [], []
    rows = nv = 0
    for p in procs:
        mm = p.mm
        pt = mm.pt
        pf.append(pt.flat_flags())
        pp.append(pt.flat_pfn())
        nvma, table, locked = _vma_table(mm)
        rows_info.append((pt.nr_rows * 512, bool(mm.notifiers), locked, mm.id, rows, nv, nvma))
        rows += len(pt.pmd_state)
        nv += nvma
    info[:len(procs)] = rows_info
    pmd = None
    if len(procs) == 1:
        pt = procs[0].mm.pt
        pmd = (pt.pmd_state, pt.pmd_pfn, pt.pmd_addr, table)
    pad = _NPROCS - len(procs)
    return (tuple(pf) + (_PAD_F,) * pad, tuple(pp) + (_PAD_P,) * pad, info), pmd, True


def _packed_procs(k: SimKernel) -> tuple:
    """`_procs(k)`, kept on the kernel while its tasks, page tables and VMAs stay the same.

    A memcg at memory.max reclaims once per 32 pages or so, and each time the
    same tables would be packed again. The key holds the objects `_procs` reads
    (so that no id can be reused while it is kept); exit drops it
    (`forget_packed_procs`).
    """
    objs = tuple((p.mm.pt.pte_flags, p.mm.pt.pmd_state, p.mm.pt.nr_rows, bool(p.mm.notifiers),
                  tuple(p.mm.vmas)) for p in k.procs.values())
    cached = getattr(k, "_evict_procs", None)
    if cached is None or len(cached[0]) != len(objs) or any(
            a[0] is not b[0] or a[1] is not b[1] or a[2] != b[2] or a[3] != b[3]
            or len(a[4]) != len(b[4]) or any(x is not y for x, y in zip(a[4], b[4], strict=True))
            for a, b in zip(cached[0], objs, strict=True)):
        cached = k._evict_procs = (objs, _procs(k))  # noqa: SLF001
    return cached[1]


def forget_packed_procs(k: SimKernel) -> None:
    """Drop the packed page tables (a task exits: its tables must not be kept alive)."""
    k._evict_procs = None  # noqa: SLF001
    k._evict_dummy = None  # noqa: SLF001


def _pack_pmd(k: SimKernel) -> tuple:
    """The PMD arrays and VMA tables of every task, each packed into one array."""
    mms = [p.mm for p in k.procs.values()]
    return (np.concatenate([mm.pt.pmd_state for mm in mms]),
            np.concatenate([mm.pt.pmd_pfn for mm in mms]),
            np.concatenate([mm.pt.pmd_addr for mm in mms]),
            np.concatenate([_vma_table(mm)[1] for mm in mms]))


_POOL: list = []


def _bufs() -> tuple:
    """The loop's scratch buffers (see evict_loop), reused from one call to the next."""
    if _POOL and len(_POOL[-1][4]) == _FREED:
        return _POOL.pop()
    return (np.empty(MAX_LRU_BATCH, np.int64), np.empty(MAX_LRU_BATCH, np.int64),
            np.zeros(9, np.int64), np.zeros(MAX_LRU_BATCH, np.int64),
            np.empty(_FREED, np.int64), np.empty(_FREED, np.int64),
            np.empty(2 * MAX_LRU_BATCH, np.int64), np.zeros(MAX_LRU_BATCH, np.int64),
            np.empty(MAX_LRU_BATCH + MIN_LRU_BATCH, np.int64))


def _static_conf(k: SimKernel, lruvec: Lruvec) -> list:
    """The entries of the loop's configuration that never change for a lruvec."""
    cfg, rules, mem = k.cfg, k.rules, k.mem
    cf = [0] * kx.NR_CONF
    cf[kx.C_TWO_STEP] = cfg.two_step_promotion
    cf[kx.C_REFS_FLAGS] = LRU_REFS_FLAGS if cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10
    cf[kx.C_SHIFT] = 0 if cfg.protect_in_inc_min_seq else 1
    cf[kx.C_INDEPENDENT] = cfg.independent_min_seq
    cf[kx.C_RULES_6_1] = cfg.reclaim_rules_6_1
    cf[kx.C_ON_THREE] = cfg.aging_on_three_gens
    cf[kx.C_ABORT_AT_GOAL] = cfg.abort_memcg_scan_at_goal
    cf[kx.C_NR_HIST] = lruvec.nr_hist_gens
    cf[kx.C_MEMCG_ID] = lruvec.memcg.id
    cf[kx.C_NID] = lruvec.nid
    cf[kx.C_LA_MODE] = (kx.LA_SECONDARY_FIRST if rules.look_around_target_secondary_first
                        else kx.LA_NOTIFY if rules.look_around_notify else kx.LA_CLEAR_FLUSH)
    cf[kx.C_SKIP_LONE] = rules.look_around_skips_lone_and_unlisted
    cf[kx.C_SEQ_BY_WS] = rules.folio_seq_by_workingset
    cf[kx.C_RESETS_TIER] = rules.active_add_resets_tier
    node = mem.nodes[lruvec.nid]
    cf[kx.C_NODE_LO] = max(node.start_pfn, NR_RESERVED_PFNS)
    cf[kx.C_NODE_HI] = node.end_pfn
    cf[kx.C_HAS_BLOOM] = lruvec.mm_state is not None
    return cf


class _Run:
    """One shrink_lruvec call: the packed arguments and the flush back to Python."""

    def __init__(self, k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int,
                 spare: int = 0, rmap: bool = True) -> None:
        """`spare`: room for that many more free swap slots than the device lists (faults
        of a stream push theirs); `rmap`: build the rmap hints now (False: a run that
        is only packed, for its types)."""
        self.k, self.lruvec, self.sc, self.spare = k, lruvec, sc, spare
        mem, memcg = k.mem, lruvec.memcg
        self.procs, pmd, procs_ok = _packed_procs(k)
        self.pmd = _PAD_PMD if pmd is None else pmd
        static = getattr(lruvec, "_evict_static", None)
        if static is None:
            static = lruvec._evict_static = _static_conf(k, lruvec)  # noqa: SLF001
        cf = static.copy()  # a list, made an array once filled
        cf[kx.C_GFP_IO] = sc.gfp_io
        cf[kx.C_SWAPPINESS] = swappiness
        cf[kx.C_KSWAPD] = sc.kswapd
        cf[kx.C_ROOT] = sc.root_reclaim
        cf[kx.C_PRIORITY] = sc.priority
        cf[kx.C_NR_TO_RECLAIM] = min(sc.nr_to_reclaim, (1 << 62))
        cf[kx.C_ONLINE] = memcg.online
        cf[kx.C_UNPROTECTED] = memcg.parent is None or memcg is sc.target
        cf[kx.C_MEMORY_MIN] = memcg.memory_min
        cf[kx.C_FAST_OK] = procs_ok and sc.may_swap and sc.may_unmap
        cf[kx.C_NPROCS] = min(len(k.procs), _NPROCS)
        cf[kx.C_SWCAP] = k.swap.capacity
        cf[kx.C_HAS_IDLE] = mem.page_idle is not None
        cf[kx.C_KEEP_OK] = cf[kx.C_FAST_OK] and k.caps.lru_gen_enabled()
        cf[kx.C_PMD_READY] = pmd is not None
        self.cf = cf = np.array(cf, np.int64)
        hint = rmap_enable(k) if rmap or mem.rmap_hint is not None else _PAD_P
        self.pinned = np.array(sorted(k.pinned), np.int64) if k.pinned else _EMPTY_I
        idle = mem.page_idle if mem.page_idle is not None else _PAD_F
        self.folios = (mem.flags, mem.gen, mem.lru, mem.memcg, idle, hint)
        arrays = getattr(lruvec, "_evict_arrays", None)
        if arrays is None:  # the lruvec's arrays never change: their views are kept
            min_seq = np.zeros(2, np.int64)
            arrays = lruvec._evict_arrays = (  # noqa: SLF001
                min_seq, (lruvec.nr_pages[:, :, 0], lruvec.nr_listed[:, :, 0],
                          lruvec.avg_refaulted, lruvec.avg_total, lruvec.protected,
                          lruvec.evicted, lruvec.refaulted, min_seq))
        self.min_seq, self.lv = arrays
        self.ctr = np.zeros(2, np.int64)
        self.bufs = _bufs()
        self.cm = np.zeros((2, 4), np.int64)
        self.cand = [_EMPTY_I, _EMPTY_I]
        self.snap = [_EMPTY_U, _EMPTY_U]
        st = np.zeros(kx.NR_STATE, np.int64)
        st[kx.S_SEQ] = lruvec.max_seq
        self.st = st
        self.load()

    def load(self) -> None:
        """Read the Python-side state the loop works on (after Python changed it)."""
        k, lruvec, st = self.k, self.lruvec, self.st
        self.min_seq[:] = lruvec.min_seq
        self.cf[kx.C_MAX_SEQ] = lruvec.max_seq
        self.ctr[:] = (k.mem.order_head, k.mem.order_tail)
        swap = k.swap
        # the end of the free list, which slots are taken from (the loop asks for more)
        free = swap._free
        w = min(len(free), max(_SWAP_WINDOW, int(st[kx.S_SWWANT])))
        self.free_base = len(free) - w
        self.free_slots = np.empty(w + self.spare, np.int64)
        self.free_slots[:w] = free[self.free_base:]
        self.swap = (swap.shadow, self.free_slots)
        st[kx.S_SWNFREE] = w
        st[kx.S_SWREST] = self.free_base
        st[kx.S_SWNEXT] = swap._next
        st[kx.S_SWUSED] = swap.nr_used
        st[kx.S_NR_RECLAIMED] = self.sc.nr_reclaimed
        st[kx.S_EVICTED_ANON] = self.sc.evicted_anon
        st[kx.S_CHARGED] = lruvec.memcg.nr_charged
        st[kx.S_WB_PENDING] = bool(k._writeback)
        for t in range(2):
            g = lruvec.min_seq[t] % 4
            c = lruvec.scan_cache.get((g, t))
            if c is None:
                self.cm[t] = 0
                self.cand[t], self.snap[t] = _EMPTY_I, _EMPTY_U
            else:
                self.cm[t] = (1, c[2], c[3], g)
                self.cand[t], self.snap[t] = c[0], c[1]

    def arrays(self) -> tuple:
        """evict_loop's arguments."""
        caches = (self.cand[0], self.snap[0], self.cand[1], self.snap[1], self.cm)
        return (self.folios, self.lv, caches, self.ctr, self.procs, self.pmd, self.swap,
                self.pinned, self.cf, self.st, self.bufs)

    def run(self) -> int:
        x = evict_loop(*self.arrays())
        self.flush()
        return x

    def flush(self, emptied: int = 0) -> None:
        """Apply what the loop did to the Python-side state, and zero its counters.

        `emptied`: chunks of freed pages that faults of a stream used up in the
        meantime (they took pages from the buffer and pushed swap slots, see
        `workload._host_reclaim`).
        """
        k, lruvec, sc = self.k, self.lruvec, self.sc
        st = self.st.tolist()  # one conversion: the fields below are read as Python ints
        mem = k.mem
        lruvec.min_seq[:] = self.min_seq.tolist()
        mem.order_head, mem.order_tail = self.ctr.tolist()
        for t, (present, pos, tail, g) in enumerate(self.cm.tolist()):
            if present:
                lruvec.scan_cache[(g, t)] = [self.cand[t], self.snap[t], pos, tail]
        sc.nr_scanned += st[kx.S_NR_SCANNED]
        for t in range(2):
            count_reclaim(k, lruvec, sc, t, "pgscan", st[kx.S_PGSCAN + t])
        swap = k.swap
        freed = st[kx.S_FREED]
        node = mem.nodes[lruvec.nid]
        node.free_gen += emptied
        if freed or self.spare:
            if self.spare:  # faults may have pushed slots on top of the window
                swap._free[self.free_base:] = self.free_slots[:st[kx.S_SWNFREE]].tolist()
            else:  # the loop only took slots from the window's end
                del swap._free[self.free_base + st[kx.S_SWNFREE]:]
            swap._next = st[kx.S_SWNEXT]
            swap.nr_used = st[kx.S_SWUSED]
            swap.pswpout += freed
            k.stats["pswpout"] += freed
            lruvec.nr_evicted_pages += freed
            lruvec.memcg.charge(-freed)
            pfns = self.bufs[4][:st[kx.S_NFREED]].copy()
            if k.reclaim_hook is not None and len(pfns):
                _hook(k, pfns, lruvec.memcg.id)
            start = 0
            for end in self.bufs[5][:st[kx.S_NCHUNKS]].tolist():
                node.free.append(pfns[start:end])
                node.nr_free_listed += end - start
                node.free_gen += 1
                start = end
        sc.nr_reclaimed = st[kx.S_NR_RECLAIMED]
        nb = st[kx.S_NBLOOM]
        if nb:  # look-around's Bloom filter inserts
            pairs = self.bufs[6][:2 * nb].reshape(-1, 2)
            update_bloom_filters(lruvec.mm_state, lruvec.max_seq, pairs)
        COUNTS["keep"] += st[kx.S_NKEEP]
        sc.evicted_anon = bool(st[kx.S_EVICTED_ANON])
        for t in range(2):
            count_reclaim(k, lruvec, sc, t, "pgsteal", st[kx.S_PGSTEAL + t])
        self.st[_APPLIED] = 0


def _hook(k: SimKernel, pfns: np.ndarray, memcg_id: int) -> None:
    """`SimKernel.reclaim_hook` for the pages the loop freed (one-page folios of the
    run's memcg), shown with their memcg as the per-folio path shows its folios
    (before they reach the free lists; the loop cleared the id when it freed them)."""
    mem = k.mem
    mem.memcg[pfns] = memcg_id
    try:
        k.reclaim_hook(k, pfns, np.ones(len(pfns), np.int64))
    finally:
        mem.memcg[pfns] = 0


def shrink_lruvec(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int) -> bool:
    """try_to_shrink_lruvec()'s loop (after swappiness); returns whether to rotate."""
    from mglru.lru_gen import eviction as ev

    sc.evicted_anon = False
    if sc.priority == DEF_PRIORITY and lruvec.total_pages() < 1 << DEF_PRIORITY:
        # get_nr_to_scan() never ages at DEF_PRIORITY: a first pass over a small
        # lruvec (size >> 12 is 0) ends here, without packing the loop's arguments
        rmap_enable(k)
        nr = ev.get_nr_to_scan(k, lruvec, sc, swappiness)
        if nr <= 0:
            return nr < 0
    run = _Run(k, lruvec, sc, swappiness)
    try:
        return _shrink(k, lruvec, sc, swappiness, run)
    finally:
        _POOL[:] = [run.bufs]


def _shrink(k: SimKernel, lruvec: Lruvec, sc: ScanControl, swappiness: int, run: _Run,
            x: int | None = None) -> bool:
    """Run the loop, doing what it hands back, until it is done; `x`: start by doing
    that hand-back (of a loop a stream's compiled reclaim ran)."""
    while True:
        if x is None:
            x = run.run()
        ret = shrink_step(k, run, swappiness, x)
        if ret is not None:
            return ret
        x = None


def _prepare_list(mem: PhysMem, lruvec: Lruvec, t: int) -> None:
    """The loop's X_PREP: renumber the order keys if they run out, and rebuild the
    tail-first order of the oldest list of type `t` unless its cached one still holds.

    After aging the loop asks for it on its first scan; building it while Python
    has the state saves that hand-back (a cached order stays valid while no folio
    joins a list's tail, the loop checks).
    """
    scan_order(mem, lruvec, lruvec.min_seq[t] % 4, t)


def shrink_step(k: SimKernel, run: _Run, swappiness: int, x: int) -> bool | None:
    """Do what the loop handed back (`x`, its effects flushed): try_to_shrink_lruvec()'s
    result if that ends it, else None, the loop's state reloaded to go on."""
    from mglru.lru_gen import eviction as ev

    lruvec, sc, st = run.lruvec, run.sc, run.st
    mem = k.mem
    if x == kx.X_DONE:
        return bool(st[kx.S_RET])
    if x in (kx.X_ITER, kx.X_AGE):
        # X_AGE: get_nr_to_scan() ages, then the loop goes on with evict_folios();
        # X_ITER: the PID's counters are too large for the loop, so this whole
        # iteration runs in Python
        COUNTS["iter" if x == kx.X_ITER else "age"] += 1
        max_seq = lruvec.max_seq
        nr = ev.get_nr_to_scan(k, lruvec, sc, swappiness)
        if x == kx.X_AGE and lruvec.max_seq != max_seq:
            for t in range(2):  # the orders the loop's next scans ask for (see _prepare_list)
                g = lruvec.min_seq[t] % 4
                if lruvec.max_seq - lruvec.min_seq[t] > 1 and any(lruvec.nr_listed[g, t].tolist()):
                    _prepare_list(mem, lruvec, t)
        if nr <= 0:
            return nr < 0
        st[kx.S_NR_TO_SCAN] = nr
        if x == kx.X_ITER:
            st[kx.S_DELTA] = ev.evict_folios(k, lruvec, sc, swappiness, nr)
            st[kx.S_PHASE] = kx.PH_AFTER
        else:
            st[kx.S_PHASE] = kx.PH_EVICT
    elif x == kx.X_EVICT:
        COUNTS["iter"] += 1
        nr = int(st[kx.S_NR_TO_SCAN])
        st[kx.S_DELTA] = ev.evict_folios(k, lruvec, sc, swappiness, nr)
        st[kx.S_PHASE] = kx.PH_AFTER
    elif x == kx.X_WBEND:
        k.end_writeback()  # evict_folios() first completes writeback
    elif x == kx.X_PREP:
        # scan_folios()'s prelude: renumber, or rebuild the list's tail-first order
        _prepare_list(mem, lruvec, int(st[kx.S_TYPE]))
    elif x == kx.X_WB:
        for pfn in run.bufs[1][:int(st[kx.S_NWB])].tolist():
            k.start_writeback(pfn)
    elif x == kx.X_SHRINK:
        COUNTS["shrink"] += 1
        isolated = run.bufs[0][:int(st[kx.S_NOUT])].tolist()
        ev.reclaim_isolated(k, lruvec, sc, int(st[kx.S_TYPE]), isolated)
        st[kx.S_DELTA] = st[kx.S_ISO_SCANNED]
        st[kx.S_PHASE] = kx.PH_AFTER
    elif x == kx.X_GROW:
        swap = k.swap
        grown = np.zeros(max(int(st[kx.S_GROW]), 2 * len(swap.shadow), 1024), np.int64)
        grown[: len(swap.shadow)] = swap.shadow
        swap.shadow = grown
    elif x == kx.X_PMD:
        run.pmd = _pack_pmd(k)
        run.cf[kx.C_PMD_READY] = 1
    # X_FLUSH: nothing more than the flush
    run.load()
    return None


def stream_run(k: SimKernel, lruvec: Lruvec, spare: int, active: bool) -> _Run:
    """A run packed for a stream's compiled memcg reclaim (`workload._host_reclaim`).

    Its scan control is the one try_to_free_mem_cgroup_pages() makes for a
    one-page charge; the compiled reclaim sets priority, goal and swappiness.
    Inactive (`active` False), it only gives the compiled loop arrays of the
    right types and builds no rmap hints.
    """
    from mglru.lru_gen.eviction import ScanControl

    if not active:  # one per kernel will do (forget_packed_procs drops it)
        dummy = getattr(k, "_evict_dummy", None)
        if dummy is None:
            dummy = k._evict_dummy = _Run(k, lruvec, ScanControl(), 0, spare, rmap=False)  # noqa: SLF001
        return dummy
    sc = ScanControl(nr_to_reclaim=32, target=lruvec.memcg)
    return _Run(k, lruvec, sc, 0, spare=spare, rmap=active)


def resume_shrink(k: SimKernel, run: _Run, x: int | None) -> bool:
    """Go on with a loop a stream's compiled reclaim ran, from its hand-back `x` (its
    effects already flushed; None: already done, the state reloaded), to the end of
    that try_to_shrink_lruvec()."""
    return _shrink(k, run.lruvec, run.sc, int(run.cf[kx.C_SWAPPINESS]), run, x)
