"""/sys/kernel/mm/lru_gen/{enabled,min_ttl_ms} (spec §5.1, §5.2; §9 item 29; seed 2/7)."""

from __future__ import annotations

import errno

import pytest
from kernel_checks import (
    CGROOT,
    ENABLED,
    LRU_GEN,
    MIN_TTL,
    check_invariants,
    folio_seq,
    parse_lru_gen,
    pte_of,
)

from mglru import SimKernel

PAGE = 4096


def kernel(preset: str = "v6.10", **kw) -> SimKernel:
    kw.setdefault("node_bytes", (64 << 20,))
    return SimKernel(preset, debug=True, **kw)


def assert_einval(k: SimKernel, path: str, text: str) -> None:
    before = k.read(path)
    with pytest.raises(OSError) as e:
        k.write(path, text)
    assert e.value.errno == errno.EINVAL, text
    assert k.read(path) == before, text


# -- item 29 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset,caps", [("v6.10", 0x7), ("v6.14", 0x7), ("v6.16", 0x7),
                                          ("seed-v4", 0xF)])
def test_fc29_enabled_reads_and_writes(preset: str, caps: int) -> None:
    """§9.29: "`enabled` reads `0x%04x\\n` and honours n/y/numeric writes as in 5.1; invalid
    → EINVAL." Only the first character decides n/N/y/Y; numbers go through
    kstrtouint(base 0) (decimal, hex, octal, a leading '+', one trailing newline); bits
    at and above NR_LRU_GEN_CAPS (3 upstream, 4 with the seed's 0x8) are ignored.
    A write returns its length; a rejected one changes nothing."""
    k = kernel(preset)
    assert k.read(ENABLED) == f"0x{caps:04x}\n"
    for text, value in [("n", 0), ("y", -1), ("N\n", 0), ("Y\n", -1), ("no thanks", 0),
                        ("yes", -1), ("5", 5), ("0x3", 3), ("06", 6), ("7\n", 7), ("+2", 2),
                        ("0", 0), ("8", 8), ("010", 8), ("0XfF", 0xFF), ("4294967295", -1),
                        ("1", 1)]:
        assert k.write(ENABLED, text) == len(text)
        assert k.read(ENABLED) == f"0x{value & caps:04x}\n", text
    for text in ["abc", " 5", "5 ", "-1", "0x", "08", "5\n\n", "4294967296", "0x1ffffffff",
                 "1.0", "\n", "0b1"]:
        assert_einval(k, ENABLED, text)
    assert k.write(ENABLED, "") == 0 and k.read(ENABLED) == "0x0001\n"  # sysfs: no store call


@pytest.mark.parametrize("overrides,boot,all_on", [
    ({"hw_nonleaf_pmd_young": False}, 0x3, 0x3),
    ({"hw_pte_young": False}, 0x5, 0x5),
    ({"hw_pte_young": False, "hw_nonleaf_pmd_young": False}, 0x1, 0x1),
    ({"lru_gen_enabled": False}, 0x0, 0x7),
])
def test_fc29_enabled_shows_only_what_the_hardware_has(overrides: dict, boot: int,
                                                       all_on: int) -> None:
    """§5.1: "A hardware-unsupported component stays reported as 0": without non-leaf PMD
    accessed bits 0x4 never shows, without PTE accessed bits 0x2 never shows, whatever
    is written. CONFIG_LRU_GEN_ENABLED=n boots with every cap off."""
    k = kernel("v6.10", **overrides)
    assert k.read(ENABLED) == f"0x{boot:04x}\n"
    k.write(ENABLED, "y")
    assert k.read(ENABLED) == f"0x{all_on:04x}\n"
    k.write(ENABLED, "7")
    assert k.read(ENABLED) == f"0x{all_on:04x}\n"
    k.write(ENABLED, "6")
    assert k.read(ENABLED) == f"0x{all_on & 6:04x}\n"


@pytest.mark.parametrize("preset,kconfig,after_y", [
    ("seed-v4", True, 0xF), ("seed-v4", False, 0x7), ("v6.10", False, 0x7),
    ("v6.14", False, 0x7),
])
def test_fc29_enabled_seed_secondary_mmu_cap(preset: str, kconfig: bool, after_y: int) -> None:
    """Seed 2/7 documents `echo y` then `cat` giving 0x000f (0x0007 before the series);
    the 0x8 cap needs CONFIG_LRU_GEN_WALKS_SECONDARY_MMU (seed 1/7) and is a separate
    static key ("8" leaves only it on)."""
    k = kernel(preset, walks_secondary_mmu=kconfig)
    k.write(ENABLED, "n")
    k.write(ENABLED, "y")
    assert k.read(ENABLED) == f"0x{after_y:04x}\n"
    k.write(ENABLED, "8")
    assert k.read(ENABLED) == f"0x{after_y & 8:04x}\n"


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_enabled_core_bit_moves_folios(preset: str) -> None:
    """§5.1: clearing bit 0 drains every folio off the generations (setting PG_active for
    those in the two youngest, spec §2.5 removal); setting it refills them through
    lru_gen_add_folio. v6.14 (lru_gen_folio_seq()): formerly active folios go to
    max_seq - 1 (max_seq if workingset), inactive anon to max_seq - 1, inactive file
    to max_seq - 3 (max_seq - 2 if workingset). Before (include/linux/mm_inline.h,
    6.1-6.13): every formerly active folio goes to max_seq, inactive file to
    min_seq + 1 (min_seq with at most 3 generations). Pages are conserved."""
    k = kernel(preset)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    anon = p.mmap(4 * PAGE)
    p.access(anon, 4 * PAGE, write=True)
    cold = k.open_file("cold", 3 * PAGE)
    p.read(cold, 0, 3 * PAGE)  # seq 0 (v6.10: 1), moved up by aging to min_seq: inactive
    k.write(LRU_GEN, "+ 2 0 3")
    p.access(anon, 4 * PAGE)
    k.write(LRU_GEN, "+ 2 0 4")  # anon now in max_seq - 1 (PG_workingset on v6.14)
    lv = k.lruvec("/a")
    anon_pfn = pte_of(p, anon)[0]
    assert folio_seq(lv, k.mem.gen[anon_pfn], 0) == lv.max_seq - 1 == 4
    k.write(ENABLED, "6")  # the core off, the other caps on
    assert k.read(ENABLED) == "0x0006\n"
    assert all(g.anon == g.file == 0 for g in parse_lru_gen(k.read(LRU_GEN))[2].nodes[0].gens)
    assert (lv.max_seq, lv.min_seq) == (5, [2, 2])
    k.write(ENABLED, "7")
    # v6.14: workingset, so max_seq; before, every active folio enters max_seq
    assert folio_seq(lv, k.mem.gen[anon_pfn], 0) == lv.max_seq
    cold_seq = lv.max_seq - 3 if preset == "v6.14" else lv.min_seq[1] + 1
    for pfn in cold.pages:
        assert folio_seq(lv, k.mem.gen[pfn], 1) == cold_seq
    check_invariants(k)


# -- min_ttl_ms --------------------------------------------------------------------------
def test_min_ttl_ms_reads_and_writes() -> None:
    """§5.2: read `%u\\n` (ms from jiffies); write kstrtouint(base 0) ms, EINVAL on a parse
    error (state unchanged); 0 disables. An empty write returns 0 (sysfs does not call
    the store for zero bytes)."""
    k = kernel()
    assert k.read(MIN_TTL) == "0\n"
    for text, shown in [("1000", 1000), ("0x10", 16), ("010", 8), ("+5", 5), ("7\n", 7),
                        ("0", 0), ("4294967", 4294967)]:
        assert k.write(MIN_TTL, text) == len(text)
        assert k.read(MIN_TTL) == f"{shown}\n", text
    for text in ["abc", "-1", "4294967296", " 5", "5 ", "1e3", "\n"]:
        assert_einval(k, MIN_TTL, text)
    assert k.write(MIN_TTL, "") == 0 and k.read(MIN_TTL) == "4294967\n"


@pytest.mark.parametrize("hz,cases", [
    (1000, [("10", 10), ("1", 1), ("2147483647", 2147483647), ("2147483648", 4294967294),
            ("4294967295", 4294967294)]),
    (250, [("10", 12), ("4", 4), ("1", 4), ("0", 0), ("1001", 1004),
           ("2147483647", 2147483648), ("2147483648", 4294967288)]),
])
def test_min_ttl_ms_rounds_through_jiffies(hz: int, cases: list) -> None:
    """min_ttl_ms is stored in jiffies: msecs_to_jiffies() rounds up (HZ=250: 4 ms per
    jiffy) and treats values >= 2**31 as "infinite" (MAX_JIFFY_OFFSET); the read-back
    jiffies_to_msecs() returns an unsigned int, so MAX_JIFFY_OFFSET reads
    (1000/HZ * (2**62 - 2)) mod 2**32."""
    k = kernel(hz=hz)
    for text, shown in cases:
        k.write(MIN_TTL, text)
        assert k.read(MIN_TTL) == f"{shown}\n", text
