"""Random byte updates over arrays of growing size: where this machine's caches run out.

    python benchmarks/tlb_reach.py [--huge] [--threads N] [--json FILE]

For each size, 4 Mi increments at uniform random offsets of one uint8 array, in a
numba loop, best and median of 5 timed runs (M updates/s). `--huge` places the array
on 2 MiB pages (a private anonymous mapping with MADV_HUGEPAGE; each record says how
much of it the kernel backed with huge pages), which takes the TLB out of the picture.
`--threads N` runs the updates on N threads at once, each on the offsets in its own
4 KiB pages (the rate is their sum).

On the development machine (a VM on AMD EPYC) the rate fell from about 600 M/s at
8 MiB to 260 M/s at 12 MiB and 180 M/s at 16 MiB, and on 2 MiB pages it fell the
same way (best 496 -> 133 M/s from 8 to 16 MiB, against 416 -> 140 on 4 KiB pages,
the same run): the edge is the share of the last-level cache this VM gets, not the
TLB. A hit loop that touches the PTE byte (4 MiB at 16 GiB) and a 4-byte
ground-truth stamp (16 MiB) per access is past that edge. Two threads (the machine's two
cores, each on its own pages) update about twice as fast as one past the edge (16 MiB:
medians 112 and 241 M/s, 64 MiB: 88 and 157, alternated in one process): one core's
outstanding misses bound one thread. The host hit loop takes runs of accesses that share
one ground-truth stamp as two contiguous halves on two threads (1.2-1.4x at 16 GiB;
benchmarks/README.md, "Plain hits on two threads"); split by page instead (each thread
checks, then stamps, the accesses of its own PTE tables) it was no faster in a
prototype: each thread reads every access to find its own, in two passes.
"""

from __future__ import annotations

import argparse
import json
import mmap
import time

import numpy as np
from numba import njit, prange


@njit(cache=True)
def _update(idx, a):
    for i in range(len(idx)):
        a[idx[i]] += np.uint8(1)


@njit(cache=True, parallel=True)
def _update_parts(parts, a):
    """`_update` of each row of `parts` on its own thread."""
    for t in prange(parts.shape[0]):
        _update(parts[t], a)


def _split(idx: np.ndarray, threads: int) -> np.ndarray:
    """The offsets by 4 KiB page modulo `threads`, one row per thread, rows cut to the
    shortest (no two threads write one cache line)."""
    rows = [idx[(idx >> 12) % threads == t] for t in range(threads)]
    n = min(len(r) for r in rows)
    return np.stack([r[:n] for r in rows])


def _huge_array(nbytes: int) -> tuple[np.ndarray, mmap.mmap]:
    """A zeroed uint8 array on a private anonymous mapping the kernel is asked to back
    with 2 MiB pages (a shared mapping would be shmem, which this madvise does not reach)."""
    m = mmap.mmap(-1, nbytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    m.madvise(mmap.MADV_HUGEPAGE)
    a = np.frombuffer(m, np.uint8)
    a[:] = 0  # fault it in now, huge where the kernel can
    return a, m


def _huge_kib() -> int:
    """AnonHugePages of this process, in KiB."""
    with open("/proc/self/smaps_rollup") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("AnonHugePages:"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--huge", action="store_true", help="the array on 2 MiB pages")
    ap.add_argument("--threads", type=int, default=1, help="threads updating at once")
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n = 1 << 22
    rows = []
    for mib in (1, 2, 4, 6, 8, 12, 16, 24, 32, 64):
        huge_kib = None
        if args.huge:
            before = _huge_kib()
            a, keep = _huge_array(mib << 20)
            huge_kib = _huge_kib() - before
        else:
            a = np.zeros(mib << 20, np.uint8)
        idx = rng.integers(0, len(a), n)
        parts = _split(idx, args.threads)

        def once(a=a, idx=idx, parts=parts) -> int:
            if args.threads == 1:
                _update(idx, a)
                return len(idx)
            _update_parts(parts, a)
            return parts.size

        once()
        rates = []
        for _ in range(5):
            t0 = time.perf_counter()
            done = once()
            rates.append(done / (time.perf_counter() - t0) / 1e6)
        rows.append({"mib": mib, "best_m_per_s": round(max(rates), 1),
                     "median_m_per_s": round(float(np.median(rates)), 1),
                     "huge_kib": huge_kib, "threads": args.threads})
        huge = f"  on 2 MiB pages: {huge_kib >> 10} MiB" if args.huge else ""
        print(f"{mib:4d} MiB  best {max(rates):6.1f} M/s  median {np.median(rates):6.1f} M/s{huge}")
        del a
        if args.huge:
            keep.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
