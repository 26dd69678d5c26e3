"""A host stream under memory.max, with or without a reclaim hook that reads the ground truth.

    PYTHONPATH=src python benchmarks/reclaim_hook.py [--hook]

One task writes a Zipf stream of 1 M pages over 128 MiB in a memcg limited to 64 MiB
(v6.14). With `--hook` a reclaim hook reads the engine's per-pfn ground truth at each
eviction, as the experiments' Recorder does. Prints the wall time of the stream.
"""

from __future__ import annotations

import argparse
import time

from mglru import SimKernel
from mglru.workload import Engine, host_stream
from mglru.workload.generators import generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hook", action="store_true", help="install a reclaim hook")
    args = ap.parse_args()
    k = SimKernel("v6.14", seed=0, node_bytes=(1 << 30,))
    k.mkdir("/sys/fs/cgroup/t")
    k.write("/sys/fs/cgroup/t/memory.max", str(64 << 20))
    p = k.spawn(memcg="/t")
    a = p.mmap(128 << 20)
    pages, _ = generate("zipf", (128 << 20) >> 12, 1_000_000, seed=1)
    eng = Engine(k)
    evicted = [0]
    if args.hook:
        def hook(k, heads, nr):  # noqa: ANN001, ARG001
            evicted[0] += int(nr.sum())
            eng.last_access_ms[heads]  # the Recorder reads the stamps of what went

        k.reclaim_hook = hook
    s = host_stream(p, a, pages, True, rate=1e6)
    t0 = time.perf_counter()
    eng.run([s])
    dt = time.perf_counter() - t0
    print(f"hook={args.hook} {dt:.2f} s ({len(pages) / dt / 1e3:.0f} K accesses/s), "
          f"faults {s.faults}, pgsteal_anon {k.stats['pgsteal_anon']}, hook saw {evicted[0]}")


if __name__ == "__main__":
    main()
