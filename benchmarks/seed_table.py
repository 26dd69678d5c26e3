"""Scale benchmark of `mglru reproduce seed-table`: time and memory per vCPU count.

Each vCPU count runs in its own process (so that its peak RSS is its own),
doing what the command does for it: "no aging", "no opt" and "opt" at 1 GiB per
vCPU. Prints one line per vCPU count and writes the records as JSON.

    python benchmarks/seed_table.py                       # 1,2,4,8,16,32,64,112
    python benchmarks/seed_table.py --vcpus 16,112 --json /tmp/scale.json

Not collected by pytest (benchmarks/ is outside testpaths).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from mglru.bench.runner import peak_rss_mib, write_json


def child(n: int) -> None:
    """Run the three configurations at n vCPUs; print one JSON record."""
    from mglru.bench.seed_table import seed_table_rows

    t0 = time.perf_counter()
    rows = seed_table_rows([n])
    wall = time.perf_counter() - t0
    peak = peak_rss_mib()
    print(json.dumps({"vcpus": n, "pages": n << 18, "wall_s": round(wall, 2),
                      "peak_rss_mib": round(peak, 1),
                      "configs": {r["config"]: {"wall_s": r["wall_s"],
                                                "vcpu_wall_s": r["vcpu_wall_s"],
                                                "aging_pass_s": r["aging_pass_s"],
                                                "passes": r["passes"]} for r in rows}}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vcpus", default="1,2,4,8,16,32,64,112")
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child)
        return 0
    records = []
    t0 = time.perf_counter()
    for n in (int(x) for x in args.vcpus.split(",")):
        out = subprocess.run([sys.executable, __file__, "--child", str(n)], check=True,
                             capture_output=True, text=True).stdout
        rec = json.loads(out.strip().splitlines()[-1])
        records.append(rec)
        cfg = "  ".join(f"{k} {v['wall_s']:.1f} s" for k, v in rec["configs"].items())
        print(f"{n:>4} vCPUs {rec['pages']:>10} pages  {rec['wall_s']:7.1f} s  "
              f"peak RSS {rec['peak_rss_mib']:7.1f} MiB   ({cfg})", flush=True)
    print(f"all: {time.perf_counter() - t0:.1f} s (one process per vCPU count)")
    if args.json_path:
        write_json(args.json_path, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
