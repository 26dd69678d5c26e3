"""Parser and printer of /sys/kernel/debug/lru_gen and lru_gen_full.

Kernel: mm/vmscan.c: lru_gen_seq_show(); v4 7/7.

The parser is lru_gen_util's state machine (searching -> in_memcg -> in_node)
made strict and complete:

- every memcg is kept, not just one (`LruGenStats.find` does the lookup);
- the memcg path is the rest of the line, so names with spaces survive, and a
  memcg line without a path (id 0: memcg disabled) is accepted;
- lru_gen_full's tier lines (`tier` + 6 marked counts) and mm_stats lines (4
  or 6 marked counts) are recognised by shape and attached to the generation
  above them; the `x` marks of its generation lines are kept; a blank mark
  (v6.1's lru_gen_seq_show_full() prints ' ' for counts that later kernels
  mark 'x') is kept as ' ';
- anything else is rejected with `LruGenParseError`, naming the line number,
  its text and what was expected there.

`format_lru_gen` prints stats back in the kernel's printf shapes, so parsing
the kernel's output and printing it again gives the same bytes.

Future optimizations:
1. a streaming parser (line iterator in, memcgs out) if hosts with tens of
   thousands of memcgs make whole-file parsing slow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mglru.tools.lru_gen.stats import (
    GenerationStats,
    LruGenStats,
    MarkedCount,
    MemcgStats,
    MmStats,
    NodeStats,
    TierStats,
)

__all__ = ["LruGenParseError", "parse_lru_gen", "format_lru_gen"]

_MEMCG = re.compile(r"memcg\s+(\d+)(?: (.*))?")
_NUM = re.compile(r"\d+")
_PAGES = re.compile(r"(\d+)(x?)")
#: a count's mark may be blank: v6.1 prints ' ' where later kernels print 'x'
_TIER_COUNT = re.compile(r"(\d+)([RTxrep]?)")
#: mm_stats letters: TOYDFA since v6.6 (TYFA since v6.12), LOYNFA in v6.1
_MM_COUNT = re.compile(r"(\d+)([TOYDFALNtoydfalnx]?)")
_GEN_SHAPE = "'seq age_ms nr_anon nr_file' (unsigned decimal numbers)"


class LruGenParseError(ValueError):
    """Malformed lru_gen input.

    Attributes:
        lineno: 1-based line number.
        line: the line's text (without the newline).
    """

    def __init__(self, source: str, lineno: int, line: str, expected: str) -> None:
        self.lineno = lineno
        self.line = line
        super().__init__(f"{source} line {lineno}: expected {expected}, got {line!r}")


@dataclass
class _Gen:
    stats: GenerationStats
    tiers: list[TierStats] = field(default_factory=list)
    mm_stats: MmStats | None = None

    def freeze(self) -> GenerationStats:
        s = self.stats
        return GenerationStats(s.seq, s.age_ms, s.nr_anon, s.nr_file, s.anon_mark, s.file_mark,
                               tuple(self.tiers), self.mm_stats)


@dataclass
class _Node:
    nid: int
    gens: list[_Gen] = field(default_factory=list)


@dataclass
class _Memcg:
    memcg_id: int
    path: str
    nodes: list[_Node] = field(default_factory=list)

    def freeze(self) -> MemcgStats:
        return MemcgStats(self.memcg_id, self.path,
                          tuple(NodeStats(n.nid, tuple(g.freeze() for g in n.gens))
                                for n in self.nodes))


def _marked(tokens: list[str], pattern: re.Pattern[str]) -> list[MarkedCount] | None:
    out = []
    for tok in tokens:
        m = pattern.fullmatch(tok)
        if m is None:
            return None
        out.append(MarkedCount(int(m.group(1)), m.group(2) or " "))
    return out


def _generation(tokens: list[str]) -> GenerationStats | None:
    if len(tokens) != 4 or not (_NUM.fullmatch(tokens[0]) and _NUM.fullmatch(tokens[1])):
        return None
    anon, file = _PAGES.fullmatch(tokens[2]), _PAGES.fullmatch(tokens[3])
    if anon is None or file is None:
        return None
    return GenerationStats(int(tokens[0]), int(tokens[1]), int(anon.group(1)), int(file.group(1)),
                           anon.group(2) or " ", file.group(2) or " ")


def _tier(tokens: list[str]) -> TierStats | None:
    if len(tokens) != 7 or not _NUM.fullmatch(tokens[0]):
        return None
    counts = _marked(tokens[1:], _TIER_COUNT)
    if counts is None:
        return None
    return TierStats(int(tokens[0]), tuple(counts[:3]), tuple(counts[3:]))  # type: ignore[arg-type]


def _mm_stats(tokens: list[str]) -> MmStats | None:
    if len(tokens) not in (4, 6):
        return None
    counts = _marked(tokens, _MM_COUNT)
    if counts is None:
        return None
    blank = [c.mark == " " for c in counts]
    # v6.1 (6 counts) leaves every mark blank or none; 4-count kernels mark every count
    if any(blank) and (len(counts) == 4 or not all(blank)):
        return None
    return MmStats(tuple(counts))


class _Parser:
    """The state machine; `memcg`/`node`/`gen` are the innermost open sections."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.memcgs: list[_Memcg] = []
        self.full = False
        self.lineno = 0
        self.line = ""

    def fail(self, expected: str) -> LruGenParseError:
        return LruGenParseError(self.source, self.lineno, self.line, expected)

    def feed(self, lineno: int, line: str) -> None:
        self.lineno, self.line = lineno, line
        tokens = line.split()
        if not tokens:
            return  # lru_gen_util skips empty lines in every state
        if tokens[0] == "memcg":
            self.memcg_line(line.strip(" \t\r"))
        elif not self.memcgs:
            raise self.fail("a memcg line 'memcg <id> <path>' first")
        elif tokens[0] == "node":
            self.node_line(tokens)
        elif not self.memcgs[-1].nodes:
            raise self.fail("a node line 'node <id>' after the memcg line")
        else:
            self.stats_line(tokens)

    def memcg_line(self, text: str) -> None:
        m = _MEMCG.fullmatch(text)
        if m is None:
            raise self.fail("a memcg line 'memcg <id> <path>' with a decimal id")
        self.memcgs.append(_Memcg(int(m.group(1)), m.group(2) or ""))

    def node_line(self, tokens: list[str]) -> None:
        if len(tokens) != 2 or not _NUM.fullmatch(tokens[1]):
            raise self.fail("a node line 'node <id>' with a decimal id")
        self.memcgs[-1].nodes.append(_Node(int(tokens[1])))

    def stats_line(self, tokens: list[str]) -> None:
        node = self.memcgs[-1].nodes[-1]
        gen = _generation(tokens)
        if gen is not None:
            if node.gens and gen.seq <= node.gens[-1].stats.seq:
                raise self.fail(f"a seq above the previous one ({node.gens[-1].stats.seq}) "
                                "on this node")
            node.gens.append(_Gen(gen))
            return
        tier = _tier(tokens)
        if tier is not None:
            self.tier_line(node, tier)
            return
        mm = _mm_stats(tokens)
        if mm is not None:
            self.mm_stats_line(node, mm)
            return
        raise self.fail(f"a generation line {_GEN_SHAPE}, or in lru_gen_full a tier line "
                        "('tier' + 6 counts marked R/T/x or r/e/p) or an mm_stats line "
                        "(4 or 6 counts marked with TOYDFA/LOYNFA/toydfa/x)")

    def tier_line(self, node: _Node, tier: TierStats) -> None:
        if not node.gens or node.gens[-1].mm_stats is not None:
            raise self.fail("a generation line before this tier line")
        gen = node.gens[-1]
        if tier.tier != len(gen.tiers):
            raise self.fail(f"tier {len(gen.tiers)} (tiers are listed 0, 1, ... in order)")
        gen.tiers.append(tier)
        self.full = True

    def mm_stats_line(self, node: _Node, mm: MmStats) -> None:
        if not node.gens or not node.gens[-1].tiers or node.gens[-1].mm_stats is not None:
            raise self.fail("tier lines of a generation before this mm_stats line")
        node.gens[-1].mm_stats = mm


def parse_lru_gen(text: str, source: str = "lru_gen") -> LruGenStats:
    """Parse the contents of lru_gen or lru_gen_full.

    Args:
        text: the file's contents.
        source: a name for error messages (e.g. the path read).

    Returns:
        Every memcg, node and generation; `full` is True if tier lines were seen.

    Raises:
        LruGenParseError: a line that fits nowhere; the message names its number
            and text and what was expected.
    """
    parser = _Parser(source)
    for lineno, line in enumerate(text.split("\n"), start=1):
        parser.feed(lineno, line)
    return LruGenStats(tuple(m.freeze() for m in parser.memcgs), parser.full)


def _marked_fields(counts: tuple[MarkedCount, ...]) -> str:
    return "".join(f" {c.value:10d}{c.mark}" for c in counts)


def format_lru_gen(stats: LruGenStats) -> str:
    """Print stats in the kernel's shapes (lru_gen_seq_show()); inverse of `parse_lru_gen`."""
    out: list[str] = []
    for memcg in stats.memcgs:
        out.append(f"memcg {memcg.memcg_id:5d} {memcg.path}\n")
        for node in memcg.nodes:
            out.append(f" node {node.nid:5d}\n")
            for g in node.gens:
                out.append(f" {g.seq:10d} {g.age_ms:10d} {g.nr_anon:10d}{g.anon_mark}"
                           f" {g.nr_file:10d}{g.file_mark}\n")
                for t in g.tiers:
                    out.append(f"{'':12s}{t.tier:10d}{_marked_fields(t.anon + t.file)}\n")
                if g.mm_stats is not None:
                    out.append(f"{'':22s}{_marked_fields(g.mm_stats.counts)}\n")
    return "".join(out)
