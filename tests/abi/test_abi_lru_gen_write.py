"""Writes to /sys/kernel/debug/lru_gen: grammar and `+` semantics (spec §5.4, §8.4).

Checklist items 31, 32 and 34, and a table of the kernel's sscanf-like parsing
("%c %u %u %lu %n%u %n%lu %n"; v6.16: "%4s" for swappiness) per version. Every
rejected write must leave the state exactly as it was (compared by snapshot).
"""

from __future__ import annotations

import errno

import pytest
from kernel_checks import CGROOT, LRU_GEN, age, mm_stats, pte_of, snapshot

from mglru import SimKernel
from mglru.lru_gen.aging import inc_max_seq, try_to_inc_min_seq
from mglru.lru_gen.mm_list import iterate_mm_list
from mglru.lru_gen.walk import MmWalk, walk_mm
from mglru.mm.page import PTE_YOUNG

PAGE = 4096
PRESETS = ("v6.10", "v6.14", "v6.16")
AGE, NOOP, EINVAL, ERANGE = "age", "noop", errno.EINVAL, errno.ERANGE


def kernel(preset: str, **kw) -> SimKernel:
    """/a (id 2) with a task that has 8 anon pages; one 64 MiB node; max_seq 3."""
    kw.setdefault("node_bytes", (64 << 20,))
    k = SimKernel(preset, debug=True, **kw)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(8 * PAGE)
    p.access(a, 8 * PAGE, write=True)
    return k


def expect_write(k: SimKernel, text: str, outcome, memcg_id: int = 2, nid: int = 0) -> None:
    """Write `text` and check the outcome: AGE, NOOP or an errno (state unchanged)."""
    lv = k.lruvec(memcg_id, nid)
    before = lv.max_seq
    snap = snapshot(k)
    if outcome in (AGE, NOOP):
        assert k.write(LRU_GEN, text) == len(text.encode()), text
        assert lv.max_seq == before + (outcome == AGE), text
        if outcome == NOOP:
            assert snapshot(k) == snap
    else:
        with pytest.raises(OSError) as e:
            k.write(LRU_GEN, text)
        assert e.value.errno == outcome, f"{text!r}: errno {e.value.errno}, expected {outcome}"
        assert snapshot(k) == snap, text


# (text, outcome on v6.10, v6.14, v6.16[, memcg id]) against max_seq 3 of /a, one node
GRAMMAR = [
    ("+ 2 0 3", AGE, AGE, AGE),
    ("+2 0 3", AGE, AGE, AGE),  # %c then " " matches no space
    ("+ 2 0 3 ", AGE, AGE, AGE),
    ("+\t2\t0\t3\t60\t1\t", AGE, AGE, AGE),
    ("  \t+ 2 0 3", AGE, AGE, AGE),  # leading white space is skipped
    ("+ 02 0 03", AGE, AGE, AGE),  # %u is decimal: leading zeros are fine
    ("+ 2 0 3 60 1\v", AGE, AGE, AGE),
    ("+ 2 0 3 60 1 ", AGE, AGE, AGE),
    ("+ 2 0 3 60 1 x", EINVAL, EINVAL, EINVAL),  # trailing garbage
    ("+ 2 0 3 60 1 2", EINVAL, EINVAL, EINVAL),  # a seventh field
    ("+ 2 0 3x", EINVAL, EINVAL, EINVAL),
    ("+ 2 0", EINVAL, EINVAL, EINVAL),  # fewer than 4 fields
    ("+", EINVAL, EINVAL, EINVAL),
    ("+ 0x2 0 3", EINVAL, EINVAL, EINVAL),  # %u reads "0", then "x2" is garbage
    ("+ +2 0 3", EINVAL, EINVAL, EINVAL),  # %u takes no sign
    ("+ 2 0 3 60 +1", EINVAL, EINVAL, EINVAL),
    ("+ 2 0 3 -1", EINVAL, EINVAL, EINVAL),
    # swappiness: %u before v6.16, a 4-char token through kstrtouint(base 0) after
    ("+ 2 0 3 4294967295", AGE, AGE, EINVAL),  # (int)-1 = default; v6.16 token "4294"
    ("+ 2 0 3 12345", EINVAL, EINVAL, EINVAL),  # 12345 > 200; v6.16: "1234", opt 5
    ("+ 2 0 3 01001", EINVAL, EINVAL, AGE),  # v6.16: "0100" = 64 (octal), opt 1
    ("+ 2 0 3 01001 1", EINVAL, EINVAL, EINVAL),  # v6.16: then " 1" is garbage
    ("+ 2 0 3 0100 1", AGE, AGE, AGE),  # 100 decimal, or 64 octal on v6.16
    ("+ 2 0 3 00000060", AGE, AGE, AGE),  # v6.16: "0000" = 0, opt 60
    ("+ 2 0 3 0x10 1", EINVAL, EINVAL, AGE),
    ("+ 2 0 3 +1", EINVAL, EINVAL, AGE),  # kstrtouint accepts a leading '+'
    ("+ 2 0 3 max", EINVAL, EINVAL, AGE),
    ("+ 2 0 3 maxx", EINVAL, EINVAL, EINVAL),
    ("+ 2 0 3 200", AGE, AGE, AGE),
    ("+ 2 0 3 201", EINVAL, EINVAL, AGE),  # SWAPPINESS_ANON_ONLY is v6.16
    ("+ 2 0 3 202", EINVAL, EINVAL, EINVAL),
    ("+ 2 0 3 1000", EINVAL, EINVAL, EINVAL),
    # opt (force_scan): all ones when omitted; wraps modulo 2**64
    ("+ 2 0 3 60 0", ERANGE, AGE, AGE),  # v6.10: no force_scan with 4 gens
    ("+ 2 0 3 60 18446744073709551616", ERANGE, AGE, AGE),
    ("+ 2 0 3 60 18446744073709551615", AGE, AGE, AGE),
    ("+ 2 0 3 60 x", EINVAL, EINVAL, EINVAL),
    # memcg id and node: %u truncates to 32 bits, run_cmd takes ints
    ("+ 4294967298 0 3", AGE, AGE, AGE),  # 2**32 + 2 -> 2
    ("+ 8589934594 0 3", AGE, AGE, AGE),  # 2**33 + 2 -> 2
    ("+ 2 8589934592 3", AGE, AGE, AGE),  # 2**33 -> node 0
    ("+ 2 0 3 8589934652", AGE, AGE, EINVAL),  # 2**33 + 60 -> 60; v6.16 token "8589"
    ("+ 65538 0 3", EINVAL, EINVAL, EINVAL),  # mem_cgroup_from_id(u16) finds 2, ids differ
    ("+ 0 0 3", EINVAL, EINVAL, EINVAL),
    ("+ 9 0 3", EINVAL, EINVAL, EINVAL),
    ("+ 2 4294967296 3", AGE, AGE, AGE),  # -> node 0
    ("+ 2 4294967295 3", EINVAL, EINVAL, EINVAL),  # node -1
    ("+ 2 1 3", EINVAL, EINVAL, EINVAL),  # no node 1
    ("+ 2 1024 3", EINVAL, EINVAL, EINVAL),  # MAX_NUMNODES
    ("+ 1 0 3", AGE, AGE, AGE, 1),  # the root memcg
    ("* 2 0 3", EINVAL, EINVAL, EINVAL),  # unknown command
    ("1 2 0 3", EINVAL, EINVAL, EINVAL),
    # seq (%lu, wrapping): < max_seq ages the current max_seq on v6.14+
    ("+ 2 0 2", NOOP, AGE, AGE),
    ("+ 2 0 4", EINVAL, EINVAL, EINVAL),
    ("+ 2 0 18446744073709551616", NOOP, AGE, AGE),  # -> seq 0
    ("+ 2 0 18446744073709551615", EINVAL, EINVAL, EINVAL),
]


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("case", GRAMMAR, ids=[repr(c[0]) for c in GRAMMAR])
def test_write_grammar(preset: str, case: tuple) -> None:
    """One command per write, parsed as the version's sscanf format and checked by
    run_cmd (spec §5.4): the write ages (returning its length), does nothing
    successfully, or fails with the errno and no state change.

    Ambiguity, chosen per spec §5.4: on v6.16 a command without the swappiness token
    uses the default swappiness. The spec says "omitted swappiness → default" for all
    versions; whether v6.16's `%4s` parsing really keeps that (its buffer goes to
    kstrtouint) is not confirmed by the sources at hand."""
    text, outcomes, memcg_id = case[0], case[1:4], (case[4] if len(case) > 4 else 2)
    k = kernel(preset)
    expect_write(k, text, outcomes[PRESETS.index(preset)], memcg_id)


# -- item 31 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc31_multi_command_writes(preset: str) -> None:
    """§9.31: "Multi-command writes split on `,;\\n`, skip blanks, stop at first error,
    return len on success." Also: a NUL ends the buffer (the kernel treats it as a C
    string), a write with no command (empty, separators only, NUL first) is EINVAL,
    and a failing command keeps the effects of the commands before it."""
    k = kernel(preset)
    lv = k.lruvec("/a")
    buf = "+ 2 0 3,+ 2 0 4;+ 2 0 5\n+ 2 0 6"
    assert k.write(LRU_GEN, buf) == len(buf) and lv.max_seq == 7
    buf = "\n\n ,, ;\t+ 2 0 7\n"
    assert k.write(LRU_GEN, buf) == len(buf) and lv.max_seq == 8
    # no command at all: lru_gen_seq_write() keeps its initial err = -EINVAL
    for buf in (",;\n \t", "", "\0+ 2 0 8"):
        with pytest.raises(OSError) as e:
            k.write(LRU_GEN, buf)
        assert e.value.errno == errno.EINVAL and lv.max_seq == 8
    buf = "+ 2 0 8\0+ 2 0 9"
    assert k.write(LRU_GEN, buf) == len(buf) and lv.max_seq == 9
    with pytest.raises(OSError) as e:
        k.write(LRU_GEN, "+ 2 0 9,+ 9 0 10,+ 2 0 10")
    assert e.value.errno == errno.EINVAL and lv.max_seq == 10  # first kept, third not run
    with pytest.raises(OSError) as e:
        k.write(LRU_GEN, "+ 2 0 10;+ 2 0 11 60 1 junk\n+ 2 0 11")
    assert e.value.errno == errno.EINVAL and lv.max_seq == 11
    snap = snapshot(k)
    with pytest.raises(OSError):
        k.write(LRU_GEN, "+ 2 0 99,+ 2 0 11")  # the first command fails: nothing runs
    assert snapshot(k) == snap


# -- item 32 -----------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_fc32_aging_command_return_codes(preset: str) -> None:
    """§9.32: "`+` with seq > max_seq → EINVAL; otherwise ages current max_seq and
    returns 0 or EEXIST." That is v6.14+; v6.10 (spec §8.4) returns 0 without aging for
    seq < max_seq, -ERANGE without force_scan when the type already has 4 generations,
    and never -EEXIST. EEXIST comes from try_to_inc_max_seq() losing to a concurrent
    walker that finished the mm list but has not yet incremented max_seq; the
    interleaving is replayed step by step through the aging functions."""
    upstream = preset == "v6.14"
    k = kernel(preset)
    lv = k.lruvec("/a")
    expect_write(k, "+ 2 0 4", EINVAL)
    expect_write(k, "+ 2 0 3", AGE)
    expect_write(k, "+ 2 0 1", AGE if upstream else NOOP)  # ages max_seq, not seq 1
    expect_write(k, f"+ 2 0 {lv.max_seq} 60 0", AGE if upstream else ERANGE)
    if not upstream:
        # with fewer than 4 generations v6.10 ages without force_scan too
        # the fault put the pages in max_seq (3, include/linux/mm_inline.h
        # lru_gen_add_folio() before v6.14): promote them twice, then sort their list
        k2 = kernel(preset)
        p = next(iter(k2.procs.values()))
        p.access(p.mm.vmas[0].start, 8 * PAGE)
        age(k2, 2)
        p.access(p.mm.vmas[0].start, 8 * PAGE)
        age(k2, 2)  # promoted to 4, still on list 3
        p.access(p.mm.vmas[0].start, 8 * PAGE)
        age(k2, 2)  # promoted to 5, still on list 3 (now the oldest)
        age(k2, 2)  # inc_min_seq sorts list 3 onto list 5: seq 4 is empty
        lv2 = k2.lruvec("/a")
        assert try_to_inc_min_seq(k2, lv2, 60) and lv2.max_seq - lv2.min_seq[0] + 1 < 4
        expect_write(k2, f"+ 2 0 {lv2.max_seq} 60 0", AGE)

    # another walker finishes the mm list (mm_state.seq == max_seq) and is preempted
    # before inc_max_seq(); the debugfs command comes in between
    seq = lv.max_seq
    walker = MmWalk(lv, seq, 60, True)
    last, mm = iterate_mm_list(walker, None)
    assert mm is not None and not last
    walk_mm(k, mm, walker)
    last, mm = iterate_mm_list(walker, mm)
    assert last and mm is None and lv.mm_state.seq == seq
    expect_write(k, f"+ 2 0 {seq}", errno.EEXIST if upstream else NOOP)
    assert inc_max_seq(k, lv, seq, 60) and lv.max_seq == seq + 1  # the walker resumes


# -- item 34 (aging side) ----------------------------------------------------------------
@pytest.mark.parametrize("preset", PRESETS)
def test_fc34_swappiness_token_for_aging(preset: str) -> None:
    """§9.34: "swappiness token: omitted → default; `max` → anon-only (v6.16+); > 201 →
    EINVAL." Checked on `+` (eviction's use is the eviction tests' business): the
    default is the memcg's swappiness with swap, 0 without swap (spec §4.1), which
    decides whether the walk visits anon VMAs; `max` (201) skips file VMAs and is
    rejected before v6.16, as are 201 and 202."""
    v616 = preset == "v6.16"
    for swap_pages, anon_walked in ((1 << 20, True), (0, False)):
        k = kernel(preset, swap_pages=swap_pages)
        p = next(iter(k.procs.values()))
        fm = p.mmap(4 * PAGE, file=k.open_file("f", 4 * PAGE))
        p.access(fm, 4 * PAGE)
        expect_write(k, "+ 2 0 3", AGE)
        anon_young = pte_of(p, p.mm.vmas[0].start)[1] & PTE_YOUNG
        assert bool(anon_young) is not anon_walked
        assert not pte_of(p, fm)[1] & PTE_YOUNG
        assert mm_stats(k, 2)["T"] == 4 + (8 if anon_walked else 0)
    k = kernel(preset)
    p = next(iter(k.procs.values()))
    fm = p.mmap(4 * PAGE, file=k.open_file("f", 4 * PAGE))
    p.access(fm, 4 * PAGE)
    expect_write(k, "+ 2 0 3 max", AGE if v616 else EINVAL)
    expect_write(k, f"+ 2 0 {k.lruvec('/a').max_seq} 201", AGE if v616 else EINVAL)
    expect_write(k, f"+ 2 0 {k.lruvec('/a').max_seq} 202", EINVAL)
    if v616:
        assert pte_of(p, fm)[1] & PTE_YOUNG  # file VMAs skipped
        assert not pte_of(p, p.mm.vmas[0].start)[1] & PTE_YOUNG
