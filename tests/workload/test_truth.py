"""Host ground truth: the per-pfn view against an independent count, in both stores.

The compiled loop stamps PTE slots when no reclaim hook is installed and pfns
when one is (`workload.truth`). Whichever it did, and across a switch from
one to the other, the view must give every mapped page the time of the last
access to its virtual page (each mapping in these tests was made by an access
of the stream, so that is the page's own last access), and a reclaim hook must
see each page it is shown evicted with the last access to its virtual page.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from test_host_exact import ANON, FILE, THP, _setup, loop_shape

from mglru import SimKernel
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_LEAF, PTE_PRESENT, PTE_SPECIAL, PTRS_PER_PTE
from mglru.workload import Engine, host, host_stream
from mglru.workload.truth import HostTruth


def _stream(rng, bases, thp: bool, n: int):
    sizes = np.array([ANON, FILE, THP])
    region = rng.integers(0, 3 if thp else 2, n)
    offset = np.where(rng.random(n) < 0.5, rng.integers(0, 6, n), rng.integers(0, 1 << 20, n))
    vpns = (np.array(bases)[region] >> PAGE_SHIFT) + offset % sizes[region]
    # a read fault in a THP block maps the huge zero page and a later write a new THP
    # whose other pages were never accessed: writes there keep "one access mapped it"
    writes = (rng.random(n) < 0.6) | (region == 2)
    t = np.cumsum(rng.integers(0, 3_000_000, n))  # up to 3 ms apart, ties included
    return vpns - (bases[0] >> PAGE_SHIFT), writes, t


def _mapped(p) -> dict[int, int]:
    """vpn -> pfn of every page mapped now (PTEs and PMD leaves)."""
    out = {}
    for vma in p.mm.vmas:
        vpns = np.arange(vma.start >> PAGE_SHIFT, vma.end >> PAGE_SHIFT)
        idx = vma.pte_index(vpns)
        pt = p.mm.pt
        flags = pt.flat_flags()[idx]
        ok = (flags & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT
        out.update(zip(vpns[ok].tolist(), pt.flat_pfn()[idx[ok]].tolist(), strict=True))
        rows = idx // PTRS_PER_PTE
        leaf = pt.pmd_state[rows] == PMD_LEAF
        heads = pt.pmd_pfn[rows[leaf]].astype(np.int64)
        out.update(zip(vpns[leaf].tolist(), (heads + idx[leaf] % PTRS_PER_PTE).tolist(),
                       strict=True))
    return out


def _last_ms(vpns, t, base_vpn: int) -> dict[int, int]:
    """The independent count: per virtual page, its last access in ms since boot + 1."""
    return {int(v) + base_vpn: int(x) // 1_000_000 + 1 for v, x in zip(vpns, t, strict=True)}


@st.composite
def cases(draw):
    thp = draw(st.booleans())
    limit = None if thp else draw(st.sampled_from([None, 20, 36]))
    return (thp, limit, draw(st.integers(1, 200)), draw(st.integers(0, 2**31)),
            draw(st.sampled_from(["v6.10", "v6.14", "v6.1"])),
            draw(st.sampled_from(["slots", "pfns", "switch"])),
            # the hit loop's one-at-a-time run, block size and two-thread run length
            (draw(st.sampled_from([0, 1, host.PLAIN_SHORT])),
             draw(st.sampled_from([1, 3, host.PLAIN_BLOCK])),
             draw(st.sampled_from([0, 2, host.PLAIN_SPLIT]))))


@settings(max_examples=30, deadline=None)
@given(cases())
def test_view_is_the_last_access_of_each_mapped_page(case):
    thp, limit, n, seed, config, how, plain = case
    with loop_shape(*plain):
        _check_view(thp, limit, n, seed, config, how)


def _check_view(thp, limit, n, seed, config, how):
    k, p, bases = _setup(limit, thp, config)
    vpns, writes, t = _stream(np.random.default_rng(seed), bases, thp, n)
    eng = Engine(k)
    half = n // 2 if how == "switch" else n
    s = host_stream(p, bases[0], vpns, writes, t_ns=t)
    if how == "pfns":
        k.reclaim_hook = lambda *a: None
    eng.advance(s, half)
    if how == "switch":  # a hook from here on: the loop stamps pfns, slots are folded
        k.reclaim_hook = lambda *a: None
        eng.advance(s, n)
    expect = _last_ms(vpns, t, bases[0] >> PAGE_SHIFT)
    view = eng.last_access_ms
    got = {v: int(view[pfn]) for v, pfn in _mapped(p).items()}
    assert got == {v: expect.get(v, 0) for v in got}


@settings(max_examples=15, deadline=None)
@given(st.integers(100, 300), st.integers(0, 2**31), st.sampled_from(["v6.10", "v6.14"]),
       st.sampled_from([0, 2]))
def test_hook_sees_the_last_access_of_each_evicted_page(n, seed, config, when):
    """A reclaim hook installed at the start or halfway (after the loop stamped slots)
    sees each evicted anonymous page with the last access to its virtual page so far."""
    k, p, bases = _setup(20, False, config)
    rng = np.random.default_rng(seed)
    vpns, writes, t = _stream(rng, bases, False, n)
    vpns = rng.integers(0, ANON, n)  # anonymous pages only: each one's rmap hint is its slot
    s = host_stream(p, bases[0], vpns, writes, t_ns=t)
    eng = Engine(k)
    seen: list[tuple[int, int]] = []
    pt = p.mm.pt
    base_vpn = bases[0] >> PAGE_SHIFT

    def hook(k, heads, nr):
        view = eng.last_access_ms
        done = {int(v): int(x) // 1_000_000 + 1 for v, x in zip(vpns[: s.pos], t[: s.pos],
                                                                 strict=True)}
        for h in heads.tolist():
            slot = int(k.mem.rmap_hint[h])
            vpn = int(pt.pmd_addr[slot // PTRS_PER_PTE] >> PAGE_SHIFT) + slot % PTRS_PER_PTE
            seen.append((int(view[h]), done[vpn - base_vpn]))

    if when == 0:
        k.reclaim_hook = hook
    eng.advance(s, n // 2)
    k.reclaim_hook = hook
    eng.advance(s, n)
    assert seen  # 48 pages through 20: evictions
    assert [got for got, _ in seen] == [want for _, want in seen]


def test_fold_keeps_the_larger_stamp_of_a_page_mapped_twice():
    k = SimKernel("v6.14", seed=0, node_bytes=(64 << 20,))
    f = k.open_file("shared", 4 * PAGE_SIZE)
    p = k.spawn()
    a, b = p.mmap(4 * PAGE_SIZE, file=f, shared=True), p.mmap(4 * PAGE_SIZE, file=f, shared=True)
    eng = Engine(k)
    # through b first, faults then hits: b's slots come after a's, so the fold writes
    # b's older slot stamps last
    ms = [0, 1_000_000, 2_000_000, 3_000_000]
    eng.run([host_stream(p, b, [0, 1, 0, 1], False, t_ns=ms)])
    eng.run([host_stream(p, a, [0, 1, 0, 1], False, t_ns=[x + 1_000_000 for x in ms])])
    pfn = p.mm.pt.flat_pfn()[p.mm.find_vma(a).pte_index(np.arange(a >> 12, (a >> 12) + 2))]
    assert pfn.tolist() == p.mm.pt.flat_pfn()[
        p.mm.find_vma(b).pte_index(np.arange(b >> 12, (b >> 12) + 2))].tolist()
    assert b > a
    # the second run starts at the clock (3 ms): its last accesses at 6 and 7 ms, + 1
    assert eng.last_access_ms[pfn].tolist() == [7, 8]


def test_slot_store_grows_with_the_page_tables_and_keeps_its_stamps():
    k = SimKernel("v6.14", seed=0, node_bytes=(64 << 20,))
    p = k.spawn()
    a = p.mmap(4 * PAGE_SIZE)
    truth = HostTruth(k.mem.max_pfn)
    stamps, by_slot = truth.target(k, p.mm)
    assert by_slot and len(stamps) == p.mm.pt.pte_flags.size
    stamps[3] = 77
    for _ in range(64):  # enough 2 MiB slots for the tables to grow
        p.mmap(2 << 20)
    grown, _ = truth.target(k, p.mm)
    assert len(grown) == p.mm.pt.pte_flags.size > len(stamps)
    assert grown[3] == 77
    k.reclaim_hook = lambda *a: None
    assert truth.target(k, p.mm)[1] is False
    assert a  # the first mapping is still there


def test_exited_task_leaves_the_view():
    k = SimKernel("v6.14", seed=0, node_bytes=(64 << 20,))
    p = k.spawn()
    a = p.mmap(2 * PAGE_SIZE)
    eng = Engine(k)
    eng.run([host_stream(p, a, [0, 1], True, t_ns=[0, 4_000_000])])
    mm = p.mm
    k.exit_task(p)
    q = k.spawn()
    b = q.mmap(2 * PAGE_SIZE)
    eng.run([host_stream(q, b, [1], True, t_ns=[2_000_000])])  # 6 ms since boot
    assert id(mm) not in eng.host_truth.slots  # dropped when q came, before any read
    view = eng.last_access_ms
    pfn = q.mm.pt.flat_pfn()[q.mm.find_vma(b).pte_index(np.arange(b >> 12, (b >> 12) + 2))]
    assert view[pfn.astype(np.int64)].tolist() == [0, 7]


@pytest.mark.parametrize("hook", [False, True])
def test_start_up_stamps_written_into_the_view_count(hook):
    k = SimKernel("v6.14", seed=0, node_bytes=(64 << 20,))
    p = k.spawn()
    a = p.mmap(2 * PAGE_SIZE)
    p.access(a, 2 * PAGE_SIZE, write=True)
    eng = Engine(k)
    pfns = p.mm.pt.flat_pfn()[p.mm.find_vma(a).pte_index(np.arange(a >> 12, (a >> 12) + 2))]
    eng.last_access_ms[pfns.astype(np.int64)] = 5
    if hook:
        k.reclaim_hook = lambda *a: None
    eng.run([host_stream(p, a, [1], False, t_ns=[9_000_000])])
    assert eng.last_access_ms[pfns.astype(np.int64)].tolist() == [5, 10]


@st.composite
def _times(draw):
    """Non-decreasing times whose steps land on, just before and just after ms bounds."""
    steps = draw(st.lists(st.sampled_from([0, 0, 1, 999_999, 1_000_000, 1_000_001, 250_000,
                                           3_000_000]), min_size=1, max_size=60))
    start = draw(st.sampled_from([0, 1, 999_999, 1_000_000, 7_000_000_000]))
    return start + np.cumsum(np.array(steps, np.int64))


@settings(max_examples=200)
@given(_times(), st.data())
def test_stamp_run_is_the_stamp_and_where_it_next_changes(t, data):
    from mglru.workload._stamp_kernel import stamp_run as _stamp_run

    i = data.draw(st.integers(0, len(t) - 1))
    hi = data.draw(st.integers(i + 1, len(t)))
    stamps = t // 1_000_000 + 1  # each access's own stamp, computed apart
    ms, nxt = _stamp_run(t, i, hi)
    assert ms == stamps[i]
    changed = [k for k in range(i + 1, hi) if stamps[k] != stamps[i]]
    assert nxt == (changed[0] if changed else hi)


@pytest.mark.parametrize("step, n", [(1_000_000, 5), (0, 5), (999_999, 3), (1, 2_100_000)])
def test_stamp_run_at_its_bounds(step, n):
    """A stamp per access, one for all, a change after two, and a change past the gallop's
    first doublings (2 100 000 accesses 1 ns apart: the stamp changes at 1 000 000)."""
    from mglru.workload._stamp_kernel import stamp_run as _stamp_run

    t = np.arange(n, dtype=np.int64) * step
    stamps = t // 1_000_000 + 1
    for i in sorted({0, 1, n - 2, n - 1} & set(range(n))):
        ms, nxt = _stamp_run(t, i, n)
        later = np.flatnonzero(stamps[i + 1:] != stamps[i])
        assert (ms, nxt) == (stamps[i], i + 1 + later[0] if len(later) else n)
