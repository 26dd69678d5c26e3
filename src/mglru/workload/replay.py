"""Replay a cache trace through the model: a task (or a VM guest) in a memcg of a given size.

Each object gets its own pages in one anonymous mapping (of the task, or
backing the guest's memory); a request touches its object's pages (the first
touch of a page writes it, as a cache fills an entry; later touches follow the
request's operation). A request is a miss when any of its page accesses
faulted. The memcg's memory.max is the cache size: misses past it reclaim with
the full MGLRU work (aging, eviction to swap, refault detection).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mglru.kernel import SimKernel
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE
from mglru.workload._trace_kernel import distinct_runs, first_touch_writes
from mglru.workload.engine import Engine
from mglru.workload.generators import zipf
from mglru.workload.stream import Stream, check_times
from mglru.workload.traces import Trace, page_map, write_oracle_general

__all__ = ["replay", "compare_libcachesim", "LIBCACHESIM_ALGOS"]

_CGROUP = "/sys/fs/cgroup/replay"
#: --compare names -> libCacheSim cache classes
LIBCACHESIM_ALGOS = {"lru": "LRU", "clock": "Clock", "fifo": "FIFO", "arc": "ARC",
                     "s3fifo": "S3FIFO", "sieve": "Sieve", "lfu": "LFU", "2q": "TwoQ"}


def _counts(k: SimKernel) -> dict[str, int]:
    s = k.stats
    return {"faults": s["pgfault"],
            "refaults": s["workingset_refault_anon"] + s["workingset_refault_file"],
            "evictions": s["pgsteal_anon"] + s["pgsteal_file"]}


def _warm_up(config: str, vm: bool) -> None:
    """A small replay with evictions first, so the timed one finds its compiled kernels
    loaded (numba's cache), as `mglru bench access` warms up before timing."""
    n = 20_000  # Zipf over 4 times the memory: aging, look-around, refaults all happen
    ids = zipf(2048, n, seed=1).astype(np.uint64) + np.uint64(1)
    small = Trace(np.arange(n, dtype=np.int64) // 100, ids, np.full(n, PAGE_SIZE, np.int64),
                  np.zeros(n, bool))
    replay(small, 512 * PAGE_SIZE, config, vm=vm, warm_up=False)


def replay(trace: Trace, memory: int, config: str, *, vm: bool = False, unit: bool = False,
           seed: int = 0, warm_up: bool = True,
           progress: tuple[int, Callable[[int, int], None]] | None = None) -> dict[str, Any]:
    """Run `trace` with `memory` bytes of memory.max; returns the report.

    Keys: requests, misses, miss_ratio, faults, refaults, evictions, seconds
    (wall time of the replay, after a small untimed warm-up run when `warm_up`),
    requests_per_s, pages (the objects' span) and setup_seconds (objects onto pages,
    the kernel and the stream, before the timed replay). `progress` = (steps, report):
    the replay runs in that many steps, calling `report(accesses done, accesses)` after
    each (the same result as one run).
    """
    if warm_up:
        _warm_up(config, vm)
    t_setup = time.perf_counter()
    pages, req, npages = page_map(trace, unit=unit)
    region = -(-npages * PAGE_SIZE // PMD_SIZE) * PMD_SIZE
    node = max(2 * region, -(-2 * memory // PMD_SIZE) * PMD_SIZE, 256 << 20)
    k = SimKernel(config, seed=seed, node_bytes=(node,))
    k.mkdir(_CGROUP)
    k.write(_CGROUP + "/memory.max", str(memory))
    writes = first_touch_writes(pages, req, trace.write, npages)
    task = k.spawn(memcg="/replay")
    kvm = k.create_vm(task, mem_bytes=region, log_calls=False) if vm else None  # sums are read
    # the stream's arrays are made in place, not as `host_stream` copies them: each
    # fresh array of the accesses' length costs its page faults, most of the set-up
    t_ns = np.subtract(trace.time if req is None else trace.time[req],
                       trace.time[0] if len(trace) else 0, dtype=np.int64)
    t_ns *= 1_000_000_000
    t_ns += k.clock_ns
    check_times(t_ns)
    if kvm is not None:
        s = Stream("guest", pages, writes, t_ns, vm=kvm, record_faults=True)
    else:
        pages += task.mmap(region) >> PAGE_SHIFT  # the objects' pages, as vpns
        s = Stream("host", pages, writes, t_ns, task=task, record_faults=True)
    before = _counts(k)
    eng = Engine(k, truth=False)
    t0 = time.perf_counter()
    setup_seconds = t0 - t_setup
    steps, report = progress if progress is not None else (1, None)
    for i in range(1, steps + 1):  # one stream: advancing it is all Engine.run would do
        eng.advance(s, len(s) * i // steps)
        if report is not None:
            report(s.pos, len(s))
    seconds = time.perf_counter() - t0
    after = _counts(k)
    # faults come in access order, so the requests they belong to do not decrease
    faulted = np.frombuffer(s.fault_index, np.int64)
    missed = distinct_runs(faulted if req is None else req[faulted])
    n = len(trace)
    return {"requests": n, "misses": missed, "miss_ratio": missed / n if n else 0.0,
            **{key: after[key] - before[key] for key in after},
            "seconds": seconds, "requests_per_s": n / seconds if seconds > 0 else 0.0,
            "pages": npages, "setup_seconds": setup_seconds}


def compare_libcachesim(trace: Trace, memory: int, algos: list[str], *,
                        unit: bool = False) -> list[dict[str, Any]]:
    """Replay the same requests through libCacheSim caches of `memory` bytes.

    Objects are sized in whole pages, as the model stores them.

    Raises:
        ImportError: libCacheSim's Python binding is not installed.
        ValueError: an unknown algorithm name.
    """
    import libcachesim as lcs

    bad = [a for a in algos if a not in LIBCACHESIM_ALGOS]
    if bad:
        raise ValueError(f"unknown algorithm {bad[0]!r}; valid: {', '.join(LIBCACHESIM_ALGOS)}")
    size = np.full(len(trace), PAGE_SIZE) if unit else \
        np.maximum(1, -(-trace.size // PAGE_SIZE)) * PAGE_SIZE
    fd, path = tempfile.mkstemp(suffix=".oracleGeneral")
    os.close(fd)
    try:
        write_oracle_general(path, trace.time, trace.obj_id, size)
        out = []
        for algo in algos:
            cache = getattr(lcs, LIBCACHESIM_ALGOS[algo])(cache_size=memory)
            reader = lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)
            t0 = time.perf_counter()
            miss_ratio, _byte_miss_ratio = cache.process_trace(reader)
            seconds = time.perf_counter() - t0
            n = len(trace)
            out.append({"algorithm": algo, "requests": n, "misses": round(miss_ratio * n),
                        "miss_ratio": miss_ratio, "seconds": seconds,
                        "requests_per_s": n / seconds if seconds > 0 else 0.0})
        return out
    finally:
        os.unlink(path)
