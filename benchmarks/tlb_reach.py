"""Random byte updates over arrays of growing size: where this machine's TLB runs out.

    python benchmarks/tlb_reach.py [--json FILE]

For each size, 4 Mi increments at uniform random offsets of one uint8 array, in a
numba loop, best and median of 5 timed runs (M updates/s). On the development
machine (a VM on AMD EPYC, 4 KiB pages behind the guest's huge pages) the rate fell
from about 600 M/s at 8 MiB to 260 M/s at 12 MiB and 180 M/s at 16 MiB: beyond 2 048
pages touched at random, each update also walks the page tables. A hit loop that
touches the PTE byte (4 MiB at 16 GiB) and a 4-byte ground-truth stamp (16 MiB) per
access is past that edge.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from numba import njit


@njit(cache=True)
def _update(idx, a):
    for i in range(len(idx)):
        a[idx[i]] += np.uint8(1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write the records here")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    n = 1 << 22
    rows = []
    for mib in (1, 2, 4, 6, 8, 12, 16, 24, 32, 64):
        a = np.zeros(mib << 20, np.uint8)
        idx = rng.integers(0, len(a), n)
        _update(idx, a)
        rates = []
        for _ in range(5):
            t0 = time.perf_counter()
            _update(idx, a)
            rates.append(n / (time.perf_counter() - t0) / 1e6)
        rows.append({"mib": mib, "best_m_per_s": round(max(rates), 1),
                     "median_m_per_s": round(float(np.median(rates)), 1)})
        print(f"{mib:4d} MiB  best {max(rates):6.1f} M/s  median {np.median(rates):6.1f} M/s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
