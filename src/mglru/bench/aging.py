"""The aging benchmark: populate one process, time one force_scan aging pass.

`mglru bench aging` runs each size in a fresh interpreter so that peak RSS is
the size's own, warms up the compiled walk on a small process first, and
reports the populate time apart from the aging pass. Output records are
`{"gib", "pages", "seconds", "pages_per_s", "peak_rss_mib", "populate_s"}`.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from mglru.bench.runner import peak_rss_mib, run_fresh

__all__ = ["run_one", "run_sizes"]

LRU_GEN = "/sys/kernel/debug/lru_gen"


def run_one(gib: float, config: str = "v6.14", vm: bool = False, seed: int = 0) -> dict[str, Any]:
    """Populate `gib` GiB in one process and time one aging pass (`+ id 0 max_seq 1 1`)."""
    from mglru import SimKernel

    k = SimKernel(config, seed=seed)
    warm = k.spawn()
    addr = warm.mmap(4 << 20)
    warm.access(addr, 4 << 20, write=True)
    k.write(LRU_GEN, "+ 1 0 3 1 1")  # loads the compiled walk
    k.mkdir("/sys/fs/cgroup/bench")
    memcg = k.memcg("/bench")
    nbytes = int(gib * (1 << 30))
    t0 = time.perf_counter()
    if vm:
        from mglru.bench.vm import populate_vm

        populate_vm(k, memcg, nbytes)
    else:
        p = k.spawn(memcg="/bench")
        a = p.mmap(nbytes)
        p.access(a, nbytes, write=True)
    populate_s = time.perf_counter() - t0
    seq = k.lruvec(memcg).max_seq
    t0 = time.perf_counter()
    k.write(LRU_GEN, f"+ {memcg.id} 0 {seq} 1 1")
    seconds = time.perf_counter() - t0
    pages = nbytes >> 12
    return {"gib": gib, "pages": pages, "seconds": seconds, "pages_per_s": pages / seconds,
            "peak_rss_mib": round(peak_rss_mib(), 1), "populate_s": populate_s,
            "state_bytes_per_page": state_bytes_per_page(k), "config": config, "vm": vm}


def state_bytes_per_page(k) -> int:
    """Bytes of model state per populated 4 KiB page: the per-pfn folio arrays plus
    one PTE (pfn + bits), from the arrays' dtypes."""
    mem = k.mem
    per_pfn = sum(a.itemsize for a in (mem.flags, mem.gen, mem.lru, mem.memcg))
    pt = next(iter(k.procs.values())).mm.pt
    return per_pfn + pt.pte_pfn.itemsize + pt.pte_flags.itemsize


def run_sizes(sizes: list[float], config: str, vm: bool, progress=None) -> list[dict[str, Any]]:
    """Run each size in its own interpreter; returns the records in order."""
    runs = [[str(g), config, "1" if vm else "0"] for g in sizes]
    return run_fresh("mglru.bench.aging", runs, lambda a: f"{a[0]} GiB", progress)

if __name__ == "__main__":
    print(json.dumps(run_one(float(sys.argv[1]), sys.argv[2], sys.argv[3] == "1")))
