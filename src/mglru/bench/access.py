"""The access benchmark: stream throughput of a task (or a VM guest) over its memory.

`mglru bench access` builds, per size, one process (or a VM on one) with `gib`
GiB of anonymous memory in its own memcg (with `memory.max` when `memory_gib`
is given), writes all of it once (not timed), then times the engine applying
`accesses` reads of the chosen pattern (the key-value pattern writes some),
with per-page ground truth on (the time of each page's last access) unless
`truth` is off, in chunks of `CHUNK` accesses. Each size runs
in a fresh interpreter so peak RSS is its own; a small warm-up run first
compiles the numba kernels.

Records: `{"pattern", "gib", "memory_gib", "vm", "accesses", "seconds",
"accesses_per_s", "faults", "evictions", "refaults", "peak_rss_mib", "truth"}`;
faults, evictions and refaults count the timed part only (pgfault, pgsteal,
workingset_refault); `cpu_seconds` (process CPU time of the timed part) is
added because a shared machine stretches wall time.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

__all__ = ["run_one", "run_sizes", "CHUNK"]

#: accesses generated and applied at a time (bounds the stream's memory)
CHUNK = 1 << 22
_CG = "/sys/fs/cgroup/bench"


def _counts(k) -> tuple[int, int, int]:
    s = k.stats
    return (s["pgfault"], s["pgsteal_anon"] + s["pgsteal_file"],
            s["workingset_refault_anon"] + s["workingset_refault_file"])


def _setup(gib: float, memory_gib: float | None, vm: bool, config: str):
    from mglru import SimKernel
    from mglru.mm.page import PMD_SIZE

    nbytes = max(PMD_SIZE, int(gib * (1 << 30)) // PMD_SIZE * PMD_SIZE)
    node = max(128 << 30, 2 * nbytes)
    k = SimKernel(config, seed=0, node_bytes=(node,))
    k.mkdir(_CG)
    if memory_gib is not None:
        k.write(_CG + "/memory.max", str(int(memory_gib * (1 << 30))))
    p = k.spawn(memcg="/bench")
    if vm:
        kvm = k.create_vm(p, mem_bytes=nbytes, log_calls=False)  # nothing reads the calls
        kvm.vcpu_access(0, 0, nbytes, write=True)
        return k, kvm, 0, nbytes
    addr = p.mmap(nbytes)
    p.access(addr, nbytes, write=True)
    return k, p, addr, nbytes


def _run(gib: float, memory_gib: float | None, pattern: str, vm: bool, accesses: int,
         config: str, seed: int, truth: bool = True) -> dict[str, Any]:
    from mglru.workload import Engine, guest_stream, host_stream
    from mglru.workload.generators import generate

    k, target, addr, nbytes = _setup(gib, memory_gib, vm, config)
    n_pages = nbytes >> 12
    eng = Engine(k, truth=truth)
    before = _counts(k)
    seconds = cpu = 0.0
    done = 0
    chunk_no = 0
    while done < accesses:
        n = min(CHUNK, accesses - done)
        pages, writes = generate(pattern, n_pages, n, seed=seed + chunk_no)
        s = (guest_stream(target, 0, pages, writes, rate=1e8) if vm
             else host_stream(target, addr, pages, writes, rate=1e8))
        t0, c0 = time.perf_counter(), time.process_time()
        eng.run([s])
        seconds += time.perf_counter() - t0
        cpu += time.process_time() - c0
        done += n
        chunk_no += 1
    after = _counts(k)
    faults, evictions, refaults = (a - b for a, b in zip(after, before, strict=True))
    return {"pattern": pattern, "gib": gib, "memory_gib": memory_gib, "vm": vm,
            "accesses": accesses, "seconds": seconds,
            "accesses_per_s": accesses / seconds if seconds else float("inf"),
            "faults": faults, "evictions": evictions, "refaults": refaults,
            "cpu_seconds": cpu, "truth": truth}


def run_one(gib: float, memory_gib: float | None, pattern: str, vm: bool, accesses: int,
            config: str = "v6.10", seed: int = 0, truth: bool = True) -> dict[str, Any]:
    """Warm up on 4 MiB, then measure one size; returns the record."""
    from mglru.bench.runner import peak_rss_mib

    _run(4 / 1024, 2 / 1024 if memory_gib is not None else None, pattern, vm, 20_000, config, seed,
         truth)
    rec = _run(gib, memory_gib, pattern, vm, accesses, config, seed, truth)
    rec["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return rec


def run_sizes(sizes: list[float], memory_gib: float | None, pattern: str, vm: bool,
              accesses: int, config: str, progress=None, truth: bool = True
              ) -> list[dict[str, Any]]:
    """Run each size in its own interpreter; returns the records in order."""
    from mglru.bench.runner import run_fresh

    runs = [[str(g), "-" if memory_gib is None else str(memory_gib), pattern, "1" if vm else "0",
             str(accesses), config, "1" if truth else "0"] for g in sizes]
    return run_fresh("mglru.bench.access", runs, lambda a: f"{a[0]} GiB", progress)


if __name__ == "__main__":
    g, m, pat, v, n, cfg, t = sys.argv[1:8]
    print(json.dumps(run_one(float(g), None if m == "-" else float(m), pat, v == "1", int(n), cfg,
                             truth=t == "1")))
