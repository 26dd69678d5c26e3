"""Paired replays of one trace by two checkouts of mglru, in turn, each in its own process.

    python benchmarks/replay_pairs.py --old /path/to/old/checkout --trace T \
        --memory 32M --config v6.14 --pairs 5 --out benchmarks/replay_pairs.jsonl

Each pair runs `python -m mglru replay T --memory M --config C --compare lru --json F`
with the old checkout's `src` first on PYTHONPATH, then the same with this checkout's,
and appends both JSON documents to `--out`, marked with "side" (old/new) and "pair".
libCacheSim's LRU replays the trace inside each run (`--compare lru`), so every row
carries its yardstick measured at the same moment. Prints the median requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent


def _run(src: Path, args: argparse.Namespace) -> dict:
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        env = dict(os.environ, PYTHONPATH=str(src))
        cmd = [sys.executable, "-m", "mglru", "replay", args.trace, "--memory", args.memory,
               "--config", args.config, "--compare", "lru", "--json", path]
        if args.vm:
            cmd.append("--vm")
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(path).read_text())
    finally:
        os.unlink(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the other checkout (its src/ is used)")
    ap.add_argument("--trace", required=True)
    ap.add_argument("--memory", default="32M")
    ap.add_argument("--config", default="v6.14")
    ap.add_argument("--vm", action="store_true")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--out", required=True, help="JSON lines file to append to")
    args = ap.parse_args()
    sides = {"old": Path(args.old).resolve() / "src", "new": _HERE / "src"}
    rates: dict[str, list[float]] = {"old": [], "new": [], "lru": []}
    with open(args.out, "a") as out:
        for pair in range(args.pairs):
            for side, src in sides.items():
                doc = _run(src, args)
                doc.update(side=side, pair=pair, trace=args.trace)
                out.write(json.dumps(doc) + "\n")
                out.flush()
                rates[side].append(doc["requests_per_s"])
                rates["lru"].append(doc["compare"][0]["requests_per_s"])
                print(f"pair {pair} {side}: {doc['requests_per_s'] / 1e6:.2f} M req/s, "
                      f"LRU {doc['compare'][0]['requests_per_s'] / 1e6:.2f} M", flush=True)
    for key, vals in rates.items():
        print(f"{key}: median {statistics.median(vals) / 1e6:.2f} M req/s "
              f"({min(vals) / 1e6:.2f}-{max(vals) / 1e6:.2f})")


if __name__ == "__main__":
    main()
