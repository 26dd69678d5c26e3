"""The host stream path is the per-page path: same state after the same accesses.

Each example builds two identical kernels (anon, shared-file and, without a
limit, THP mappings; optionally a small memory.max so faults reclaim, swap out
and swap back in with refault detection), runs a random stream through the
engine on one and `p.access(addr, PAGE_SIZE)` page by page on the other, and
compares everything the accesses can change.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from kernel_checks import snapshot

from mglru import SimKernel
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PTE_YOUNG, PTRS_PER_PTE
from mglru.workload import Engine, host, host_stream
from mglru.workload.host import set_clock

ANON, FILE, THP = 48, 16, 1024


def _setup(limit: int | None, thp: bool, config: str, device: str = "sync"):
    k = SimKernel(config, seed=3, node_bytes=(64 << 20,), debug=True, swap_device=device)
    k.mkdir("/sys/fs/cgroup/w")
    p = k.spawn(memcg="/w")
    f = k.open_file("data", FILE * PAGE_SIZE)
    bases = [p.mmap(ANON * PAGE_SIZE), p.mmap(FILE * PAGE_SIZE, file=f)]
    if thp:
        bases.append(p.mmap(THP * PAGE_SIZE, thp=True))
    if limit is not None:
        k.write("/sys/fs/cgroup/w/memory.max", str(limit * PAGE_SIZE))
    return k, p, bases


@contextmanager
def loop_shape(short: int, block: int, split: int = host.PLAIN_SPLIT,
               prefetch: bool = host.PREFETCH):
    """Run with the compiled hit loop's one-at-a-time run, block size, two-thread run
    length and prefetch switch set so (its results must not depend on them), then put
    them back."""
    saved = host.PREFETCH, host.PLAIN_SHORT, host.PLAIN_BLOCK, host.PLAIN_SPLIT
    host.PREFETCH, host.PLAIN_SHORT, host.PLAIN_BLOCK, host.PLAIN_SPLIT = \
        prefetch, short, block, split
    try:
        yield
    finally:
        host.PREFETCH, host.PLAIN_SHORT, host.PLAIN_BLOCK, host.PLAIN_SPLIT = saved


def _state(k: SimKernel) -> dict:
    out = snapshot(k)
    out["lru"] = hashlib.sha256(k.mem.lru.tobytes()).hexdigest()
    out["vmstat"] = k.read("/proc/vmstat")
    out["memory.stat"] = k.read("/sys/fs/cgroup/w/memory.stat")
    out["stats"] = {n: v for n, v in k.stats.items() if v}
    out["events"] = {m.id: ({n: v for n, v in m.events.items() if v}, m.nr_max_events,
                            m.nr_oom_events) for m in k.memcgs.root.iter_preorder()}
    out["swap"] = hashlib.sha256(k.swap.shadow.tobytes()).hexdigest()
    out["swap_cache"] = (sorted(k.swap.cache.folio.items()), sorted(k.swap.cache.readahead))
    out["swap_ra"] = {p.pid: [v.swap_ra for v in p.mm.vmas] for p in k.procs.values()}
    out["files"] = {n: (f.pages.tobytes(), f.shadow.tobytes()) for n, f in k.files.items()}
    out["clock"] = k.clock_ns
    out["oom"] = list(k.oom_events)
    return out


def _pages(bases: list[int], region: np.ndarray, offset: np.ndarray) -> np.ndarray:
    sizes = np.array([ANON, FILE, THP])
    base0 = bases[0]
    addrs = np.array(bases)[region] + (offset % sizes[region]) * PAGE_SIZE
    return (addrs - base0) // PAGE_SIZE


@st.composite
def streams(draw):
    thp = draw(st.booleans())
    limit = None if thp else draw(st.sampled_from([None, 20, 36]))
    n = draw(st.integers(0, 160))
    seed = draw(st.integers(0, 2**31))
    config = draw(st.sampled_from(["v6.10", "seed-v4", "v6.1", "v6.14"]))
    prefetch = draw(st.booleans())  # the loop's prefetch is a hint: same state either way
    device = draw(st.sampled_from(["sync", "ssd", "hdd"]))
    # the hit loop's one-at-a-time run and block of PTE indices (both ends inside short
    # streams, and their own sizes), and the runs of one stamp it splits between two
    # threads (runs of 2 or 3 in these streams, of accesses up to 3 ms apart)
    plain = (draw(st.sampled_from([0, 1, host.PLAIN_SHORT])),
             draw(st.sampled_from([1, 2, 7, host.PLAIN_BLOCK])),
             draw(st.sampled_from([0, 2, 3, host.PLAIN_SPLIT])))
    return thp, limit, n, seed, config, (prefetch, plain), device


@settings(max_examples=25)
@given(streams())
def test_stream_equals_per_page(case):
    thp, limit, n, seed, config, (prefetch, plain), device = case
    rng = np.random.default_rng(seed)
    nreg = 3 if thp else 2
    region = rng.integers(0, nreg, n)
    # a small hot set makes hits, the rest faults, evictions and swap-ins
    offset = np.where(rng.random(n) < 0.5, rng.integers(0, 6, n), rng.integers(0, 1 << 20, n))
    writes = rng.random(n) < 0.6
    dt = rng.integers(0, 3_000_000, n)  # up to 3 ms apart, ties included
    t = np.cumsum(dt)

    k1, p1, bases1 = _setup(limit, thp, config, device)
    k2, p2, bases2 = _setup(limit, thp, config, device)
    assert bases1 == bases2
    pages = _pages(bases1, region, offset)
    s = host_stream(p1, bases1[0], pages, writes, t_ns=t)
    err1 = err2 = None
    try:
        with loop_shape(*plain, prefetch=prefetch):
            Engine(k1).run([s], quantum_ms=0.5)
    except Exception as e:  # noqa: BLE001 - the per-page path must fail the same way
        err1 = (type(e), str(e), s.pos)
    for i in range(n):
        set_clock(k2, int(t[i]))
        try:
            p2.access(bases2[0] + int(pages[i]) * PAGE_SIZE, PAGE_SIZE, write=bool(writes[i]))
        except Exception as e:  # noqa: BLE001
            err2 = (type(e), str(e), i)
            break
    if err1 is None and err2 is None:
        assert s.hits + s.faults == n
        assert s.faults == k1.stats["pgfault"]
    assert err1 == err2
    assert _state(k1) == _state(k2)


def test_hits_set_bits_without_faults():
    k, p, bases = _setup(None, False, "v6.10")
    p.access(bases[0], ANON * PAGE_SIZE, write=True)
    faults = k.stats["pgfault"]
    pt = p.mm.pt
    pt.pte_flags[:] &= ~np.uint8(2)  # clear PTE_YOUNG everywhere
    s = host_stream(p, bases[0], np.arange(ANON)[::-1], writes=False, rate=1e6)
    eng = Engine(k)
    eng.run([s])
    assert (s.hits, s.faults) == (ANON, 0)
    assert k.stats["pgfault"] == faults
    assert (pt.pte_flags[: pt.nr_rows].reshape(-1) & 2).sum() // 2 == ANON
    # ground truth: page 0 was touched last, at (ANON - 1) us, i.e. in ms 0 (+1)
    pfns = pt.pte_pfn.reshape(-1)[pt.pte_flags.reshape(-1) & 1 != 0]
    assert set(eng.last_access_ms[pfns].tolist()) == {1}
    assert k.clock_ns == (ANON - 1) * 1000


@pytest.mark.parametrize("config", ["v6.1", "v6.10", "seed-v4", "v6.14"])
@pytest.mark.parametrize("n", [72, 73, 74, 109, 145])
def test_fault_that_charges_and_ages(config, n):
    """Writes cycling over 48 pages under a 36-page memory.max: faults charge, and
    some charges age (clearing the PMD's accessed bit and the mm's use mark). With
    n = 73, 109, 145 the stream ends with such a fault: the loop, which faults it
    after the charge, must leave both as the charge left them."""
    pages = np.arange(n) % ANON
    writes = np.ones(n, bool)
    t = np.arange(n) * 1_000_000
    k1, p1, bases1 = _setup(36, False, config)
    k2, p2, bases2 = _setup(36, False, config)
    Engine(k1).run([host_stream(p1, bases1[0], pages, writes, t_ns=t)], quantum_ms=0.5)
    for i in range(n):
        set_clock(k2, int(t[i]))
        p2.access(bases2[0] + int(pages[i]) * PAGE_SIZE, PAGE_SIZE, write=True)
    assert _state(k1) == _state(k2)


def test_hits_set_the_young_bit_of_their_own_pte_table():
    """A hit under a PTE table the walk made old sets that table's bit (and no other
    table's bit stands in for it): the second of four tables is made old, its pages are
    read, and it is young again while the others never changed."""
    k = SimKernel("v6.10", seed=3, node_bytes=(64 << 20,))
    p = k.spawn()
    base = p.mmap(4 * PTRS_PER_PTE * PAGE_SIZE)
    p.access(base, 4 * PTRS_PER_PTE * PAGE_SIZE, write=True)
    vma = p.mm.find_vma(base)
    pt = p.mm.pt
    rows = [int(vma.rows[i]) for i in range(4)]
    young = np.uint8(PTE_YOUNG)
    assert all(pt.pmd_flags[r] & young for r in rows)
    pt.pmd_flags[rows[1]] &= ~young
    s = host_stream(p, base, PTRS_PER_PTE + np.arange(0, PTRS_PER_PTE, 3), writes=False,
                    rate=1e6)
    Engine(k).run([s])
    assert s.faults == 0
    assert [bool(pt.pmd_flags[r] & young) for r in rows] == [True] * 4


@pytest.mark.parametrize(("short", "block", "split"), [(0, 1, 0), (1, 5, 0), (16, 1024, 0),
                                                     (16, 1024, 8), (0, 3, 2)])
def test_hits_after_a_callback_run_after_it(short, block, split):
    """Accesses due at or after a callback's time run after it: at the callback the
    ground truth holds exactly the accesses due before it, and a callback that clears
    every PTE's accessed bit leaves set exactly the bits of the pages accessed since
    (before it, every access is a hit that changes nothing, the hit loop's own case)."""
    k = SimKernel("v6.10", seed=3, node_bytes=(64 << 20,))
    p = k.spawn()
    n = 3 * PTRS_PER_PTE
    base = p.mmap(n * PAGE_SIZE)
    p.access(base, n * PAGE_SIZE, write=True)
    pt = p.mm.pt
    idx = p.mm.find_vma(base).pte_index(np.arange(n) + (base >> PAGE_SHIFT))
    young = np.uint8(PTE_YOUNG)
    eng = Engine(k)
    stamped = []

    def agent(kernel, now):
        stamped.append(int(np.count_nonzero(eng.last_access_ms)))
        pt.flat_flags()[idx] &= ~young

    order = np.random.default_rng(5).permutation(n)  # each page once, 1 us apart
    s = host_stream(p, base, order, writes=False, rate=1e6)
    with loop_shape(short, block, split):
        eng.run([s], every_ms=1, callback=agent)  # once, at 1 ms
    assert stamped == [1000]
    since = set(order[1000:].tolist())  # due at or after 1 ms
    got = pt.flat_flags()[idx] & young != 0
    assert set(np.flatnonzero(got).tolist()) == since


@pytest.mark.parametrize("at", [None, 0, 5, 19, 20, 21, 39])
@pytest.mark.parametrize("split", [2, 4, 20])
def test_split_runs_end_where_one_loop_would(at, split):
    """Forty accesses of one stamp (1 ns apart) to 32 mapped pages, split between two
    threads in runs of `split` accesses or more; access `at` faults (a page not mapped
    yet; None: none does). The loop takes the first `split` accesses on one thread, then
    halves the rest. Wherever the fault falls (in the one-thread start, the first half,
    either side of the middle, the second half), the state and the ground truth are the
    per-page path's."""
    n = 40
    pages = np.arange(n) % 32
    if at is not None:
        pages[at] = 40
    k1, p1, bases1 = _setup(None, False, "v6.14")
    k2, p2, bases2 = _setup(None, False, "v6.14")
    for k, p, b in ((k1, p1, bases1), (k2, p2, bases2)):
        p.access(b[0], 32 * PAGE_SIZE, write=True)
        set_clock(k, 5_000_000)
    eng = Engine(k1)
    s = host_stream(p1, bases1[0], pages, writes=True, rate=1e9)  # a read would map pfn 0
    with loop_shape(16, host.PLAIN_BLOCK, split):
        eng.run([s])
    for i in range(n):
        set_clock(k2, 5_000_000 + i)
        p2.access(bases2[0] + int(pages[i]) * PAGE_SIZE, PAGE_SIZE, write=True)
    assert (s.hits, s.faults) == (n - (at is not None), int(at is not None))
    assert _state(k1) == _state(k2)
    pt = p1.mm.pt
    vpn0 = bases1[0] >> PAGE_SHIFT
    pfns = pt.flat_pfn()[p1.mm.find_vma(bases1[0]).pte_index(vpn0 + np.unique(pages))]
    assert set(eng.last_access_ms[pfns.astype(np.int64)].tolist()) == {5 + 1}
