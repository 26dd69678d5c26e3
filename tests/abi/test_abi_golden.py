"""lru_gen / lru_gen_full byte for byte against golden files (spec §5.3; §9 item 30).

The golden files in tests/golden/ were written from the printf shapes of spec
§5.3 with values derived by hand from the scenario (tests/golden/README.md
gives the derivation); they are not dumps of the model's output.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kernel_checks import CGROOT, LRU_GEN, LRU_GEN_FULL, parse_lru_gen

from mglru import SimKernel
from mglru.lru_gen.aging import try_to_inc_min_seq

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
PAGE = 4096


def basic(preset: str) -> SimKernel:
    """One node; /a: 64 anon pages faulted, 16 file pages read(2), aged once at 100 ms;
    read at 150 ms."""
    k = SimKernel(preset, node_bytes=(256 << 20,), debug=True)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    anon = p.mmap(64 * PAGE)
    p.access(anon, 64 * PAGE, write=True)
    f = k.open_file("data", 16 * PAGE)
    p.read(f, 0, 16 * PAGE)
    k.tick(100)
    assert k.write(LRU_GEN, "+ 2 0 3\n") == 8
    k.tick(50)
    return k


def multi(preset: str) -> SimKernel:
    """Two nodes, HZ=250, CONFIG_LRU_GEN_STATS; /a reads 3 file pages on node 0; /a/b on
    node 1 maps a THP, 8 anon pages and 4 zero-page PTEs, is aged at 1000 ms, then
    retires its empty old generations (try_to_inc_min_seq); read at 1150 ms."""
    k = SimKernel(preset, node_bytes=(64 << 20, 64 << 20), hz=250, lru_gen_stats=True,
                  debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/a/b")
    p0 = k.spawn(memcg="/a", node=0)
    p0.read(k.open_file("f", 3 * PAGE), 0, 3 * PAGE)
    p = k.spawn(memcg="/a/b", node=1)
    thp = p.mmap(4 << 20, thp=True)
    p.access(thp, 2 << 20, write=True)
    small = p.mmap(8 * PAGE)
    p.access(small, 8 * PAGE, write=True)
    z = p.mmap(4 * PAGE)
    p.access(z, 4 * PAGE)
    k.tick(1000)
    assert k.write(LRU_GEN, "+ 3 1 3") == 7
    try_to_inc_min_seq(k, k.lruvec(3, 1), 60)
    k.tick(150)
    return k


SCENARIOS = {"basic": basic, "multi": multi}


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("path", [LRU_GEN, LRU_GEN_FULL])
def test_fc30_output_matches_golden_bytes(preset: str, scenario: str, path: str) -> None:
    """§9.30: "`lru_gen` / `lru_gen_full` lines match the printf shapes byte-for-byte
    (field widths, trailing mark char, 12/22-space indents, letter sets)." The files
    cover: memcg and node lines, pre-order memcg iteration (nested path), both nodes,
    ages at HZ 1000 and 250, the lru_gen range starting at min(min_seq) and lru_gen_full
    always showing 4 seqs with `x` below min_seq, tier lines `rep`/`xxx`/`RTx`,
    avg_total after v6.14's protected count, and mm_stats as `TOYDFA`/`toydfa` (v6.10)
    or `TYFA`/`tyfa` (v6.14), upper case on max_seq with NR_HIST_GENS 1, lower case per
    seq with NR_HIST_GENS 4."""
    k = SCENARIOS[scenario](preset)
    name = f"{scenario}-{preset}.{path.rsplit('/', 1)[1]}"
    expected = (GOLDEN / name).read_bytes()
    got = k.read(path).encode()
    if got != expected:
        diff = [f"line {i + 1}:\n  got      {g!r}\n  expected {e!r}"
                for i, (g, e) in enumerate(zip(got.decode().splitlines(),
                                               expected.decode().splitlines(), strict=False))
                if g != e]
        pytest.fail(f"{name} differs ({len(got)} vs {len(expected)} bytes)\n" + "\n".join(diff[:5]))


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.lru_gen*")))
def test_golden_files_follow_the_printf_shapes(name: str) -> None:
    """Each golden file itself parses under the strict reader of spec §5.3 (a typo in a
    hand-written file would otherwise pass unnoticed only if the model had the same
    typo)."""
    text = (GOLDEN / name).read_text()
    full = name.endswith("_full")
    nr_stats = 6 if "v6.10" in name else 4
    parsed = parse_lru_gen(text, full=full, nr_stats=nr_stats if full else None)
    assert parsed
    for line in text.splitlines():
        if line.startswith(("memcg ", " node ")):
            continue
        if len(line) == 46:  # a generation line ends with its file mark
            assert line[-1] in (" x" if full else " ")
        else:  # tier and mm_stats lines end with a letter
            assert full and line[-1].isalpha() and len(line) in (22 + 12 * nr_stats, 94)
