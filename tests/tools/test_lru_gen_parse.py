"""The lru_gen parser: the simulated kernel's output, captured host output, malformed input."""

from __future__ import annotations

import pytest
from lru_gen_fixtures import GOLDEN, two_node_kernel

from mglru.tools.lru_gen import (
    LruGenParseError,
    MarkedCount,
    format_lru_gen,
    parse_lru_gen,
)

LRU_GEN = "/sys/kernel/debug/lru_gen"
LRU_GEN_FULL = "/sys/kernel/debug/lru_gen_full"


def _aged(config: str, **overrides):
    k = two_node_kernel(config, **overrides)
    for nid in (0, 1):
        k.write(LRU_GEN, f"+ 2 {nid} {k.lruvec('/a', nid).max_seq} 1 1\n")
    k.tick(40)
    p = k.spawn(memcg="/a/b", node=1)
    p.access(p.mmap(1 << 20), 1 << 20, write=True)
    return k


# -- the simulated kernel's own output ---------------------------------------------------
@pytest.mark.parametrize(("config", "overrides"), [
    ("v6.10", {}), ("seed-v4", {}), ("v6.12", {}), ("v6.14", {}),
    ("seed-v4", {"lru_gen_stats": True}),
])
def test_roundtrip_of_the_simulated_kernels_output(config, overrides):
    """parse then print gives the kernel's bytes back, for lru_gen and lru_gen_full."""
    k = _aged(config, **overrides)
    for path in (LRU_GEN, LRU_GEN_FULL):
        text = k.read(path)
        stats = parse_lru_gen(text, source=path)
        assert stats.full == (path == LRU_GEN_FULL)
        assert format_lru_gen(stats) == text


def test_parsed_values_match_the_model():
    """Ids, paths, seqs and page counts are the model's, not just well-formed."""
    k = _aged("seed-v4")
    stats = parse_lru_gen(k.read(LRU_GEN))
    assert [(m.memcg_id, m.path) for m in stats.memcgs] == [
        (k.memcg(p).id, p) for p in ("/", "/a", "/a/b")]
    for m in stats.memcgs:
        for n in m.nodes:
            lruvec = k.lruvec(m.path, n.nid)
            assert n.max_seq == lruvec.max_seq
            assert n.min_seq == min(lruvec.min_seq)
            for g in n.gens:
                assert (g.nr_anon, g.nr_file) == (lruvec.nr_pages_of_seq(g.seq, 0),
                                                  lruvec.nr_pages_of_seq(g.seq, 1))
    a, b = stats.find("/a"), stats.find("/a/b")
    assert a.nr_pages() == 256 + 512  # 1 MiB on node 0, 2 MiB on node 1
    assert b.nr_pages() == 128 + 256  # 512 KiB of file, 1 MiB written on node 1


def test_full_output_keeps_tiers_and_mm_stats():
    """lru_gen_full: 4 tiers per generation and the mm_stats line, with their marks."""
    k = _aged("seed-v4")  # 6 mm_stats, NR_HIST_GENS = 1
    full = parse_lru_gen(k.read(LRU_GEN_FULL)).find("/a")
    node0 = full.node(0)
    newest = node0.gens[-1]
    assert newest.seq == k.lruvec("/a", 0).max_seq
    assert [t.tier for t in newest.tiers] == [0, 1, 2, 3]
    assert [c.mark for c in newest.tiers[0].anon] == ["R", "T", "x"]
    assert "".join(c.mark for c in newest.mm_stats.counts) == "TOYDFA"
    assert all(c.mark == "x" for g in node0.gens[:-1] for c in g.mm_stats.counts)


# -- captured host output (tests/golden_host, printf shapes of spec §5.3) --------------------
@pytest.mark.parametrize("name", ["lru_gen_v6.8_2nodes.txt", "lru_gen_full_v6.12.txt",
                                  "lru_gen_full_v6.6_stats.txt", "lru_gen_nomemcg.txt"])
def test_captured_samples_roundtrip(name):
    """Every sample prints back byte for byte."""
    text = (GOLDEN / name).read_text()
    assert format_lru_gen(parse_lru_gen(text, source=name)) == text


def test_captured_two_nodes_several_memcgs():
    """Per-node seq ranges differ; paths keep their spaces; sums add nodes per seq."""
    stats = parse_lru_gen((GOLDEN / "lru_gen_v6.8_2nodes.txt").read_text())
    assert not stats.full
    assert [m.memcg_id for m in stats.memcgs] == [1, 7, 42, 51]
    root = stats.find(1)
    assert [(n.nid, n.min_seq, n.max_seq) for n in root.nodes] == [(0, 1203, 1206),
                                                                   (1, 1190, 1193)]
    assert root.nr_pages(1203) == 4104 + 92013  # only node 0 lists 1203
    system = stats.find("system.slice")
    assert system.nr_pages(88) == 10238 + 33012 + 0 + 0  # seq 88 on both nodes
    assert system.seqs() == [85, 86, 87, 88, 89, 90]
    app = stats.find("/user.slice/user-1000.slice/app with space.scope")
    assert app.memcg_id == 51 and app.nr_pages() == 4096 + 1024
    attp = stats.find("access_tracking_perf_test")
    assert attp.pages_by_seq() == {6: 12, 7: 262147, 8: 0}


def test_captured_full_v6_12():
    """TYFA mm_stats on max_seq with NR_HIST_GENS = 1; x marks below min_seq."""
    stats = parse_lru_gen((GOLDEN / "lru_gen_full_v6.12.txt").read_text())
    assert stats.full
    node = stats.find(42).node(0)
    first = node.gens[0]
    assert (first.seq, first.anon_mark, first.file_mark) == (6, "x", " ")
    assert first.tiers[1].file == (MarkedCount(33, "r"), MarkedCount(800, "e"),
                                   MarkedCount(40, "p"))
    assert node.gens[-1].mm_stats.counts == (MarkedCount(262656, "T"), MarkedCount(262144, "Y"),
                                             MarkedCount(513, "F"), MarkedCount(512, "A"))
    assert stats.find(42).nr_pages(7) == 262147


def test_captured_full_v6_6_six_stats():
    """The older 6-stat variant (toydfa) with NR_HIST_GENS = 4 and two nodes."""
    stats = parse_lru_gen((GOLDEN / "lru_gen_full_v6.6_stats.txt").read_text())
    m = stats.find("/machine.slice")
    assert [n.nid for n in m.nodes] == [0, 1]
    g = m.node(0).gens[1]
    assert [(c.value, c.mark) for c in g.mm_stats.counts] == [
        (2048, "t"), (2000, "o"), (48, "y"), (5, "d"), (4, "f"), (2, "a")]
    assert all(c.mark == "x" for c in m.node(0).gens[-1].mm_stats.counts)
    assert m.node(1).gens[0].anon_mark == "x"  # seq 11 < min_seq[anon] = 12


def test_memcg_disabled_has_id_0_and_no_path():
    """With memcg disabled the kernel prints id 0 and an empty path; names never match it."""
    stats = parse_lru_gen((GOLDEN / "lru_gen_nomemcg.txt").read_text())
    (m,) = stats.memcgs
    assert (m.memcg_id, m.path, m.seqs()) == (0, "", [17, 18, 19])
    assert stats.find(0) is m
    with pytest.raises(LookupError):
        stats.find("/")


def test_empty_input_has_no_memcgs():
    """An empty file parses to nothing (lookups then fail, not the parse)."""
    assert parse_lru_gen("").memcgs == ()
    assert parse_lru_gen("\n\n").memcgs == ()


# -- malformed input --------------------------------------------------------------------------
_HEAD = "memcg     1 /\n node     0\n"


@pytest.mark.parametrize(("text", "lineno", "expected"), [
    ("garbage\n", 1, "a memcg line"),
    (" node 0\n", 1, "a memcg line"),
    ("memcg x /\n", 1, "with a decimal id"),
    ("memcg 1 /\n          1 2 3 4\n", 2, "a node line"),
    ("memcg 1 /\n node\n", 2, "a node line 'node <id>'"),
    ("memcg 1 /\n node -1\n", 2, "a node line 'node <id>'"),
    (_HEAD + "          1          2          3\n", 3, "a generation line"),
    (_HEAD + "          1          2         3a          4 \n", 3, "a generation line"),
    (_HEAD + "          1         -2          3          4 \n", 3, "a generation line"),
    (_HEAD + "          1 2 3 4 5\n", 3, "a generation line"),
    (_HEAD + "          5 1 0 0\n          4 1 0 0\n", 4, "a seq above the previous one (5)"),
    (_HEAD + "          5 1 0 0\n          5 1 0 0\n", 4, "a seq above the previous one (5)"),
    (_HEAD + "            0 0R 0T 0x 0R 0T 0x\n", 3, "a generation line before this tier"),
    (_HEAD + "          5 1 0 0\n            1 0R 0T 0x 0R 0T 0x\n", 4, "tier 0"),
    (_HEAD + "          5 1 0 0\n            0 0R 0T 0x 0R 0T 0Q\n", 4, "a generation line"),
    (_HEAD + "          5 1 0 0\n  0T 0Y 0F 0A\n", 4, "tier lines of a generation"),
])
def test_malformed_input_names_the_line(text, lineno, expected):
    """Each bad line is reported with its number, its text and what was expected there."""
    with pytest.raises(LruGenParseError) as info:
        parse_lru_gen(text, source="sample")
    e = info.value
    bad = text.split("\n")[lineno - 1]
    assert (e.lineno, e.line) == (lineno, bad)
    assert str(e).startswith(f"sample line {lineno}: expected ")
    assert expected in str(e)
    assert str(e).endswith(f"got {bad!r}")


def test_truncated_real_output_fails_at_the_right_line():
    """A real file cut mid-line is rejected at that line, not silently shortened."""
    text = (GOLDEN / "lru_gen_v6.8_2nodes.txt").read_text()
    cut = text[: text.index("      20417")]  # line 4 ends after the anon count
    with pytest.raises(LruGenParseError, match="line 4: expected a generation line"):
        parse_lru_gen(cut)
