"""Hit loops with prefetch off and on, in turn, in one process; prints the CPU rates.

    PYTHONPATH=src python benchmarks/prefetch_ab.py --gib 0.25,1,4,16 [--vm] [--pairs 4]

Each size populates a task (or, with --vm, a seed-v4 x86 TDP guest) as
`mglru bench access` does, then applies the same 4 Mi uniform reads with the
loop's prefetch forced off and on, alternating. One JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np

import mglru.workload.guest as guest_mod
import mglru.workload.host as host_mod
from mglru.bench.access import _setup
from mglru.workload import Engine, guest_stream, host_stream
from mglru.workload.generators import generate


def _rate(k, target, addr, pages, writes, vm: bool, on: bool, truth: bool = True) -> float:
    guest_mod.PREFETCH = host_mod.PREFETCH = on
    s = (guest_stream(target, 0, pages, writes, rate=1e8) if vm
         else host_stream(target, addr, pages, writes, rate=1e8))
    c = time.process_time()
    Engine(k, truth=truth).run([s])
    return len(pages) / (time.process_time() - c) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gib", default="0.25,1,4,16")
    ap.add_argument("--vm", action="store_true")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--no-truth", action="store_true", help="without the ground-truth stamps")
    args = ap.parse_args()
    for gib in (float(g) for g in args.gib.split(",")):
        k, target, addr, nbytes = _setup(gib, None, args.vm, "v6.10")
        pages, writes = generate("uniform", nbytes >> 12, 4 << 20, seed=1)
        truth = not args.no_truth
        _rate(k, target, addr, pages[:4096], writes[:4096], args.vm, False, truth)
        _rate(k, target, addr, pages[:4096], writes[:4096], args.vm, True, truth)
        pairs = [(_rate(k, target, addr, pages, writes, args.vm, False, truth),
                  _rate(k, target, addr, pages, writes, args.vm, True, truth))
                 for _ in range(args.pairs)]
        print(json.dumps({"gib": gib, "vm": args.vm, "truth": truth,
                          "off_per_s_m": [round(a, 1) for a, _ in pairs],
                          "on_per_s_m": [round(b, 1) for _, b in pairs],
                          "on_over_off": round(statistics.median(b / a for a, b in pairs), 2),
                          "accesses": int(len(pages)), "np": np.__version__}), flush=True)


if __name__ == "__main__":
    main()
