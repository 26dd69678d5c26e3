"""Typed lru_gen stats: memcg -> node -> generation (-> tiers, mm_stats).

Kernel: mm/vmscan.c: lru_gen_seq_show().

The structures mirror the file, not the kernel's internals: a generation is
identified by the `seq` the file prints (the selftest calls it "gen"), pages
are per type as printed. `lru_gen_full`'s extra lines are kept with their mark
characters so that `format_lru_gen` reproduces the file byte for byte.

Sums follow lru_gen_util (tools/testing/selftests/cgroup/lib/lru_gen_util.c, v6.16):
`MemcgStats.nr_pages(seq)` adds anon and
file pages of that seq over all nodes; `nr_pages()` adds every generation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["MarkedCount", "TierStats", "MmStats", "GenerationStats", "NodeStats",
           "MemcgStats", "LruGenStats", "MemcgNotFound"]


class MemcgNotFound(LookupError):
    """No memcg of that name, path or id in the stats."""


@dataclass(frozen=True, slots=True)
class MarkedCount:
    """One `" %10lu%c"` field: a count and its mark character (e.g. `512T`, `0x`)."""

    value: int
    mark: str


@dataclass(frozen=True, slots=True)
class TierStats:
    """A tier line of lru_gen_full: three marked counts per type.

    Marks are `R T x` (averages, on max_seq), `r e p` (refaulted, evicted,
    protected) or `x x x` (no data). mm/vmscan.c: lru_gen_seq_show().
    """

    tier: int
    anon: tuple[MarkedCount, MarkedCount, MarkedCount]
    file: tuple[MarkedCount, MarkedCount, MarkedCount]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"tier": self.tier,
                "anon": [[c.value, c.mark] for c in self.anon],
                "file": [[c.value, c.mark] for c in self.file]}


@dataclass(frozen=True, slots=True)
class MmStats:
    """The mm_stats line of lru_gen_full: 4 counts `TYFA` (v6.12+) or 6 `TOYDFA` (before).

    Upper-case letters carry values on max_seq, lower-case on older seqs with
    NR_HIST_GENS > 1, `x` means no data. mm/vmscan.c: lru_gen_seq_show().
    """

    counts: tuple[MarkedCount, ...]

    def to_dict(self) -> list[list[Any]]:
        """JSON-ready form."""
        return [[c.value, c.mark] for c in self.counts]


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """A generation line: `seq age_ms nr_anon nr_file`.

    `anon_mark`/`file_mark` are " " in lru_gen and "x" in lru_gen_full when
    seq < min_seq[type]; `tiers`/`mm_stats` are set only for lru_gen_full.
    """

    seq: int
    age_ms: int
    nr_anon: int
    nr_file: int
    anon_mark: str = " "
    file_mark: str = " "
    tiers: tuple[TierStats, ...] = ()
    mm_stats: MmStats | None = None

    @property
    def nr_pages(self) -> int:
        """Anon plus file pages."""
        return self.nr_anon + self.nr_file

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (tiers and mm_stats only when present)."""
        out: dict[str, Any] = {"seq": self.seq, "age_ms": self.age_ms,
                               "nr_anon": self.nr_anon, "nr_file": self.nr_file}
        if self.anon_mark != " " or self.file_mark != " ":
            out["marks"] = self.anon_mark + self.file_mark
        if self.tiers:
            out["tiers"] = [t.to_dict() for t in self.tiers]
        if self.mm_stats is not None:
            out["mm_stats"] = self.mm_stats.to_dict()
        return out


@dataclass(frozen=True, slots=True)
class NodeStats:
    """The generations of one memcg on one node, oldest first."""

    nid: int
    gens: tuple[GenerationStats, ...] = ()

    @property
    def min_seq(self) -> int | None:
        """The oldest seq listed (None if none)."""
        return self.gens[0].seq if self.gens else None

    @property
    def max_seq(self) -> int | None:
        """The youngest seq listed (None if none)."""
        return self.gens[-1].seq if self.gens else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"node": self.nid, "generations": [g.to_dict() for g in self.gens]}


@dataclass(frozen=True, slots=True)
class MemcgStats:
    """One memcg: id, path (relative to the cgroup root, "/" for the root) and nodes."""

    memcg_id: int
    path: str
    nodes: tuple[NodeStats, ...] = ()

    def seqs(self) -> list[int]:
        """Every seq listed on any node, ascending."""
        return sorted({g.seq for n in self.nodes for g in n.gens})

    def nr_pages(self, seq: int | None = None) -> int:
        """Pages (anon + file) of generation `seq` summed over nodes; all gens if None.

        lru_gen_util.c (v6.16): `lru_gen_sum_memcg_stats_for_gen`.
        """
        return sum(g.nr_pages for n in self.nodes for g in n.gens if seq is None or g.seq == seq)

    def pages_by_seq(self) -> dict[int, int]:
        """{seq: pages summed over nodes} for every listed seq."""
        return {s: self.nr_pages(s) for s in self.seqs()}

    def node(self, nid: int) -> NodeStats:
        """The stats of node `nid`.

        Raises:
            KeyError: the memcg has no such node.
        """
        for n in self.nodes:
            if n.nid == nid:
                return n
        raise KeyError(f"memcg {self.memcg_id} ({self.path}) has no node {nid}; "
                       f"nodes: {[n.nid for n in self.nodes]}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with per-seq sums and the total."""
        return {"id": self.memcg_id, "path": self.path,
                "nodes": [n.to_dict() for n in self.nodes],
                "pages_by_seq": {str(s): v for s, v in self.pages_by_seq().items()},
                "nr_pages": self.nr_pages()}


@dataclass(frozen=True, slots=True)
class LruGenStats:
    """A whole lru_gen (or lru_gen_full) file: every memcg in file order."""

    memcgs: tuple[MemcgStats, ...] = ()
    full: bool = field(default=False)

    def find(self, memcg: str | int) -> MemcgStats:
        """Look a memcg up by id (int), path ("/a/b") or lru_gen_util name ("a/b").

        A name without a leading slash matches as lru_gen_util does: the path
        with its first character removed equals the name (as lru_gen_util.c does). Entries
        with id 0 (memcg disabled or removed) never match a name or path.

        Raises:
            MemcgNotFound: no such memcg.
        """
        for m in self.memcgs:
            if isinstance(memcg, int):
                if m.memcg_id == memcg:
                    return m
            elif m.memcg_id and (m.path == memcg if memcg.startswith("/") else
                                 m.path[1:] == memcg):
                return m
        known = ", ".join(f"{m.memcg_id} {m.path}" for m in self.memcgs) or "none"
        what = f"id {memcg}" if isinstance(memcg, int) else repr(memcg)
        raise MemcgNotFound(f"no memcg {what} in lru_gen (memcgs listed: {known}); did the "
                            "memcg get created in the memory cgroup hierarchy?")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"full": self.full, "memcgs": [m.to_dict() for m in self.memcgs]}
