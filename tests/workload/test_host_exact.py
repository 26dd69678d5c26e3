"""The host stream path is the per-page path: same state after the same accesses.

Each example builds two identical kernels (anon, shared-file and, without a
limit, THP mappings; optionally a small memory.max so faults reclaim, swap out
and swap back in with refault detection), runs a random stream through the
engine on one and `p.access(addr, PAGE_SIZE)` page by page on the other, and
compares everything the accesses can change.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from kernel_checks import snapshot

from mglru import SimKernel
from mglru.mm.page import PAGE_SIZE
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
    return thp, limit, n, seed, config, prefetch, device


@settings(max_examples=25)
@given(streams())
def test_stream_equals_per_page(case):
    thp, limit, n, seed, config, prefetch, device = case
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
    saved = host.PREFETCH
    host.PREFETCH = prefetch
    try:
        Engine(k1).run([s], quantum_ms=0.5)
    except Exception as e:  # noqa: BLE001 - the per-page path must fail the same way
        err1 = (type(e), str(e), s.pos)
    finally:
        host.PREFETCH = saved
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
