"""State digests of reclaim-heavy runs: what the eviction paths must reproduce exactly.

Each scenario builds a kernel, runs a mix of faults, aging and reclaim (memory.reclaim,
memory.max pressure, debugfs eviction, node pressure, a full swap device, a VM guest)
and takes a digest of the whole state at several checkpoints: per-pfn folio state and
list order, page tables, lruvec counters and the PID controller, swap slots and
shadows, free lists, charges, events and counters, and the files users read
(`/sys/kernel/debug/lru_gen{,_full}`, `/proc/vmstat`, every memcg's memory.stat).

    python tests/eviction/evict_digest.py record FILE   # digests of the current code
    python tests/eviction/evict_digest.py check FILE    # compare with a recording
    python tests/eviction/evict_digest.py check FILE --python   # the Python fallback

`--python` forces the Python eviction path (`mglru.lru_gen.evict_fast.ENABLED`).
tests/eviction/test_evict_compiled.py runs a subset both ways in the suite.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable

import numpy as np

from mglru import SimKernel
from mglru.mm.page import PAGE_SIZE

PRESETS = ("v6.1", "v6.10", "seed-v4", "v6.12", "v6.14", "v6.15")
CG = "/sys/fs/cgroup"
LRU_GEN = "/sys/kernel/debug/lru_gen"
MIB = 1 << 20


def _h(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes() if isinstance(a, np.ndarray)
                 else repr(a).encode())
    return h.hexdigest()[:16]


def digest(k: SimKernel) -> dict:
    """A digest of everything reclaim can change (see the module)."""
    mem = k.mem
    out: dict = {
        "pfns": _h(mem.flags, mem.gen, mem.lru, mem.memcg,
                   mem.page_idle if mem.page_idle is not None else None),
        "order": (mem.order_head, mem.order_tail),
        "nodes": [_h(np.concatenate(n.free) if n.free else np.zeros(0, np.int64),
                     n.nr_free_listed, n.fresh, list(n.free_thp)) for n in mem.nodes],
        "swap": _h(k.swap.shadow, list(k.swap._free), k.swap._next, k.swap.nr_used,
                   k.swap.pswpout, k.swap.pswpin),
        "stats": sorted((n, v) for n, v in k.stats.items() if v),
        "writeback": sorted(k._writeback),
        "oom": list(k.oom_events),
        "lru_gen": _h(k.read(LRU_GEN)),
        "lru_gen_full": _h(k.read(LRU_GEN + "_full")),
        "vmstat": _h(k.read("/proc/vmstat")),
    }
    procs = {}
    for pid, p in sorted(k.procs.items()):
        pt = p.mm.pt
        n = pt.nr_rows
        procs[str(pid)] = _h(pt.pmd_state[:n], pt.pmd_flags[:n], pt.pmd_pfn[:n],
                             pt.pte_flags[:n], pt.pte_pfn[:n])
    out["procs"] = procs
    lv = {}
    for lruvec in k.iter_lruvecs():
        st = lruvec.mm_state
        lv[f"{lruvec.memcg.id}/{lruvec.nid}"] = _h(
            lruvec.max_seq, list(lruvec.min_seq), list(lruvec.timestamps), lruvec.nr_pages,
            lruvec.nr_listed, lruvec.avg_refaulted, lruvec.avg_total, lruvec.protected,
            lruvec.evicted, lruvec.refaulted, lruvec.nr_evicted_pages,
            None if st is None else st.stats)
    out["lruvecs"] = lv
    memcgs = {}
    for m in k.memcgs.root.iter_preorder():
        stat = k.read(f"{CG}{m.path}/memory.stat") if m.parent is not None else ""
        memcgs[m.path] = _h(m.nr_charged, sorted((n, v) for n, v in m.events.items() if v),
                            stat)
    out["memcgs"] = memcgs
    out["files"] = {n: _h(f.pages, f.shadow, getattr(f, "swap", None))
                    for n, f in sorted(k.files.items())}
    return out


def _age(k: SimKernel, memcg_id: int, force: int = 1) -> None:
    for lv in k.iter_lruvecs():
        if lv.memcg.id == memcg_id:
            try:
                k.write(LRU_GEN, f"+ {memcg_id} {lv.nid} {lv.max_seq} 60 {force}")
            except OSError:
                pass  # ERANGE: no eligible generation to age from


def _reclaim(k: SimKernel, path: str, nbytes: int) -> None:
    try:
        k.write(f"{CG}{path}/memory.reclaim", str(nbytes))
    except OSError:
        pass  # EAGAIN: not all reclaimed


def _stream(k: SimKernel, task, base: int, pages, writes, period_ns: int = 200_000) -> None:
    from mglru.workload import Engine, host_stream

    t = np.arange(len(pages), dtype=np.int64) * period_ns + k.clock_ns
    Engine(k, truth=False).run([host_stream(task, base, pages, writes, t_ns=t)], quantum_ms=0)


def scen_bench(config: str, marks: list) -> None:
    """`mglru bench reclaim`'s setup at 16 MiB, 4 MiB cold; then deeper reclaim."""
    k = SimKernel(config, seed=0, node_bytes=(64 * MIB,))
    k.mkdir(f"{CG}/b")
    m = k.memcg("/b")
    p = k.spawn(memcg="/b")
    addr = p.mmap(16 * MIB)
    p.access(addr, 16 * MIB, write=True)
    _age(k, m.id)
    p.access(addr + 4 * MIB, 12 * MIB)
    _age(k, m.id)
    _age(k, m.id)
    marks.append(digest(k))
    _reclaim(k, "/b", 4 * MIB)
    marks.append(digest(k))
    _reclaim(k, "/b", 6 * MIB)
    marks.append(digest(k))
    p.access(addr, 8 * MIB)  # swap-ins with refault detection
    _reclaim(k, "/b", 8 * MIB)
    marks.append(digest(k))


def scen_mixed(config: str, marks: list) -> None:
    """anon + THP + file (clean, dirty) + read(2) + shmem, parent/child memcgs, pressure."""
    k = SimKernel(config, seed=1, node_bytes=(64 * MIB,))
    k.mkdir(f"{CG}/a")
    k.mkdir(f"{CG}/a/b")
    a, b = k.memcg("/a"), k.memcg("/a/b")
    p = k.spawn(memcg="/a")
    q = k.spawn(memcg="/a/b")
    anon = p.mmap(6 * MIB)
    thp = p.mmap(4 * MIB, thp=True)
    f = k.open_file("data", 4 * MIB)
    fm = p.mmap(4 * MIB, file=f)
    g = k.open_file("log", 2 * MIB)
    sh = q.mmap(2 * MIB, shared=True)
    qa = q.mmap(4 * MIB)
    p.access(anon, 6 * MIB, write=True)
    p.access(thp, 4 * MIB, write=True)
    p.access(fm, 2 * MIB)
    p.access(fm + 2 * MIB, 2 * MIB, write=True)
    p.read(g, 0, 2 * MIB)
    q.access(sh, 2 * MIB, write=True)
    q.access(qa, 4 * MIB, write=True)
    for mid in (a.id, b.id):
        _age(k, mid)
    p.access(anon, 2 * MIB)
    q.access(qa, MIB)
    for mid in (a.id, b.id):
        _age(k, mid, 0)
    marks.append(digest(k))
    _reclaim(k, "/a", 6 * MIB)
    marks.append(digest(k))
    k.write(f"{CG}/a/b/memory.min", str(2 * MIB))
    _reclaim(k, "/a", 4 * MIB)
    marks.append(digest(k))
    # memory.max pressure: a random stream over the anon and file mappings
    k.write(f"{CG}/a/memory.max", str(10 * MIB))
    rng = np.random.default_rng(7)
    n = 3000
    pages = np.where(rng.random(n) < 0.7, rng.integers(0, 1536, n),
                     (fm - anon) // PAGE_SIZE + rng.integers(0, 1024, n))
    _stream(k, p, anon, pages, rng.random(n) < 0.3)
    marks.append(digest(k))
    # the debugfs eviction command, anon only then both types
    lv = b.lruvecs[0]
    for sw in (200, 60):
        lv = b.lruvecs[0]
        try:
            k.write(LRU_GEN, f"- {b.id} 0 {lv.min_seq[0] + 1} {sw} 256")
        except OSError:
            pass
    marks.append(digest(k))


def scen_replay(config: str, marks: list) -> None:
    """The miss-heavy Zipf stream of `mglru replay --memory 2M` (all pages anon)."""
    from mglru.workload.generators import zipf

    k = SimKernel(config, seed=0, node_bytes=(256 * MIB,))
    k.mkdir(f"{CG}/r")
    k.write(f"{CG}/r/memory.max", str(2 * MIB))
    p = k.spawn(memcg="/r")
    base = p.mmap(8 * MIB)
    pages = zipf(2048, 6000, seed=2)
    first = np.zeros(len(pages), bool)
    first[np.unique(pages, return_index=True)[1]] = True
    _stream(k, p, base, pages, first)
    marks.append(digest(k))
    _reclaim(k, "/r", MIB)
    marks.append(digest(k))


def scen_vm(config: str, marks: list) -> None:
    """A VM guest under memory.max: reclaim unmaps SPTEs, guests refault through KVM."""
    from mglru.workload import Engine, guest_stream

    k = SimKernel(config, seed=5, node_bytes=(64 * MIB,))
    k.mkdir(f"{CG}/w")
    vmm = k.spawn(memcg="/w")
    vm = k.create_vm(vmm, nr_vcpus=2, mem_bytes=8 * MIB, tlb_entries=4)
    k.write(f"{CG}/w/memory.max", str(2 * MIB))
    rng = np.random.default_rng(3)
    streams = []
    for v in range(2):
        n = 2500
        g = np.where(rng.random(n) < 0.5, rng.integers(0, 64, n), rng.integers(0, 2048, n))
        t = np.cumsum(rng.integers(0, 300_000, n))
        streams.append(guest_stream(vm, v, g, rng.random(n) < 0.5, t_ns=t))
    Engine(k, truth=False).run(streams, quantum_ms=0)
    marks.append(digest(k))
    _age(k, k.memcg("/w").id)
    _reclaim(k, "/w", MIB)
    marks.append(digest(k))


def scen_swapfull(config: str, marks: list) -> None:
    """A swap device that fills up mid-reclaim, then node pressure (global reclaim)."""
    k = SimKernel(config, seed=2, node_bytes=(16 * MIB,), swap_pages=1000)
    k.mkdir(f"{CG}/s")
    p = k.spawn(memcg="/s")
    addr = p.mmap(10 * MIB)
    p.access(addr, 10 * MIB, write=True)
    _age(k, k.memcg("/s").id)
    _reclaim(k, "/s", 6 * MIB)
    marks.append(digest(k))
    q = k.spawn()
    f = k.open_file("big", 8 * MIB)
    try:
        q.read(f, 0, 8 * MIB)  # the node runs out: kswapd and direct global reclaim
    except Exception as e:  # noqa: BLE001 - OOM is an outcome to compare too
        marks.append(repr(e))
    marks.append(digest(k))


def scen_node(config: str, marks: list) -> None:
    """Two memcgs and a file reader fill a node: kswapd and global reclaim, round robin."""
    k = SimKernel(config, seed=4, node_bytes=(24 * MIB,))
    tasks = []
    for name in ("x", "y"):
        k.mkdir(f"{CG}/{name}")
        p = k.spawn(memcg=f"/{name}")
        tasks.append((p, p.mmap(12 * MIB)))
    f = k.open_file("cache", 6 * MIB)
    try:
        for step in range(6):
            for p, addr in tasks:
                p.access(addr + step * 2 * MIB, 2 * MIB, write=True)
                if step:
                    p.access(addr, MIB)
            tasks[step % 2][0].read(f, step * MIB, MIB)
            marks.append(digest(k))
    except Exception as e:  # noqa: BLE001 - OOM is an outcome to compare too
        marks.append(repr(e))
        marks.append(digest(k))


SCENARIOS: dict[str, Callable[[str, list], None]] = {
    "bench": scen_bench, "mixed": scen_mixed, "replay": scen_replay, "vm": scen_vm,
    "swapfull": scen_swapfull, "node": scen_node,
}


def run_all(presets=PRESETS, scenarios=None) -> dict:
    """{"scenario/preset": [digest per checkpoint]}."""
    out = {}
    for name, fn in SCENARIOS.items():
        if scenarios and name not in scenarios:
            continue
        for cfg in presets:
            marks: list = []
            try:
                fn(cfg, marks)
            except Exception as e:  # noqa: BLE001 - recorded, compared like a digest
                marks.append(f"raised {type(e).__name__}: {e}")
            out[f"{name}/{cfg}"] = json.loads(json.dumps(marks))
    return out


def main(argv: list[str]) -> int:
    mode, path = argv[0], argv[1]
    if "--python" in argv:
        from mglru.lru_gen import evict_fast

        evict_fast.ENABLED = False
    got = run_all()
    from mglru.lru_gen import evict_fast

    print("compiled loop: batches kept in the loop, hand-backs:", evict_fast.COUNTS)
    if mode == "record":
        with open(path, "w") as fh:
            json.dump(got, fh, indent=0, sort_keys=True)
        print(f"recorded {len(got)} runs, {sum(len(v) for v in got.values())} checkpoints")
        return 0
    with open(path) as fh:
        want = json.load(fh)
    # --ignore a,b: fields a deliberate later change altered (e.g. a new counter in
    # /proc/vmstat and memory.stat), so the rest of the state can still be held to it
    ignore = set(argv[argv.index("--ignore") + 1].split(",")) if "--ignore" in argv else set()
    if ignore:
        def strip(marks):
            return [{f: v for f, v in m.items() if f not in ignore} if isinstance(m, dict)
                    else m for m in marks]
        got = {k: strip(v) for k, v in got.items()}
        want = {k: strip(v) for k, v in want.items()}
    bad = 0
    for key in sorted(want):
        if got.get(key) != want[key]:
            bad += 1
            print("DIFFERS", key)
            for i, (a, b) in enumerate(zip(got.get(key, []), want[key], strict=False)):
                if a != b:
                    diff = [f for f in a if a[f] != b.get(f)] if isinstance(a, dict) and \
                        isinstance(b, dict) else "whole"
                    print("  checkpoint", i, diff)
                    break
    n = sum(len(v) for v in want.values())
    print(f"{len(want) - bad} of {len(want)} runs identical ({n} checkpoints recorded)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
