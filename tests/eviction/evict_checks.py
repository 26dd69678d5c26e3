"""Helpers for the eviction tests: driving reclaim like a user, reading counters, auditing memory.

Everything that judges the model is computed here from raw state, never from the
model's own counters or formatting:

* `tier_rows` reads refaulted/evicted/protected and the PID averages out of
  `lru_gen_full` text with the independent parser of `kernel_checks`.
* `audit` rebuilds, from the per-pfn arrays, the allocator's free lists, every
  live page table, every page cache and the swap device, where each page is:
  free, resident (on an MGLRU list, or unevictable), swapped (a swap entry in a
  PTE or a shmem page cache slot) or dropped (a shadow entry in a page cache).
  It asserts that no page or swap slot is in two places, that nothing is
  leaked, and that lruvec counters and `lru_gen` match the per-pfn truth.
* `Ledger` is the test's own record of which logical pages a user created
  (written anonymous pages, file pages read or faulted) and freed (exit); the
  audit checks the model's state against it, so conservation is
  "resident + swapped + dropped == ever faulted - freed".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
from kernel_checks import LRU_GEN, LRU_GEN_FULL, parse_lru_gen

from mglru import SimKernel
from mglru.mm.page import (
    PMD_HUGE_ZERO,
    PMD_LEAF,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_SWAP,
    PG_anon,
    PG_head,
    PG_swapbacked,
    PG_swapcache,
    PG_tail,
    PG_unevictable,
)

PAGE = 4096
MiB = 1 << 20
CGROOT = "/sys/fs/cgroup"
#: presets whose eviction semantics differ (spec §8.4): v6.10 and the upstream rework
PRESETS = ("v6.10", "v6.14", "v6.16")
UPSTREAM = ("v6.14", "v6.16")

_LIST_SHIFT = 29  # PhysMem.lru: bits 29..31 hold the list generation + 1


def new_kernel(preset: str, mib: int = 128, swap_pages: int = 1 << 20, **kw) -> SimKernel:
    """A one-node kernel small enough for fast tests, with debug warnings raising."""
    return SimKernel(preset, node_bytes=(mib * MiB,), swap_pages=swap_pages, debug=True, **kw)


def child(k: SimKernel, name: str = "a"):
    """mkdir a memcg below the root; returns it."""
    k.mkdir(f"{CGROOT}/{name}")
    return k.memcg(f"/{name}")


def vmstat(k: SimKernel) -> dict[str, int]:
    """/proc/vmstat as a dict (missing counters read as 0)."""
    out: dict[str, int] = {}
    for line in k.read("/proc/vmstat").splitlines():
        name, value = line.split()
        out[name] = int(value)
    return out


def stat(k: SimKernel, name: str) -> int:
    """One /proc/vmstat counter."""
    return vmstat(k).get(name, 0)


# -- debugfs ----------------------------------------------------------------------------
def block(k: SimKernel, memcg_id: int, nid: int = 0, full: bool = False):
    """The parsed lru_gen (or lru_gen_full) block of one lruvec."""
    text = k.read(LRU_GEN_FULL if full else LRU_GEN)
    return parse_lru_gen(text, full=full)[memcg_id].nodes[nid]


def pages_by_seq(k: SimKernel, memcg_id: int, nid: int = 0) -> dict[int, tuple[int, int]]:
    """{seq: (anon, file)} as `lru_gen` prints them."""
    return {g.seq: (g.anon, g.file) for g in block(k, memcg_id, nid).gens}


def min_max_seq(k: SimKernel, memcg_id: int, nid: int = 0) -> tuple[list[int], int]:
    """([min_seq anon, min_seq file], max_seq) read from lru_gen_full's `x` marks."""
    gens = block(k, memcg_id, nid, full=True).gens
    mins = []
    for t in (0, 1):
        live = [g.seq for g in gens if g.marks[t] != "x"]
        mins.append(min(live))
    return mins, gens[-1].seq


def age(k: SimKernel, memcg_id: int, swappiness: int | str | None = None, force: int = 1,
        nid: int = 0) -> int:
    """`+ memcg nid max_seq [swappiness force_scan]` for the max_seq lru_gen lists."""
    seq = block(k, memcg_id, nid).max_seq
    cmd = f"+ {memcg_id} {nid} {seq}"
    if swappiness is not None:
        cmd += f" {swappiness} {force}"
    return k.write(LRU_GEN, cmd + "\n")


def evict(k: SimKernel, memcg_id: int, seq: int, swappiness: int | str | None = None,
          nr_to_reclaim: int | None = None, nid: int = 0) -> int:
    """`- memcg nid seq [swappiness [nr_to_reclaim]]`."""
    cmd = f"- {memcg_id} {nid} {seq}"
    if swappiness is not None:
        cmd += f" {swappiness}"
        if nr_to_reclaim is not None:
            cmd += f" {nr_to_reclaim}"
    return k.write(LRU_GEN, cmd + "\n")


@dataclass
class TierRow:
    """One type's tier counters read from lru_gen_full."""

    refaulted: list[int]  # r at min_seq
    evicted: list[int]  # e at min_seq
    protected: list[int]  # p at min_seq (the p column of tier t: folios of tier t)
    avg_refaulted: list[int]  # R at max_seq
    avg_total: list[int]  # T at max_seq


def tier_rows(k: SimKernel, memcg_id: int, nid: int = 0) -> list[TierRow]:
    """[anon, file] counters of a lruvec, from the text of lru_gen_full.

    The `rep` columns are read from the generation line of min_seq[type] (the
    history slot the PID controller uses, NR_HIST_GENS = 1), the `RT` columns from
    the line of max_seq (spec §5.3).
    """
    nb = block(k, memcg_id, nid, full=True)
    out = []
    for t in (0, 1):
        min_seq = min(g.seq for g in nb.gens if g.marks[t] != "x")
        row_min = nb.by_seq(min_seq)
        row_max = nb.gens[-1]
        base = 3 * t
        cols = [[row_min.tiers[i][base + j] for i in range(4)] for j in range(3)]
        for j, mark in enumerate("rep"):
            assert all(m == mark for _, m in cols[j]), f"expected {mark!r} marks at seq {min_seq}"
        avg = [[row_max.tiers[i][base + j] for i in range(4)] for j in range(2)]
        assert all(m == "R" for _, m in avg[0]) and all(m == "T" for _, m in avg[1])
        out.append(TierRow([v for v, _ in cols[0]], [v for v, _ in cols[1]],
                           [v for v, _ in cols[2]], [v for v, _ in avg[0]],
                           [v for v, _ in avg[1]]))
    return out


# -- page-table views -------------------------------------------------------------------
def ptes(p, addr: int, npages: int) -> tuple[np.ndarray, np.ndarray]:
    """(pfn or swap slot, PTE bits) of `npages` pages from `addr` (one VMA, 4 KiB PTEs)."""
    vma = p.mm.find_vma(addr)
    assert vma is not None and addr + npages * PAGE <= vma.end
    idx = vma.pte_index(np.arange(addr >> 12, (addr >> 12) + npages, dtype=np.int64))
    return (p.mm.pt.flat_pfn()[idx].astype(np.int64), p.mm.pt.flat_flags()[idx].astype(np.int64))


def resident_mask(p, addr: int, npages: int) -> np.ndarray:
    """Which pages are mapped by a present PTE to a real page (not the zero page)."""
    _, f = ptes(p, addr, npages)
    return (f & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT


def swapped_mask(p, addr: int, npages: int) -> np.ndarray:
    """Which pages are swap entries."""
    _, f = ptes(p, addr, npages)
    return (f & PTE_SWAP) != 0


def list_gen(k: SimKernel, pfns) -> np.ndarray:
    """Which generation *list* each folio is on (-1: none). Spec §2.2 (lists lag gen fields)."""
    return (k.mem.lru[np.asarray(pfns, np.int64)] >> _LIST_SHIFT).astype(np.int64) - 1


def gen_field(k: SimKernel, pfns) -> np.ndarray:
    """The folios' gen field (gen index, -1 when off MGLRU)."""
    return k.mem.gen[np.asarray(pfns, np.int64)].astype(np.int64) - 1


# -- the ledger and the audit ------------------------------------------------------------
@dataclass
class Ledger:
    """What a user created and freed, recorded by the test, never read from the model.

    anon[pid]: virtual page numbers written (an anonymous page exists for each).
    thp[pid]: vpn ranges of THP VMAs, where a write may populate a whole 2 MiB block.
    files: (file name, page index) ever brought into a page cache.
    maybe_*: pages an operation that failed midway (OOM) may or may not have created.
    """

    anon: dict[int, set[int]] = field(default_factory=dict)
    thp: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    files: set[tuple[str, int]] = field(default_factory=set)
    maybe_anon: dict[int, set[int]] = field(default_factory=dict)
    maybe_files: set[tuple[str, int]] = field(default_factory=set)

    def failed(self, pid: int, name: str | None, first: int, npages: int) -> None:
        """An access or read that the OOM killer interrupted: any prefix may exist."""
        if name is None:
            self.maybe_anon.setdefault(pid, set()).update(range(first, first + npages))
        else:
            self.maybe_files.update((name, i) for i in range(first, first + npages))

    def write_anon(self, pid: int, addr: int, npages: int) -> None:
        """A write to an anonymous mapping."""
        self.anon.setdefault(pid, set()).update(range(addr >> 12, (addr >> 12) + npages))

    def thp_vma(self, pid: int, addr: int, npages: int) -> None:
        """A THP-enabled anonymous VMA."""
        self.thp.setdefault(pid, []).append((addr >> 12, (addr >> 12) + npages))

    def touch_file(self, name: str, first: int, npages: int) -> None:
        """A read(2) or a fault of file pages."""
        self.files.update((name, i) for i in range(first, first + npages))

    def exit(self, pid: int) -> None:
        """The task's mm is gone: its anonymous pages are freed."""
        self.anon.pop(pid, None)
        self.thp.pop(pid, None)
        self.maybe_anon.pop(pid, None)


@dataclass
class Census:
    """Where every page is, as found by `audit`."""

    resident: int  # pages on MGLRU lists
    unevictable: int  # resident pages off MGLRU (PG_unevictable)
    swapped: int  # swap slots in use (anon swap PTEs + shmem slots)
    dropped: int  # page-cache indices holding only a shadow entry
    free: int  # free pages


def _free_pfns(k: SimKernel) -> np.ndarray:
    parts = []
    for node in k.mem.nodes:
        parts.extend(node.free)
        parts.append(np.arange(node.fresh, node.end_pfn, dtype=np.int64))
        assert sum(len(c) for c in node.free) == node.nr_free_listed, \
            f"node {node.nid}: free-list count {node.nr_free_listed} != its chunks"
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, np.int64)


def audit(k: SimKernel, ledger: Ledger | None = None) -> Census:
    """Check that every page and swap slot is in exactly one place. See the module docstring.

    Raises:
        AssertionError: naming the first inconsistency found.
    """
    mem = k.mem
    n = mem.max_pfn
    reserved = np.zeros(n, bool)
    reserved[:1024] = True  # the zero page and the huge zero page
    free = _free_pfns(k)
    assert len(np.unique(free)) == len(free), "a pfn is on a free list twice"
    assert not reserved[free].any(), "a reserved pfn is on a free list"
    is_free = np.zeros(n, bool)
    is_free[free] = True
    assert not mem.flags[free].any() and not mem.gen[free].any() and not mem.lru[free].any() \
        and not mem.memcg[free].any(), "a free pfn still carries folio state"

    owner = np.zeros(n, np.int8)  # 1 anon mapping, 2 page cache, 3 swap cache only
    swap_refs: list[np.ndarray] = []
    live_anon: dict[int, set[int]] = {}
    # page tables of live tasks
    for pid, p in k.procs.items():
        pt = p.mm.pt
        rows = np.arange(pt.nr_rows)
        state = pt.pmd_state[: pt.nr_rows]
        vpn_base = (pt.pmd_addr[: pt.nr_rows] >> 12).astype(np.int64)
        vpns: list[np.ndarray] = []
        for row in rows[state == PMD_LEAF]:
            head = int(pt.pmd_pfn[row])
            pfns = np.arange(head, head + 512)
            assert not is_free[pfns].any(), f"pid {pid}: THP {head} mapped but free"
            assert (owner[pfns] == 0).all(), f"pid {pid}: THP {head} has a second owner"
            assert mem.flags[head] & PG_head and (mem.flags[pfns[1:]] & PG_tail).all()
            owner[pfns] = 1
            vpns.append(vpn_base[row] + np.arange(512))
        table = rows[(state != PMD_LEAF) & (state != PMD_HUGE_ZERO)]
        ff = pt.pte_flags[table].reshape(-1).astype(np.int64)
        fp = pt.pte_pfn[table].reshape(-1).astype(np.int64)
        vpn = (vpn_base[table][:, None] + np.arange(512)).reshape(-1)
        mapped = (ff & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT
        pfns = fp[mapped]
        assert not is_free[pfns].any(), f"pid {pid}: PTE maps free pfns {pfns[is_free[pfns]][:5]}"
        anon = (mem.flags[pfns] & PG_anon) != 0
        apfns = pfns[anon]
        assert len(np.unique(apfns)) == len(apfns), f"pid {pid}: an anon pfn mapped twice"
        assert (owner[apfns] == 0).all(), f"pid {pid}: anon pfn with a second owner"
        owner[apfns] = 1
        vpns.append(vpn[mapped][anon])
        swp = (ff & PTE_SWAP) != 0
        assert not (swp & mapped).any(), f"pid {pid}: a PTE both present and a swap entry"
        swap_refs.append(fp[swp])
        vpns.append(vpn[swp])
        live_anon[pid] = set(np.concatenate(vpns).tolist()) if vpns else set()
        # file PTEs must map the page cache at their index
        for vma in p.mm.vmas:
            if vma.file is None:
                continue
            v = np.arange(vma.start >> 12, vma.end >> 12, dtype=np.int64)
            idx = vma.pte_index(v)
            f = pt.flat_flags()[idx]
            present = (f & PTE_PRESENT) != 0
            pg = vma.pgoff + (v - (vma.start >> 12))
            cached = vma.file.pages[pg[present]]
            assert np.array_equal(cached, pt.flat_pfn()[idx][present].astype(np.int64)), \
                f"pid {pid}: a PTE of {vma.file.name} maps a pfn its page cache does not hold"
            assert not (f & PTE_SWAP).any(), f"pid {pid}: swap entry in a file VMA"
    # page caches
    dropped = 0
    shmem_slots: list[np.ndarray] = []
    cached_files: set[tuple[str, int]] = set()
    for f in k.files.values():
        idx = np.nonzero(f.pages >= 0)[0]
        pfns = f.pages[idx]
        assert not is_free[pfns].any(), f"{f.name}: page cache holds free pfns"
        assert (owner[pfns] == 0).all(), f"{f.name}: a cached pfn has a second owner"
        assert not (mem.flags[pfns] & PG_anon).any(), f"{f.name}: anon folio in a page cache"
        owner[pfns] = 2
        slot = getattr(f, "swap", None)
        swapped_idx = np.nonzero(slot)[0] if slot is not None else np.empty(0, np.int64)
        assert not (f.pages[swapped_idx] >= 0).any(), f"{f.name}: index both cached and swapped"
        if len(swapped_idx):
            shmem_slots.append(slot[swapped_idx].astype(np.int64))
        shadow_only = (f.pages < 0) & (f.shadow != 0)
        if slot is not None:
            shadow_only &= slot == 0
        dropped += int(shadow_only.sum())
        present = set(idx.tolist()) | set(np.nonzero(shadow_only)[0].tolist()) | set(
            swapped_idx.tolist())
        cached_files.update((f.name, int(i)) for i in present)
    # the swap cache: a folio per cached slot, either mapped (anon) or owned by the cache
    cache = k.swap.cache
    assert len(cache.folio) == len(cache.slot), "swap cache: slot and folio maps disagree"
    cache_slots = np.array(sorted(cache.folio), np.int64)
    for slot, pfn in cache.folio.items():
        assert cache.slot.get(pfn) == slot, f"swap cache: slot {slot} -> {pfn} not mirrored"
        assert not is_free[pfn], f"swap cache: slot {slot} holds free pfn {pfn}"
        assert mem.flags[pfn] & PG_swapcache, f"swap cache: pfn {pfn} lacks PG_swapcache"
        assert owner[pfn] != 2, f"swap cache: pfn {pfn} is also in a page cache"
        if owner[pfn] == 0:
            owner[pfn] = 3
    assert cache.readahead <= set(cache.slot), "PG_readahead on a folio outside the swap cache"
    # every allocated page belongs to exactly one owner; nothing leaks
    allocated = ~is_free & ~reserved
    for node in mem.nodes:
        allocated[node.fresh:node.end_pfn] = False
    leaked = np.nonzero(allocated & (owner == 0))[0]
    assert not len(leaked), f"pfns allocated but neither mapped nor cached: {leaked[:8]}"
    # folio state of owned pages
    heads = np.nonzero(allocated & ((mem.flags & PG_tail) == 0))[0]
    hf = mem.flags[heads]
    assert (mem.memcg[heads] != 0).all(), "an allocated folio is not charged"
    in_cache = (hf & PG_swapcache) != 0
    assert set(heads[in_cache].tolist()) == set(cache.slot), \
        "PG_swapcache and the swap cache differ"
    unev = (hf & PG_unevictable) != 0
    if k.caps.lru_gen_enabled():
        on = mem.gen[heads] != 0
        assert (on == ~unev).all(), "an evictable folio is off MGLRU (or an unevictable one on)"
        assert ((mem.lru[heads] >> _LIST_SHIFT) != 0).tolist() == on.tolist(), \
            "gen field and list membership disagree"
    nr = np.where(hf & PG_head, 512, 1)
    # per memcg charge
    charged: dict[int, int] = {}
    for mid in np.unique(mem.memcg[heads]):
        charged[int(mid)] = int(nr[mem.memcg[heads] == mid].sum())
    for memcg in k.memcgs.root.iter_preorder():
        # the page_counter is hierarchical: a memcg's usage includes its descendants'
        want = sum(charged.get(m.id, 0) for m in memcg.iter_preorder())
        assert memcg.nr_charged == want, \
            f"{memcg.path}: nr_charged {memcg.nr_charged} != {want} pages in its subtree"
    # swap slots
    refs = np.concatenate(swap_refs + shmem_slots) if swap_refs or shmem_slots else np.empty(0)
    refs = refs.astype(np.int64)
    assert len(np.unique(refs)) == len(refs), "a swap slot is referenced twice"
    sw = k.swap
    free_slots = np.array(sw._free, np.int64)
    assert len(np.unique(free_slots)) == len(free_slots), "a swap slot is free twice"
    assert not np.isin(refs, free_slots).any(), "a swap slot is both free and referenced"
    assert not np.isin(cache_slots, free_slots).any(), "a swap slot is both free and cached"
    # a slot is referenced by one swap entry, or held by the swap cache, or both when
    # its folio is mapped by nothing (read ahead, or reclaimed from a mapping)
    for slot in np.intersect1d(refs, cache_slots).tolist():
        assert owner[cache.folio[slot]] == 3, f"slot {slot}: referenced and its folio mapped"
    used = np.union1d(refs, cache_slots)
    assert sw.nr_used == len(used), f"swap: {sw.nr_used} slots used, {len(used)} in use"
    assert (used > 0).all() and (used < sw._next).all(), "a swap entry outside the device"
    uncached = np.setdiff1d(refs, cache_slots)
    assert (sw.shadow[uncached] != 0).all(), "a swapped-out slot has no shadow entry"
    assert (sw.shadow[cache_slots] == 0).all(), "a cached slot still has a shadow entry"
    for slot, pfn in cache.folio.items():
        assert owner[pfn] != 3 or slot in set(refs.tolist()), \
            f"slot {slot}: its folio is mapped by nothing and no swap entry refers to it"
    # lruvec counters and lru_gen against the per-pfn truth
    _check_lruvecs(k, heads)
    census = Census(resident=int(nr[~unev].sum()), unevictable=int(nr[unev].sum()),
                    swapped=len(uncached), dropped=dropped, free=len(free))
    if ledger is not None:
        _check_ledger(k, ledger, live_anon, cached_files)
    return census


def _check_lruvecs(k: SimKernel, heads: np.ndarray) -> None:
    mem = k.mem
    hf = mem.flags[heads]
    gens = mem.gen[heads].astype(np.int64) - 1
    lists = (mem.lru[heads] >> _LIST_SHIFT).astype(np.int64) - 1
    types = ((hf & PG_swapbacked) == 0).astype(np.int64)
    nr = np.where(hf & PG_head, 512, 1)
    nids = mem.pfns_to_nid(heads)
    mids = mem.memcg[heads].astype(np.int64)
    shown = {}
    if k.caps.lru_gen_enabled():
        for mid, b in parse_lru_gen(k.read(LRU_GEN)).items():
            for nid, nb in b.nodes.items():
                shown[(mid, nid)] = {g.seq: (g.anon, g.file) for g in nb.gens}
    for lv in k.iter_lruvecs():
        assert lv.seq_is_valid(), f"{lv}: a type has fewer than 2 or more than 4 generations"
        sel = (mids == lv.memcg.id) & (nids == lv.nid) & (gens >= 0)
        pages = np.zeros((4, 2), np.int64)
        np.add.at(pages, (gens[sel], types[sel]), nr[sel])
        listed = np.zeros((4, 2), np.int64)
        np.add.at(listed, (lists[sel], types[sel]), 1)
        assert np.array_equal(lv.nr_pages.sum(axis=2), pages), \
            f"{lv}: nr_pages {lv.nr_pages.sum(axis=2).tolist()} != per-pfn {pages.tolist()}"
        assert np.array_equal(lv.nr_listed.sum(axis=2), listed), \
            f"{lv}: nr_listed {lv.nr_listed.sum(axis=2).tolist()} != per-pfn {listed.tolist()}"
        # Lists are always live: a list is retired only empty, or (a type that cannot be
        # evicted, spec §3.11) kept as it is, to come back as the youngest. Gen fields
        # need not be: a folio the walk promoted but left on such a list keeps a gen
        # field whose seq try_to_inc_min_seq may retire (it checks lists only), as in
        # the kernel; lru_gen then does not show it until max_seq wraps to it.
        for t in (0, 1):
            live = {s % 4 for s in range(lv.min_seq[t], lv.max_seq + 1)}
            dead = [g for g in range(4) if g not in live and listed[g, t]]
            assert not dead, f"{lv}: type {t} has folios on retired lists {dead}"
        if shown:
            lines = shown[(lv.memcg.id, lv.nid)]
            for seq, (a, f) in lines.items():
                exp = pages[seq % 4]
                live = [lv.min_seq[t] <= seq <= lv.max_seq for t in (0, 1)]
                assert (a, f) == (int(exp[0]) if live[0] else a, int(exp[1]) if live[1] else f), \
                    f"{lv}: lru_gen seq {seq} shows {(a, f)}, per-pfn {exp.tolist()}"


def _check_ledger(k: SimKernel, ledger: Ledger, live_anon: dict[int, set[int]],
                  cached_files: set[tuple[str, int]]) -> None:
    for pid in set(ledger.anon) | set(live_anon):
        want = ledger.anon.get(pid, set())
        have = live_anon.get(pid, set())
        missing = want - have
        assert not missing, f"pid {pid}: written pages lost: {sorted(missing)[:5]}"
        extra = have - want
        thp = ledger.thp.get(pid, [])
        maybe = ledger.maybe_anon.get(pid, set())
        stray = [v for v in extra - maybe if not any(lo <= v < hi for lo, hi in thp)]
        assert not stray, f"pid {pid}: pages exist that were never written: {sorted(stray)[:5]}"
    lost = ledger.files - cached_files
    never = cached_files - ledger.files - ledger.maybe_files
    assert not lost and not never, (
        f"page caches: lost {sorted(lost)[:5]}, never read {sorted(never)[:5]}")


def parse_events(text: str) -> dict[str, int]:
    """memory.events as a dict."""
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+) (\d+)$", text, re.M)}


# -- recipes ---------------------------------------------------------------------------------
def file_in_three_gens(k: SimKernel, memcg) -> int:
    """Leave a fresh lruvec's file type with 3 empty generations; returns the oldest, 2.

    `-` with swappiness 0 retires file's empty seqs 0 and 1 (min_seq[file] 2), an
    aging adds seq 4. With three generations every version's read(2) enters the
    oldest one without any aging that would clear its refs: before v6.14
    lru_gen_add_folio() (include/linux/mm_inline.h) takes min_seq once min_seq +
    MIN_NR_GENS >= max_seq, v6.14's lru_gen_folio_seq() clamps max_seq - 3 to min_seq.
    """
    evict(k, memcg.id, 0, 0)
    age(k, memcg.id, 0)
    mins, max_seq = min_max_seq(k, memcg.id)
    assert (mins[1], max_seq) == (2, 4)
    return 2


def cold_anon(k: SimKernel, memcg, p, npages: int) -> int:
    """Write `npages` anonymous pages in a fresh lruvec, then age three times without access.

    Returns their address. The fault puts them in max_seq - 1 = 2 (v6.14+,
    lru_gen_folio_seq()) or max_seq = 3 (before: lru_gen_add_folio(), every faulted
    folio is active); the first force_scan aging finds them young (v6.10 promotes them
    to 3; v6.14+ only sets PG_referenced, §2.6); the third aging retires generation 2
    (§3.11), moving what is still on its list to 3. So they end up cold (PTE
    accessed bits clear, refs clear) in the oldest generation, seq 3, with max_seq 6
    and both min_seq 3.
    """
    addr = p.mmap(npages * PAGE)
    p.access(addr, npages * PAGE, write=True)
    for _ in range(3):
        age(k, memcg.id, 60)
    return addr
