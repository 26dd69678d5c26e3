"""Property tests: conservation and exclusivity of pages under reclaim. Spec §2.2, §4, §9 item 5.

Random operation sequences (tests/eviction/eviction_ops.py) mix faults, read(2),
aging and eviction through debugfs, `memory.max` pressure, `memory.reclaim`,
exits and time. After every operation `evict_checks.audit` rebuilds from raw
state where every page and swap slot is and checks:

* conservation: pages on MGLRU lists (plus unevictable ones; none is isolated
  at rest) + swapped + dropped == pages ever faulted - pages freed by exit, the
  right side being the test's own `Ledger` of what it wrote and read;
* no folio is in two places: no pfn both free and mapped/cached/listed, no anon
  pfn mapped twice, no swap slot both free and referenced, nothing allocated
  without an owner;
* every type keeps 2..4 generations, and `lru_gen` / `nr_pages` per generation
  equal the per-pfn gen fields;
* user-visible contracts: `-` answers EINVAL exactly when seq + 2 > max_seq
  (spec §5.4), swappiness tokens are accepted per version, and no memcg is
  ever charged above its `memory.max`.
"""

from __future__ import annotations

import errno

import pytest
from evict_checks import (
    CGROOT,
    PAGE,
    PRESETS,
    Ledger,
    audit,
    block,
    min_max_seq,
    new_kernel,
)
from eviction_ops import eviction_runs
from hypothesis import given, settings
from kernel_checks import LRU_GEN

from mglru.lru_gen.helpers import MIN_NR_GENS

FILE_PAGES = 800
SHMEM_PAGES = 200


class Runner:
    """Applies `eviction_ops()` operations to one kernel and keeps the ledger."""

    def __init__(self, preset: str, swap_pages: int, limit: int, **kw) -> None:
        self.k = k = new_kernel(preset, mib=32, swap_pages=swap_pages, **kw)
        for name in ("a", "b"):
            k.mkdir(f"{CGROOT}/{name}")
        self.files = [k.open_file("f", FILE_PAGES * PAGE),
                      k.open_file("shm", SHMEM_PAGES * PAGE, shmem=True)]
        self.ledger = Ledger()
        self.vmas: dict[int, list[tuple[int, int, str]]] = {}
        self.v616 = k.cfg.swappiness_max_token
        self.nr_oom = 0
        # a task in /a under memory.max with more anon than fits, and one in /b
        # with anon and file mappings, so that any access sequence meets reclaim
        k.write(f"{CGROOT}/a/memory.max", str(limit * PAGE))
        self.op_spawn(1)
        self.op_mmap(0, "anon", 700)
        self.op_mmap(0, "shmem", SHMEM_PAGES)
        self.op_spawn(2)
        self.op_mmap(1, "anon", 300)
        self.op_mmap(1, "file", FILE_PAGES)
        # start from a lived-in state: /a already over its limit once, pages in
        # several generations, some swapped
        self.op_access(0, 0, 0, 700, True)
        self.op_access(1, 0, 0, 300, True)
        self.op_access(1, 1, 0, 400, False)
        self.op_age(1, None, 1)
        self.op_age(2, None, 1)

    # -- lookups ---------------------------------------------------------------------
    def memcgs(self) -> list:
        return list(self.k.memcgs.root.iter_preorder())

    def memcg(self, i: int):
        m = self.memcgs()
        return m[i % len(m)]

    def procs(self) -> list:
        return [self.k.procs[pid] for pid in sorted(self.k.procs)]

    @staticmethod
    def path(memcg) -> str:
        return CGROOT if memcg.parent is None else CGROOT + memcg.path

    # -- operations --------------------------------------------------------------------
    def apply(self, op: tuple, check: bool = True) -> None:
        getattr(self, "op_" + op[0])(*op[1:])
        self.reap_oom()
        if not check:
            return
        audit(self.k, self.ledger)
        for memcg in self.memcgs()[1:]:
            if memcg.memory_max is not None:
                assert memcg.nr_charged <= memcg.memory_max, \
                    f"{memcg.path}: {memcg.nr_charged} pages charged above memory.max"

    def reap_oom(self) -> None:
        """Tasks the OOM killer chose are gone with their memory."""
        for ev in self.k.oom_events[self.nr_oom:]:
            if ev["pid"] is not None:
                self.ledger.exit(ev["pid"])
                self.vmas.pop(ev["pid"], None)
                assert ev["pid"] not in self.k.procs
        self.nr_oom = len(self.k.oom_events)

    def op_spawn(self, i: int) -> None:
        p = self.k.spawn(memcg=self.memcg(i))
        self.vmas[p.pid] = []

    def op_mmap(self, i: int, kind: str, npages: int) -> None:
        procs = self.procs()
        if not procs:
            return
        p = procs[i % len(procs)]
        if kind == "thp":
            npages = 1024
            addr = p.mmap(npages * PAGE, thp=True)
            self.ledger.thp_vma(p.pid, addr, npages)
        elif kind == "file":
            npages = min(npages, FILE_PAGES)
            addr = p.mmap(npages * PAGE, file=self.files[0])
        elif kind == "shmem":
            npages = min(npages, SHMEM_PAGES)
            addr = p.mmap(npages * PAGE, file=self.files[1])
        elif kind == "locked":
            addr = p.mmap(npages * PAGE, flags=("locked",))
        else:
            addr = p.mmap(npages * PAGE)
        self.vmas[p.pid].append((addr, npages, kind))

    def op_access(self, i: int, j: int, quarter: int, npages: int, write: bool) -> None:
        procs = self.procs()
        if not procs:
            return
        p = procs[i % len(procs)]
        vmas = self.vmas[p.pid]
        if not vmas:
            return
        addr, size, kind = vmas[j % len(vmas)]
        first = size * quarter // 4
        n = min(npages, size - first)
        try:
            p.access(addr + first * PAGE, n * PAGE, write=write)
        except MemoryError:
            # the OOM killer chose this task (reaped after the operation) or nothing
            # could be freed; the pages faulted before the failure exist
            assert self.k.oom_events, "an access failed without an OOM event"
            if kind in ("file", "shmem"):
                self.ledger.failed(p.pid, "f" if kind == "file" else "shm", first, n)
            elif write:
                self.ledger.failed(p.pid, None, (addr >> 12) + first, n)
            return
        if kind in ("file", "shmem"):
            self.ledger.touch_file("f" if kind == "file" else "shm", first, n)
        elif write:
            self.ledger.write_anon(p.pid, addr + first * PAGE, n)

    def op_read(self, i: int, fi: int, first: int, npages: int) -> None:
        procs = self.procs()
        if not procs:
            return
        f = self.files[fi]
        first %= f.npages
        n = min(npages, f.npages - first)
        try:
            procs[i % len(procs)].read(f, first * PAGE, n * PAGE)
        except MemoryError:
            assert self.k.oom_events
            self.ledger.failed(0, f.name, first, n)
            return
        self.ledger.touch_file(f.name, first, n)

    def _swappiness_ok(self, swappiness) -> bool:
        return swappiness != "max" or self.v616

    def op_age(self, i: int, swappiness, times: int) -> None:
        memcg = self.memcg(i)
        for _ in range(times):
            seq = block(self.k, memcg.id).max_seq
            cmd = f"+ {memcg.id} 0 {seq}" + ("" if swappiness is None else f" {swappiness} 1")
            try:
                self.k.write(LRU_GEN, cmd)
            except OSError as e:
                assert not self._swappiness_ok(swappiness) and e.errno == errno.EINVAL, e
                return
            assert self._swappiness_ok(swappiness)

    def op_evict(self, i: int, offset: int, swappiness, nr) -> None:
        memcg = self.memcg(i)
        mins, max_seq = min_max_seq(self.k, memcg.id)
        seq = max(min(mins) + offset, 0)
        cmd = f"- {memcg.id} 0 {seq}"
        if swappiness is not None:
            cmd += f" {swappiness}" + ("" if nr is None else f" {nr}")
        bad = seq + MIN_NR_GENS > max_seq or not self._swappiness_ok(swappiness)
        try:
            self.k.write(LRU_GEN, cmd)
        except OSError as e:
            assert bad and e.errno == errno.EINVAL, e
        else:
            assert not bad, f"{cmd!r} accepted with max_seq {max_seq}"

    def op_limit(self, i: int, limit) -> None:
        memcg = self.memcg(i)
        if memcg.parent is None:
            return
        value = "max" if limit == "max" else str(limit * PAGE)
        self.k.write(self.path(memcg) + "/memory.max", value)

    def op_reclaim(self, i: int, npages: int, swappiness) -> None:
        memcg = self.memcg(i)
        arg = f"{npages * PAGE}" + ("" if swappiness is None else f" swappiness={swappiness}")
        try:
            self.k.write(self.path(memcg) + "/memory.reclaim", arg)
        except OSError as e:
            if e.errno == errno.EINVAL:
                assert not self._swappiness_ok(swappiness), e
            else:
                assert e.errno == errno.EAGAIN, e

    def op_exit(self, i: int) -> None:
        procs = self.procs()
        if not procs:
            return
        p = procs[i % len(procs)]
        self.k.exit_task(p)
        self.ledger.exit(p.pid)
        self.vmas.pop(p.pid, None)

    def op_tick(self, ms: int) -> None:
        self.k.tick(ms)


def run(preset: str, swap_pages: int, limit: int, ops: list[tuple], **kw) -> Runner:
    """Apply a sequence, auditing after every operation."""
    r = Runner(preset, swap_pages, limit, **kw)
    audit(r.k, r.ledger)
    for op in ops:
        r.apply(op)
    return r


@pytest.mark.parametrize("preset", PRESETS)
@settings(max_examples=25, derandomize=True, deadline=None)
@given(run_=eviction_runs())
def test_conservation_and_exclusivity(preset: str, run_: tuple[int, list[tuple]]) -> None:
    """Pages are conserved and never in two places, with a large swap device."""
    run(preset, 1 << 20, *run_)


@pytest.mark.parametrize("preset", ("v6.10", "v6.16"))
@settings(max_examples=20, derandomize=True, deadline=None)
@given(run_=eviction_runs())
def test_conservation_with_a_small_swap_device(preset: str, run_: tuple[int, list[tuple]]) -> None:
    """The same with 300 swap slots: a full device, anon left resident, OOM kills."""
    run(preset, 300, *run_)


@pytest.mark.parametrize("preset,kw", [
    ("v6.12", {"swap_device": "ssd"}),
    ("v6.10", {"swap_device": "hdd", "page_cluster": 1}),
    ("v6.14", {"swap_device": "ssd", "page_cluster": 5}),
], ids=["v6.12-ssd", "v6.10-hdd-pc1", "v6.14-ssd-pc5"])
@settings(max_examples=15, derandomize=True, deadline=None)
@given(run_=eviction_runs())
def test_conservation_with_the_swap_cache(preset: str, kw: dict,
                                         run_: tuple[int, list[tuple]]) -> None:
    """Swap-ins through the swap cache with readahead: every slot is free, referenced by
    one swap entry, or held by a cached folio (both only while nothing maps it), every
    page is in one place, and exits leak nothing (`audit`)."""
    r = run(preset, 1 << 20, *run_, **kw)
    for _ in r.procs():
        r.op_exit(0)
    k = r.k
    audit(k, r.ledger)
    shm_slots = set(k.files["shm"].swap[k.files["shm"].swap != 0].tolist())
    assert k.swap.nr_used == len(shm_slots), "slots left after the exits are not shmem's"
    assert set(k.swap.cache.folio) <= shm_slots, "a cached slot outlived its task"


# -- the vectorised shrink path is the per-folio path ---------------------------------------
def canonical(k) -> dict:
    """Everything eviction decides, with pfn and swap-slot numbers abstracted away.

    Per virtual page of every task and per page-cache index: what is there (a folio
    with its flags, gen field, list and list position; a swap entry with its shadow;
    a shadow entry), plus lruvec generations and PID counters, memcg charges,
    /proc/vmstat and OOM events. Two runs that differ only in which pfn or slot a
    page got compare equal.
    """
    import numpy as np

    from mglru.mm.page import PTE_SWAP

    mem = k.mem
    shadows = k.swap.shadow

    def folios(pfns: np.ndarray) -> bytes:
        return b"".join(a[pfns].tobytes() for a in (mem.flags, mem.gen, mem.lru, mem.memcg))

    out: dict = {}
    for pid, p in sorted(k.procs.items()):
        for vma in p.mm.vmas:
            idx = vma.pte_index(np.arange(vma.start >> 12, vma.end >> 12, dtype=np.int64))
            f = p.mm.pt.flat_flags()[idx]
            v = p.mm.pt.flat_pfn()[idx].astype(np.int64)
            swap = (f & PTE_SWAP) != 0
            page = ((f & 1) != 0) & (v >= 1024)
            out[("vma", pid, vma.start)] = (f.tobytes(), shadows[v[swap]].tobytes(),
                                            folios(v[page]))
    for f in k.files.values():
        cached = f.pages >= 0
        out[("file", f.name)] = (cached.tobytes(), folios(f.pages[cached]),
                                 shadows[f.swap[f.swap != 0]].tobytes(), f.shadow.tobytes())
    for lv in k.iter_lruvecs():
        out[("lruvec", lv.memcg.id, lv.nid)] = (
            lv.max_seq, tuple(lv.min_seq), lv.nr_pages.tobytes(), lv.nr_listed.tobytes(),
            lv.evicted.tobytes(), lv.refaulted.tobytes(), lv.protected.tobytes(),
            lv.avg_total.tobytes(), lv.avg_refaulted.tobytes(), tuple(lv.timestamps))
        out[("charged", lv.memcg.id)] = lv.memcg.nr_charged
    out["vmstat"] = k.read("/proc/vmstat")
    out["oom"] = [(e["reason"], e["pid"]) for e in k.oom_events]
    out["swap"] = k.swap.nr_used
    return out


@pytest.mark.parametrize("preset", ("v6.10", "v6.16"))
@settings(max_examples=10, derandomize=True, deadline=None)
@given(run_=eviction_runs())
def test_batch_shrink_matches_per_folio_shrink(preset: str, run_: tuple[int, list[tuple]]) -> None:
    """The vectorised common case of shrink_folio_list (mm/_shrink_batch.py) decides
    exactly what the per-folio path decides: the same sequence run with it switched off
    reaches the same canonical state after every operation."""
    import numpy as np

    from mglru.lru_gen import _shrink_batch

    limit, ops = run_
    fast = Runner(preset, 1 << 20, limit)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(_shrink_batch, "shrink_anon_batch",
                  lambda k, lruvec, pfns, sc: np.zeros(len(pfns), bool))
        slow = Runner(preset, 1 << 20, limit)
    assert canonical(fast.k) == canonical(slow.k)
    for op in ops:
        fast.apply(op)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(_shrink_batch, "shrink_anon_batch",
                      lambda k, lruvec, pfns, sc: np.zeros(len(pfns), bool))
            slow.apply(op, check=False)
        assert canonical(fast.k) == canonical(slow.k), op
