"""lru_gen and lru_gen_full as Debian's 6.1 and 6.12 kernels printed them (captured in QEMU)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mglru.tools.lru_gen import MarkedCount, format_lru_gen, parse_lru_gen

GOLDEN = Path(__file__).parent.parent / "golden_host"
CAPTURED = sorted(p.name for p in GOLDEN.glob("*_debian-*-qemu.txt"))


def test_captures_present():
    """Both kernels, both files."""
    assert len(CAPTURED) == 4


@pytest.mark.parametrize("name", CAPTURED)
def test_real_output_roundtrips(name):
    """Every captured file parses and prints back byte for byte."""
    text = (GOLDEN / name).read_text()
    assert format_lru_gen(parse_lru_gen(text, source=name)) == text


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_real_eviction_left_the_reread_half(version):
    """8 MiB written, 4 MiB re-read between two agings, evicted up to seq 3: 1024 + a few
    pages remain, all in seq 4 (the generation the re-read pages were promoted to), and
    lru_gen lists only min_seq 4 and max_seq 5 (lru_gen_full also the older seqs, marked x)."""
    a = parse_lru_gen((GOLDEN / f"lru_gen_debian-{version}-qemu.txt").read_text()).find("/a")
    assert a.seqs() == [4, 5]
    by_seq = a.pages_by_seq()
    assert by_seq[5] == 0 and 1024 <= by_seq[4] <= 1024 + 64
    full = parse_lru_gen((GOLDEN / f"lru_gen_full_debian-{version}-qemu.txt").read_text())
    gens = full.find("/a").node(0).gens
    assert [g.seq for g in gens] == [2, 3, 4, 5]
    assert [(g.anon_mark, g.file_mark) for g in gens[:2]] == [("x", "x")] * 2


def test_v6_1_blank_marks_and_loynfa():
    """v6.1 leaves marks blank off min_seq/max_seq and names its mm_stats LOYNFA."""
    stats = parse_lru_gen((GOLDEN / "lru_gen_full_debian-6.1-qemu.txt").read_text())
    root = stats.find(1).node(0)
    newest, middle = root.gens[-1], root.gens[1]
    assert "".join(c.mark for c in newest.mm_stats.counts) == "LOYNFA"
    assert [c.mark for c in newest.tiers[0].anon] == ["R", "T", " "]
    assert middle.tiers[2].file == (MarkedCount(0, " "),) * 3
    assert len(middle.mm_stats.counts) == 6


@pytest.mark.parametrize("line", ["  0T 0Y 0 0A", "  0L 0O 0 0N 0F 0A", "  0 0 0 0"])
def test_blank_marks_only_in_v6_1_shape(line):
    """mm_stats marks are all blank (v6.1's 6 counts) or all letters; anything else fails."""
    from mglru.tools.lru_gen import LruGenParseError

    text = ("memcg     1 /\n node     0\n          5 1 0 0\n"
            "            0 0R 0T 0 0R 0T 0\n" + line + "\n")
    with pytest.raises(LruGenParseError):
        parse_lru_gen(text)
