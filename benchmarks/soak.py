"""Soak: map, touch, age, reclaim and exit in a loop; RSS at start and end.

    PYTHONPATH=src python benchmarks/soak.py --minutes 30 --thp on

Each iteration: a task in /a maps 48 MiB (MADV_HUGEPAGE with --thp on),
writes it, lru_gen ages the memcg twice, memory.reclaim takes 8 MiB, the task
exits; every 50 iterations the memcg is removed and created again. The node is
64 MiB, so freed memory must be reused for the loop to go on. Prints one JSON
line: iterations, RSS (MiB) after the first iteration and at the end, and
(minute, iterations, RSS) once a minute, to tell warm-up from growth.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from mglru import SimKernel

MiB = 1 << 20


def rss_mib() -> float:
    """Current resident set size of this process (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--thp", choices=("on", "off"), default="on")
    ap.add_argument("--preset", default="v6.10")
    args = ap.parse_args()
    k = SimKernel(args.preset, node_bytes=(64 * MiB,), seed=0)
    k.mkdir("/sys/fs/cgroup/a")
    end = time.monotonic() + args.minutes * 60
    start_rss = None
    samples: list[tuple[float, int, float]] = []  # (minute, iterations, RSS MiB)
    t0 = next_sample = time.monotonic()
    i = 0
    while time.monotonic() < end:
        if i and i % 50 == 0:
            k.rmdir("/sys/fs/cgroup/a")
            k.mkdir("/sys/fs/cgroup/a")
        p = k.spawn(memcg="/a")
        a = p.mmap(48 * MiB, thp=args.thp == "on")
        p.access(a, 48 * MiB, write=True)
        lv = k.lruvec("/a")
        for _ in range(2):
            k.write("/sys/kernel/debug/lru_gen", f"+ {lv.memcg.id} 0 {lv.max_seq} 60 1")
        try:
            k.write("/sys/fs/cgroup/a/memory.reclaim", "8M")
        except OSError:
            pass
        k.exit_task(p)
        k.tick(100)
        i += 1
        if start_rss is None:
            start_rss = rss_mib()
        if time.monotonic() >= next_sample:
            samples.append((round((time.monotonic() - t0) / 60, 1), i, round(rss_mib(), 1)))
            next_sample += 60
    print(json.dumps({"thp": args.thp, "minutes": args.minutes, "iterations": i,
                      "rss_start_mib": round(start_rss or 0, 1), "rss_end_mib": round(rss_mib(), 1),
                      "maxrss_mib": round(
                          resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                      "free_pages_end": k.mem.nodes[0].nr_free,
                      "rss_by_minute": samples}))


if __name__ == "__main__":
    main()
