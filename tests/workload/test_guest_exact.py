"""Guest streams (and a host task beside them) equal the per-page path, state included.

Two vCPUs with small TLBs and a host task share a memcg, optionally under a
memory.max (host reclaim unmaps SPTEs through the MMU notifier, so guests
refault through KVM and GUP), and an agent writes memory.reclaim every few
simulated ms. The engine interleaves the three streams by exact time; the
reference applies the same accesses one page at a time in the same order.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st
from test_host_exact import _state

from mglru import SimKernel
from mglru.mm.page import PAGE_SIZE
from mglru.workload import Engine, guest_stream, host_stream
from mglru.workload.host import set_clock

GUEST, HOST = 1024, 32
PERIOD_MS = 10


def _setup(limit, thp, ad_bits, tlb, config):
    k = SimKernel(config, seed=5, node_bytes=(64 << 20,), debug=True)
    k.mkdir("/sys/fs/cgroup/w")
    vmm = k.spawn(memcg="/w")
    vm = k.create_vm(vmm, nr_vcpus=2, mem_bytes=GUEST * PAGE_SIZE, thp=thp, ad_bits=ad_bits,
                     tlb_entries=tlb)
    task = k.spawn(memcg="/w")
    base = task.mmap(HOST * PAGE_SIZE)
    if limit is not None:
        k.write("/sys/fs/cgroup/w/memory.max", str(limit * PAGE_SIZE))
    return k, vm, task, base


def _agent(k, now):
    try:
        k.write("/sys/fs/cgroup/w/memory.reclaim", str(16 * PAGE_SIZE))
    except OSError:
        pass  # EAGAIN: nothing reclaimable; the per-page run sees the same


def _vm_state(vm) -> dict:
    return {"sptes": [a.tobytes() for a in vm.mmu.sptes], "stat": +vm.stat,
            "tlb": [v.tlb.keys.tolist() for v in vm.vcpus]}


@st.composite
def cases(draw):
    thp = draw(st.booleans())
    return (None if thp else draw(st.sampled_from([None, 200, 400])), thp, draw(st.booleans()),
            draw(st.sampled_from([0, 1, 4, 16])),
            draw(st.sampled_from(["v6.10", "seed-v4", "v6.15"])),  # v6.15: notifier look-around
            draw(st.integers(0, 120)), draw(st.integers(0, 2**31)))


@settings(max_examples=20)
@given(cases())
def test_guest_streams_equal_per_page(case):
    limit, thp, ad_bits, tlb, config, n, seed = case
    rng = np.random.default_rng(seed)

    def draw_stream(npages):
        m = int(rng.integers(0, n + 1))
        pages = np.where(rng.random(m) < 0.5, rng.integers(0, 12, m), rng.integers(0, npages, m))
        return pages, rng.random(m) < 0.5, np.cumsum(rng.integers(0, 400_000, m))

    specs = [draw_stream(GUEST), draw_stream(GUEST), draw_stream(HOST)]
    k1, vm1, task1, base1 = _setup(limit, thp, ad_bits, tlb, config)
    k2, vm2, task2, base2 = _setup(limit, thp, ad_bits, tlb, config)
    streams = [guest_stream(vm1, 0, *specs[0][:2], t_ns=specs[0][2], start_ns=0),
               guest_stream(vm1, 1, *specs[1][:2], t_ns=specs[1][2], start_ns=0),
               host_stream(task1, base1, *specs[2][:2], t_ns=specs[2][2], start_ns=0)]
    err1 = err2 = None
    try:
        Engine(k1).run(streams, quantum_ms=0, every_ms=PERIOD_MS, callback=_agent)
    except Exception as e:  # noqa: BLE001 - the per-page path must fail the same way
        err1 = (type(e), str(e))

    # the reference: accesses in (time, stream) order, the agent at each PERIOD_MS mark
    order = [(int(t), si, i) for si, sp in enumerate(specs) for i, t in enumerate(sp[2])]
    order.sort()
    next_cb = PERIOD_MS * 1_000_000 if order else None
    try:
        for t, si, i in order:
            while t >= next_cb:
                set_clock(k2, next_cb)
                _agent(k2, next_cb)
                next_cb += PERIOD_MS * 1_000_000
            set_clock(k2, t)
            page, write = int(specs[si][0][i]), bool(specs[si][1][i])
            if si < 2:
                vm2.vcpus[si].access(page * PAGE_SIZE, PAGE_SIZE, write)
            else:
                task2.access(base2 + page * PAGE_SIZE, PAGE_SIZE, write=write)
    except Exception as e:  # noqa: BLE001
        err2 = (type(e), str(e))
    assert err1 == err2
    if err1 is None:
        assert sum(s.hits + s.faults for s in streams) == len(order)
    assert _vm_state(vm1) == _vm_state(vm2)
    assert _state(k1) == _state(k2)


def test_tlb_hit_leaves_the_accessed_bit_clear():
    k, vm, _task, _base = _setup(None, False, True, 4, "seed-v4")
    vm.vcpus[0].access(0, 4 * PAGE_SIZE, write=True)  # fault in and cache 4 translations
    arr = vm.mmu.sptes[0]
    arr[:4] &= ~np.uint8(2)  # aging cleared the accessed bits; the TLB still has them
    s = guest_stream(vm, 0, [0, 1, 2, 3, 7], writes=False, rate=1e6)
    Engine(k).run([s])
    assert s.faults == 1  # gfn 7 only
    assert (arr[:4] & 2).tolist() == [0, 0, 0, 0]  # stale TLB entries: a false "idle"
    assert vm.vcpus[0].tlb.keys.tolist() == [1, 2, 3, 7]  # gfn 0 evicted (LRU)


def test_tlb_hit_refreshes_the_lru_order():
    k, vm, _task, _base = _setup(None, False, True, 2, "seed-v4")
    vm.vcpus[0].access(0, 3 * PAGE_SIZE, write=True)  # TLB holds gfns 1, 2
    s = guest_stream(vm, 0, [1, 2, 1, 0], writes=False, rate=1e6)
    Engine(k).run([s])
    assert (s.hits, s.faults) == (4, 0)
    assert vm.vcpus[0].tlb.keys.tolist() == [1, 0]  # 2 was least recently used
