"""Memcg reclaim inside the compiled host stream loop reaches the per-page state.

A charge at memory.max reclaims in the compiled loop when the memcg is the only
limit on its path (workload/_host_reclaim.py); what the eviction loop hands
back (aging, a list to prepare, a swap map to grow, ...) is done in Python and
the loop takes the reclaim over again. These streams are long and the limits
tight, so every kind of hand-back happens; the state after them must be the
per-page path's, failures (the memcg OOM killer) included.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from test_host_exact import _state

from mglru import SimKernel
from mglru.mm.page import PAGE_SIZE
from mglru.paths import reclaim
from mglru.workload import Engine, host_reclaim, host_stream
from mglru.workload.host import set_clock


def _anon(w: dict) -> int:
    """The mapping's pages; on a small node within RAM + swap, as overcommit wants."""
    return min(w["anon"], (w.get("node_mib", 64) << 8) - 124)


def _setup(w: dict):
    k = SimKernel(w["config"], seed=3, node_bytes=(w.get("node_mib", 64) << 20,), debug=True,
                  swap_pages=w["swap"])
    cg = "/sys/fs/cgroup/w"
    k.mkdir(cg)
    if w["parent_limit"]:  # a limit above: the reclaim stays in Python
        k.write(cg + "/memory.max", str(4 * w["limit"] * PAGE_SIZE))
        cg += "/c"
        k.mkdir(cg)
    p = k.spawn(memcg=cg[len("/sys/fs/cgroup"):])
    base = p.mmap(_anon(w) * PAGE_SIZE)
    f = k.open_file("data", 16 * PAGE_SIZE)
    p.mmap(16 * PAGE_SIZE, file=f)
    if w.get("two") and w.get("node_mib", 64) == 64:
        # a second task of the memcg, idle: reclaim takes its pages too
        q = k.spawn(memcg=cg[len("/sys/fs/cgroup"):])
        q.access(q.mmap(64 * PAGE_SIZE), 64 * PAGE_SIZE, write=True)
    k.write(cg + "/memory.max", str(w["limit"] * PAGE_SIZE))
    return k, p, base


def _stream(w: dict):
    rng = np.random.default_rng(w["seed"])
    n, anon = w["n"], _anon(w)
    hot = rng.integers(0, anon, max(1, anon // 8))
    pages = np.where(rng.random(n) < 0.6, hot[rng.integers(0, len(hot), n)],
                     rng.integers(0, anon, n))
    return pages, rng.random(n) < 0.5, np.cumsum(rng.integers(0, 3_000_000, n))


def _compare(w: dict) -> None:
    pages, writes, t = _stream(w)
    k1, p1, b1 = _setup(w)
    k2, p2, b2 = _setup(w)
    s = host_stream(p1, b1, pages, writes, t_ns=t)
    err1 = err2 = None
    try:
        Engine(k1).run([s], quantum_ms=w["quantum"])
    except Exception as e:  # noqa: BLE001 - the per-page path must fail the same way
        err1 = (type(e), str(e), s.pos)
    for i in range(len(pages)):
        set_clock(k2, int(t[i]))
        try:
            p2.access(b2 + int(pages[i]) * PAGE_SIZE, PAGE_SIZE, write=bool(writes[i]))
        except Exception as e:  # noqa: BLE001
            err2 = (type(e), str(e), i)
            break
    assert err1 == err2
    assert _state(k1) == _state(k2)


@st.composite
def workloads(draw):
    return {
        "config": draw(st.sampled_from(["v6.1", "v6.10", "seed-v4", "v6.12", "v6.14"])),
        "anon": draw(st.integers(50, 1200)),
        "limit": draw(st.integers(20, 300)),
        "n": draw(st.integers(10, 2500)),
        "swap": draw(st.sampled_from([1 << 20, 200, 80])),
        "parent_limit": draw(st.booleans()),
        "quantum": draw(st.sampled_from([0.5, 5.0, 100.0])),
        "seed": draw(st.integers(0, 2**31)),
        # 4 MiB: the node runs low too (kswapd, direct reclaim) beside memory.max
        "node_mib": draw(st.sampled_from([64, 4])),
        "two": draw(st.booleans()),
    }


@settings(max_examples=20, deadline=None)
@given(workloads())
def test_stream_reclaim_equals_per_page(w):
    _compare(w)


@pytest.mark.parametrize("config", ["v6.1", "v6.14"])
def test_full_swap_ends_in_the_same_oom(config):
    """A swap device too small for the working set: a charge finds nothing to reclaim,
    the memcg OOM killer chooses the task, both paths fail at the same access."""
    _compare({"config": config, "anon": 600, "limit": 60, "n": 1500, "swap": 80,
              "parent_limit": False, "quantum": 100.0, "seed": 5})


def test_reclaim_runs_in_the_loop(monkeypatch):
    """The memcg's reclaims run compiled: Python's memcg reclaim never starts one, and
    the loop hands back aging and list preparation and takes the reclaim over again."""
    started, resumed = [], []
    real_free, real_hand_back = reclaim.try_to_free_mem_cgroup_pages, host_reclaim.hand_back
    monkeypatch.setattr("mglru.paths.charge.try_to_free_mem_cgroup_pages",
                        lambda *a, **kw: started.append(1) or real_free(*a, **kw))

    def hand_back(*a):
        out = real_hand_back(*a)
        resumed.append(out is not None)
        return out

    monkeypatch.setattr("mglru.workload.host.hand_back", hand_back)
    w = {"config": "v6.14", "anon": 1000, "limit": 200, "n": 20_000, "swap": 1 << 20,
         "parent_limit": False, "quantum": 100.0, "seed": 1}
    pages, writes, t = _stream(w)
    k, p, base = _setup(w)
    Engine(k).run([host_stream(p, base, pages, writes, t_ns=t)], quantum_ms=100.0)
    assert k.stats["pswpout"] > 1000
    assert not started
    assert resumed and all(resumed)


def test_handed_back_charge_right_after_a_resumed_one():
    """Found by a sweep: access i's charge aged (in Python) and the loop resumed it;
    access i + 1's charge then handed aging back too. The per-page path marks the mm
    used (lru_gen_use_mm) before i + 1's fault, so that aging walks it again."""
    _compare({"config": "v6.14", "anon": 520, "limit": 23, "n": 1975, "swap": 1 << 20,
              "parent_limit": False, "quantum": 100.0, "seed": 947477410, "node_mib": 6,
              "two": False})


def test_full_fault_buffer_starts_a_new_round(monkeypatch):
    """A loop whose fault buffer fills ends its round there; the next round faults the
    access in, compiled (no Python fault), and the state is the per-page path's."""
    from mglru.workload import host

    monkeypatch.setattr(host, "FAULT_BATCH", 7)
    python_faults = []
    real = host.user_access
    monkeypatch.setattr(host, "user_access",
                        lambda *a, **kw: python_faults.append(1) or real(*a, **kw))
    _compare({"config": "v6.14", "anon": 600, "limit": 150, "n": 3000, "swap": 1 << 20,
              "parent_limit": False, "quantum": 100.0, "seed": 11})
    assert not python_faults
