"""Test helpers: an independent reader of the lru_gen ABI, state snapshots and invariants.

Nothing here reuses the model's own formatting or parsing code: `parse_lru_gen`
re-reads the kernel's printf shapes (spec §5.3) on its own, and the invariant
checks recount pages from the per-pfn folio arrays instead of trusting the
lruvec counters. Checklist, golden, property and fuzz tests share these.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import numpy as np

from mglru import SimKernel
from mglru.lru_gen.aging import try_to_inc_max_seq
from mglru.mm.page import PMD_SHIFT, PG_head, PG_swapbacked, PG_tail, PG_unevictable

__all__ = [
    "LRU_GEN", "LRU_GEN_FULL", "ENABLED", "MIN_TTL", "CGROOT", "Gen", "NodeBlock",
    "MemcgBlock", "parse_lru_gen", "age", "age_direct", "pte_of", "pmd_of", "head_of",
    "folio_seq", "pages_by_seq", "recount", "check_invariants", "snapshot",
    "FakeSecondaryMmu", "eviction_available", "mm_stats",
]

LRU_GEN = "/sys/kernel/debug/lru_gen"
LRU_GEN_FULL = "/sys/kernel/debug/lru_gen_full"
ENABLED = "/sys/kernel/mm/lru_gen/enabled"
MIN_TTL = "/sys/kernel/mm/lru_gen/min_ttl_ms"
CGROOT = "/sys/fs/cgroup"


def eviction_available() -> bool:
    """Whether the debugfs `-` command is backed by an eviction model yet."""
    if hasattr(SimKernel, "run_eviction"):
        return True
    try:
        from mglru.lru_gen import eviction  # noqa: F401
    except ImportError:
        return False
    return hasattr(eviction, "run_eviction")


# -- an independent reader of /sys/kernel/debug/lru_gen{,_full} --------------------------
@dataclass
class Gen:
    """One generation line (plus, for lru_gen_full, its tier and mm_stats lines)."""

    seq: int
    age_ms: int
    anon: int
    file: int
    marks: str  # the two mark characters after anon and file
    #: lru_gen_full: 4 tier lines of 6 (value, mark) pairs
    tiers: list[list[tuple[int, str]]] = field(default_factory=list)
    #: lru_gen_full: the mm_stats line, (value, letter) pairs
    stats: list[tuple[int, str]] = field(default_factory=list)


@dataclass
class NodeBlock:
    """The generations of one lruvec."""

    nid: int
    gens: list[Gen]

    def seqs(self) -> list[int]:
        """The seqs printed, in order."""
        return [g.seq for g in self.gens]

    def by_seq(self, seq: int) -> Gen:
        """The line of one seq."""
        for g in self.gens:
            if g.seq == seq:
                return g
        raise KeyError(seq)

    @property
    def max_seq(self) -> int:
        """The last (youngest) seq printed."""
        return self.gens[-1].seq


@dataclass
class MemcgBlock:
    """One memcg's section."""

    id: int
    path: str
    nodes: dict[int, NodeBlock]


def _num(field_: str, what: str, line: str) -> int:
    """A right-aligned %10d/%10lu/%5hu field; the padding must be exact."""
    value = int(field_)
    if field_ != f"{value:>{len(field_)}}" or value < 0:
        raise AssertionError(f"bad {what} field {field_!r} in {line!r}")
    return value


def _pairs(rest: str, n: int, line: str) -> list[tuple[int, str]]:
    """n repetitions of `" %10lu%c"`."""
    if len(rest) != 12 * n:
        raise AssertionError(f"expected {n} ' %10lu%c' fields in {line!r}")
    out = []
    for i in range(n):
        chunk = rest[12 * i: 12 * i + 12]
        if chunk[0] != " ":
            raise AssertionError(f"missing separator in {line!r}")
        out.append((_num(chunk[1:11], "value", line), chunk[11]))
    return out


def parse_lru_gen(text: str, full: bool = False,
                  nr_stats: int | None = None) -> dict[int, MemcgBlock]:
    """Parse lru_gen (or lru_gen_full) strictly by the printf shapes of spec §5.3.

    Args:
        text: the file contents.
        full: parse the tier and mm_stats lines of lru_gen_full.
        nr_stats: expected mm_stats fields per line (4 or 6); None accepts both.

    Raises:
        AssertionError: any line deviating from the shapes.
    """
    if text and not text.endswith("\n"):
        raise AssertionError("output must end with a newline")
    out: dict[int, MemcgBlock] = {}
    memcg: MemcgBlock | None = None
    node: NodeBlock | None = None
    gen: Gen | None = None
    for line in text.splitlines():
        if line.startswith("memcg "):
            # "memcg %5hu %s"
            if len(line) < 12 or line[11] != " ":
                raise AssertionError(f"bad memcg line {line!r}")
            mid = _num(line[6:11], "memcg id", line)
            memcg = MemcgBlock(mid, line[12:], {})
            if mid in out:
                raise AssertionError(f"memcg {mid} printed twice")
            out[mid] = memcg
            node = gen = None
        elif line.startswith(" node "):
            # " node %5d"
            if len(line) != 11 or memcg is None:
                raise AssertionError(f"bad node line {line!r}")
            node = NodeBlock(_num(line[6:11], "node id", line), [])
            memcg.nodes[node.nid] = node
            gen = None
        elif len(line) == 46 and line[0] == " " and line[11] == " " and line[22] == " ":
            # " %10lu %10u" then " %10lu%c" twice
            if node is None:
                raise AssertionError(f"generation line outside a node: {line!r}")
            pairs = _pairs(line[22:], 2, line)
            gen = Gen(_num(line[1:11], "seq", line), _num(line[12:22], "age", line),
                      pairs[0][0], pairs[1][0], pairs[0][1] + pairs[1][1])
            if not full and gen.marks != "  ":
                raise AssertionError(f"lru_gen marks must be spaces: {line!r}")
            node.gens.append(gen)
        elif full and line.startswith(" " * 22) and (len(line) - 22) % 12 == 0:
            # 22 spaces then " %10lu%c" per mm stat
            n = (len(line) - 22) // 12
            if gen is None or len(gen.tiers) != 4 or gen.stats or n not in (4, 6):
                raise AssertionError(f"unexpected mm_stats line {line!r}")
            gen.stats = _pairs(line[22:], n, line)
        elif full and line.startswith(" " * 12) and len(line) == 22 + 72:
            # 12 spaces, "%10d" tier, then 6 x " %10lu%c"
            if gen is None or len(gen.tiers) >= 4:
                raise AssertionError(f"unexpected tier line {line!r}")
            tier = _num(line[12:22], "tier", line)
            if tier != len(gen.tiers):
                raise AssertionError(f"tier {tier} out of order in {line!r}")
            gen.tiers.append(_pairs(line[22:], 6, line))
        else:
            raise AssertionError(f"unrecognised line {line!r}")
    for m in out.values():
        for nb in m.nodes.values():
            for g in nb.gens:
                if full and len(g.tiers) != 4:
                    raise AssertionError(f"memcg {m.id} node {nb.nid} seq {g.seq}: tiers missing")
                if full and nr_stats is not None and len(g.stats) != nr_stats:
                    raise AssertionError(f"seq {g.seq}: expected {nr_stats} mm_stats fields")
            seqs = nb.seqs()
            if not seqs or seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                raise AssertionError(f"memcg {m.id} node {nb.nid}: seqs {seqs} not consecutive")
    return out


# -- driving the kernel like a user ------------------------------------------------------
def age(k: SimKernel, memcg_id: int, nid: int = 0, swappiness: int | str | None = None,
        force_scan: bool | None = True, seq: int | None = None) -> int:
    """One `+` command for the max seq lru_gen currently lists (as lru_gen_do_aging does).

    Returns the byte count the write returned; raises OSError like the write.
    """
    if seq is None:
        seq = parse_lru_gen(k.read(LRU_GEN))[memcg_id].nodes[nid].max_seq
    cmd = f"+ {memcg_id} {nid} {seq}"
    if swappiness is not None or force_scan is not None:
        cmd += f" {60 if swappiness is None else swappiness}"
    if force_scan is not None:
        cmd += f" {int(force_scan)}"
    return k.write(LRU_GEN, cmd + "\n")


def age_direct(k: SimKernel, lruvec, force_scan: bool, swappiness: int = 60) -> bool:
    """try_to_inc_max_seq() as reclaim calls it (spec §3.1), bypassing debugfs.

    Needed where debugfs cannot express a walk: v6.10 answers a `+` without
    force_scan with -ERANGE whenever a type has 4 generations (spec §8.4).
    """
    return try_to_inc_max_seq(k, lruvec, lruvec.max_seq, swappiness, force_scan)


def pte_of(p, addr: int) -> tuple[int, int]:
    """(pfn, PTE bits) of the 4 KiB page mapping `addr` in `p`."""
    vma = p.mm.find_vma(addr)
    assert vma is not None, f"{addr:#x} not mapped"
    idx = int(vma.pte_index(np.array([addr >> 12], np.int64))[0])
    return int(p.mm.pt.flat_pfn()[idx]), int(p.mm.pt.flat_flags()[idx])


def pmd_of(p, addr: int) -> tuple[int, int, int]:
    """(state, bits, pfn) of the PMD entry covering `addr` in `p`."""
    vma = p.mm.find_vma(addr)
    assert vma is not None, f"{addr:#x} not mapped"
    row = int(vma.rows[(addr >> PMD_SHIFT) - (vma.start >> PMD_SHIFT)])
    pt = p.mm.pt
    return int(pt.pmd_state[row]), int(pt.pmd_flags[row]), int(pt.pmd_pfn[row])


def head_of(k: SimKernel, pfn: int) -> int:
    """Head pfn of the folio containing `pfn`."""
    return pfn & ~511 if int(k.mem.flags[pfn]) & PG_tail else pfn


def folio_seq(lruvec, gen_field: int, type_: int) -> int:
    """The seq a folio's gen field denotes in a lruvec (the live seq with that index)."""
    assert gen_field > 0, "folio is not on an MGLRU list"
    for seq in range(lruvec.min_seq[type_], lruvec.max_seq + 1):
        if seq % 4 == gen_field - 1:
            return seq
    raise AssertionError(f"gen {gen_field - 1} is not live in {lruvec}")


def pages_by_seq(block: NodeBlock) -> dict[int, tuple[int, int]]:
    """{seq: (anon, file)} of one parsed lruvec."""
    return {g.seq: (g.anon, g.file) for g in block.gens}


# -- invariants --------------------------------------------------------------------------
def recount(k: SimKernel) -> dict[tuple[int, int], np.ndarray]:
    """Pages on MGLRU lists per (memcg id, nid), as [gen][type], from the per-pfn arrays."""
    mem = k.mem
    out: dict[tuple[int, int], np.ndarray] = {}
    for node in mem.nodes:
        lo, hi = node.start_pfn, node.end_pfn
        flags = mem.flags[lo:hi]
        gens = mem.gen[lo:hi].astype(np.int64)
        heads = np.nonzero((gens != 0) & ((flags & PG_tail) == 0))[0]
        if not len(heads):
            continue
        f = flags[heads]
        nr = np.where(f & PG_head, 512, 1)
        typ = (f & PG_swapbacked == 0).astype(np.int64)
        mids = mem.memcg[lo:hi][heads].astype(np.int64)
        g = gens[heads] - 1
        for mid in np.unique(mids):
            sel = mids == mid
            arr = np.zeros((4, 2), np.int64)
            np.add.at(arr, (g[sel], typ[sel]), nr[sel])
            out[(int(mid), node.nid)] = arr
    return out


def check_invariants(k: SimKernel) -> None:
    """Spec §2.2 and §9 items 5-6, checked against an independent recount.

    * 2 <= max_seq - min_seq[t] + 1 <= 4 for every lruvec and type;
    * no counter is negative (at rest no walker holds batched deltas);
    * every lruvec's nr_pages[gen][type] equals the pages whose gen field says
      so in the per-pfn arrays, and no file folio carries a gen that is not
      live. Anon folios may: inc_min_seq() (mm/vmscan.c, v6.12) advances
      min_seq[LRU_GEN_ANON] without moving its folios when swapping is
      constrained (swappiness 0), and inc_max_seq() says so: "max_seq+1 can
      overlap with min_seq[LRU_GEN_ANON] ... cold/hot inversion happens";
      lru_gen_seq_show() then does not show them until max_seq reaches
      their gen again;
    * with MGLRU enabled, every charged evictable page is on an MGLRU list
      (conservation: only eviction or removal takes pages off);
    * lru_gen shows exactly those pages (less the anon pages in dead gens),
      never a negative count.
    """
    counted = recount(k)
    lruvecs = {(lv.memcg.id, lv.nid): lv for lv in k.iter_lruvecs()}
    unknown = set(counted) - set(lruvecs)
    assert not unknown, f"pages charged to unknown lruvecs: {unknown}"
    total = hidden = 0
    for key, lv in lruvecs.items():
        for t in (0, 1):
            nr_gens = lv.max_seq - lv.min_seq[t] + 1
            assert 2 <= nr_gens <= 4, f"{lv}: type {t} has {nr_gens} generations"
        nr = lv.nr_pages.sum(axis=2)
        assert (nr >= 0).all(), f"{lv}: negative nr_pages {nr.tolist()}"
        exp = counted.get(key, np.zeros((4, 2), np.int64))
        assert np.array_equal(nr, exp), f"{lv}: nr_pages {nr.tolist()} != recount {exp.tolist()}"
        for t in (0, 1):
            live = {s % 4 for s in range(lv.min_seq[t], lv.max_seq + 1)}
            dead = [g for g in range(4) if g not in live and exp[g, t]]
            assert t == 0 or not dead, f"{lv}: type {t} pages in dead gens {dead}"
            if dead:
                # shown from min_seq[LRU_GEN_ANON] (min of both here) to max_seq
                shown_gens = {s % 4 for s in range(min(lv.min_seq), lv.max_seq + 1)}
                hidden += int(sum(exp[g, t] for g in dead if g not in shown_gens))
        total += int(exp.sum())
    mem = k.mem
    charged = mem.memcg != 0
    if k.caps.lru_gen_enabled():
        evictable_heads = charged & (mem.flags & PG_tail == 0) & (mem.flags & PG_unevictable == 0)
        nr = np.where(mem.flags[evictable_heads] & PG_head, 512, 1)
        assert int(nr.sum()) == total, f"{int(nr.sum())} evictable pages charged, {total} on lists"
    shown = 0
    for block in parse_lru_gen(k.read(LRU_GEN)).values():
        for nb in block.nodes.values():
            shown += sum(g.anon + g.file for g in nb.gens)
    assert shown == total - hidden, \
        f"lru_gen shows {shown} pages, the folio arrays hold {total} ({hidden} in dead anon gens)"


def snapshot(k: SimKernel) -> dict[str, object]:
    """Everything a debugfs write may change, in comparable form.

    lru_gen_full (seqs, ages, counts, PID and mm_stats), the per-pfn folio arrays,
    every mm's page tables and bitmap, and every lruvec's mm-list cursor and
    Bloom filters.
    """
    mem = k.mem
    h = hashlib.sha256()
    for name in ("flags", "gen", "memcg"):
        h.update(getattr(mem, name).tobytes())
    procs = {}
    for pid, p in sorted(k.procs.items()):
        pt = p.mm.pt
        n = pt.nr_rows
        ph = hashlib.sha256()
        for a in (pt.pmd_state[:n], pt.pmd_flags[:n], pt.pmd_pfn[:n], pt.pte_flags[:n],
                  pt.pte_pfn[:n]):
            ph.update(np.ascontiguousarray(a).tobytes())
        procs[pid] = (ph.hexdigest(), p.mm.lru_gen_bitmap, p.memcg.id)
    cursors = {}
    for lv in k.iter_lruvecs():
        st = lv.mm_state
        if st is None:
            continue
        fh = hashlib.sha256()
        for f in st.filters:
            fh.update(b"-" if f is None else f.tobytes())
        cursors[(lv.memcg.id, lv.nid)] = (
            st.seq, _cursor(st.head), _cursor(st.tail), fh.hexdigest(), st.stats.tobytes(),
            lv.max_seq, tuple(lv.min_seq), lv.nr_pages.tobytes(), tuple(lv.timestamps))
    return {"lru_gen_full": k.read(LRU_GEN_FULL), "pfns": h.hexdigest(), "procs": procs,
            "lruvecs": cursors}


def _cursor(pos: object) -> object:
    if pos is None:
        return None
    mm_id = getattr(pos, "id", None)
    return ("mm", mm_id) if mm_id is not None else repr(pos)


# -- a minimal secondary MMU -------------------------------------------------------------
SPTE_PRESENT = 1
SPTE_ACCESSED = 2


class FakeSecondaryMmu:
    """A notifier subscriber implementing only the aging walk's contract.

    Host virtual ranges [addr, addr + npages pages) map to consecutive gfns; the
    walk reads and clears SPTE accessed bits in `sptes` and reports the calls it
    made through `account_aging` (columns of `mglru.lru_gen._walk_kernel`:
    test/clear calls, calls that found a memslot, young answers, SPTEs visited
    and cleared). All SPTEs start present and old.
    """

    def __init__(self, ranges: list[tuple[int, int]], fast_only: bool = True) -> None:
        from mglru.lru_gen._walk_kernel import NR_SEC_STATS

        self.ranges = [(addr >> 12, npages) for addr, npages in ranges]
        self.sptes = np.full(sum(n for _, n in ranges), SPTE_PRESENT, np.uint8)
        self.fast_only = fast_only
        self.calls = np.zeros(NR_SEC_STATS, np.int64)

    def aging_segments(self):
        """(vpn0, vpn1, gfn0, sptes) runs the walk may consult."""
        out, gfn = [], 0
        for vpn0, n in self.ranges:
            out.append((vpn0, vpn0 + n, gfn, self.sptes))
            gfn += n
        return out

    def fast_only_capable(self) -> bool:
        """Whether a fast-only notifier could answer (v5 what-if)."""
        return self.fast_only

    def account_aging(self, row) -> None:
        """Notifier calls made by one walk of the mm."""
        self.calls += row

    def gfn(self, addr: int) -> int:
        """The gfn backing a host address."""
        gfn = 0
        for vpn0, n in self.ranges:
            if vpn0 <= addr >> 12 < vpn0 + n:
                return gfn + (addr >> 12) - vpn0
            gfn += n
        raise KeyError(hex(addr))

    def guest_access(self, addr: int, npages: int = 1) -> None:
        """The guest touches the pages backing [addr, addr + npages pages)."""
        for i in range(npages):
            self.sptes[self.gfn(addr + i * 4096)] |= SPTE_ACCESSED

    def young(self, addr: int) -> bool:
        """Whether the SPTE backing a host address is accessed."""
        return bool(self.sptes[self.gfn(addr)] & SPTE_ACCESSED)

    def stat(self, name: str) -> int:
        """One column of the call counts, by its _walk_kernel name (e.g. "SEC_CLEAR_CALLS")."""
        from mglru.lru_gen import _walk_kernel

        return int(self.calls[getattr(_walk_kernel, name)])


def mm_stats(k: SimKernel, memcg_id: int, nid: int = 0, seq: int | None = None) -> dict[str, int]:
    """mm_stats of a lruvec as lru_gen_full prints them, keyed by letter.

    With NR_HIST_GENS == 1 the (cumulative) values sit on the max_seq line in
    upper case; with NR_HIST_GENS > 1 pass the seq whose lower-case line to read.
    """
    block = parse_lru_gen(k.read(LRU_GEN_FULL), full=True)[memcg_id].nodes[nid]
    g = block.gens[-1] if seq is None else block.by_seq(seq)
    return {letter: value for value, letter in g.stats}
