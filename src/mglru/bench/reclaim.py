"""The reclaim benchmark: `memory.reclaim` of the cold part of one process.

`mglru bench reclaim` builds, per size, a process of `gib` GiB of anonymous memory
in its own memcg whose hot part (all but `cold` GiB) is read and aged so that the
cold part sits alone in the oldest generation:

    write everything; `+` (first sighting); read the hot part; `+` (promotes it);
    `+` (retires the fault generation: cold pages move to the oldest one, hot
    pages to their promoted list)

then times one write of `<cold> GiB` to the memcg's memory.reclaim. Each size runs
in a fresh interpreter so that peak RSS is the size's own; a small warm-up run
first compiles the numba kernels. Records are
`{"gib", "cold_gib", "pages", "seconds", "pages_per_s", "peak_rss_mib",
"populate_s", "hot_evicted", "config"}`: `pages` is what the write reclaimed
(pswpout), `populate_s` covers the faults and the three agings, `hot_evicted`
counts hot pages that were swapped (0 when reclaim takes only the cold part).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from mglru.bench.runner import peak_rss_mib, run_fresh

__all__ = ["run_one", "run_sizes"]

LRU_GEN = "/sys/kernel/debug/lru_gen"
CGROOT = "/sys/fs/cgroup"
PAGE = 4096


def _vmstat(k) -> dict[str, int]:
    out = {}
    for line in k.read("/proc/vmstat").splitlines():
        name, value = line.split()
        out[name] = int(value)
    return out


def _build(k, name: str, nbytes: int, cold: int) -> tuple[Any, int, int]:
    """A memcg `name` with one process: `nbytes` written, all but `cold` read and aged."""
    k.mkdir(f"{CGROOT}/{name}")
    memcg = k.memcg(f"/{name}")
    p = k.spawn(memcg=f"/{name}")
    addr = p.mmap(nbytes)
    p.access(addr, nbytes, write=True)
    hot = nbytes - cold

    def age() -> None:
        seq = k.lruvec(memcg).max_seq
        k.write(LRU_GEN, f"+ {memcg.id} 0 {seq} 60 1")

    age()
    if hot:
        p.access(addr + cold, hot)
    age()
    age()
    return p, addr, memcg.id


def run_one(gib: float, cold_gib: float, config: str = "v6.14") -> dict[str, Any]:
    """Build the process and time `memory.reclaim` of `cold_gib` GiB from it."""
    import numpy as np

    from mglru import SimKernel
    from mglru.mm.page import PTE_SWAP

    if not 0 < cold_gib <= gib:
        raise ValueError(f"cold must be in (0, gib]: got cold={cold_gib}, gib={gib}")
    k = SimKernel(config, seed=0)
    # warm-up: compile the walk and the eviction kernels on 8 MiB
    _build(k, "warm", 8 << 20, 4 << 20)
    k.write(f"{CGROOT}/warm/memory.reclaim", str(4 << 20))
    nbytes = int(gib * (1 << 30)) // PAGE * PAGE
    cold = int(cold_gib * (1 << 30)) // PAGE * PAGE
    t0 = time.perf_counter()
    p, addr, _ = _build(k, "bench", nbytes, cold)
    populate_s = time.perf_counter() - t0
    before = _vmstat(k).get("pswpout", 0)
    t0 = time.perf_counter()
    k.write(f"{CGROOT}/bench/memory.reclaim", str(cold))
    seconds = time.perf_counter() - t0
    pages = _vmstat(k).get("pswpout", 0) - before
    vma = p.mm.find_vma(addr)
    vpns = np.arange((addr + cold) >> 12, (addr + nbytes) >> 12, dtype=np.int64)
    hot_flags = p.mm.pt.flat_flags()[vma.pte_index(vpns)]
    hot_evicted = int(np.count_nonzero(hot_flags & PTE_SWAP))
    return {"gib": gib, "cold_gib": cold_gib, "pages": pages, "seconds": seconds,
            "pages_per_s": pages / seconds if seconds else float("inf"),
            "peak_rss_mib": round(peak_rss_mib(), 1), "populate_s": populate_s,
            "hot_evicted": hot_evicted, "config": config}


def run_sizes(sizes: list[float], cold_gib: float, config: str,
              progress=None) -> list[dict[str, Any]]:
    """Run each size in its own interpreter; returns the records in order."""
    runs = [[str(g), str(min(cold_gib, g)), config] for g in sizes]
    return run_fresh("mglru.bench.reclaim", runs, lambda a: f"{a[0]} GiB", progress)

if __name__ == "__main__":
    print(json.dumps(run_one(float(sys.argv[1]), float(sys.argv[2]), sys.argv[3])))
