"""One mglru command run by two checkouts in turn, each run in its own process, paired.

    python benchmarks/pairs.py --old /path/to/old/checkout --pairs 5 \
        --out benchmarks/F.jsonl -- replay T --memory 32M --config v6.14 --compare lru
    python benchmarks/pairs.py --old ... --out ... -- bench access --sizes 16G --vm
    python benchmarks/pairs.py --old ... --out ... -- experiment run S.toml --workers 1

Each pair runs `python -m mglru ARGS --json FILE` with the old checkout's `src`
first on PYTHONPATH, then with this checkout's, and appends both JSON documents
to `--out`, marked with "side" (old/new) and "pair", with the command's wall time
from outside ("command_wall_s": start-up, input and set-up included). Prints each run's rate:
requests/s of a replay (and libCacheSim's, with --compare), accesses/s or
pages/s of each record of a bench command, the points' wall time of a study.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_HERE = Path(__file__).resolve().parent.parent


def _run(src: Path, argv: list[str]) -> dict:
    fd, path = tempfile.mkstemp(suffix=".json")
    os.close(fd)
    try:
        env = dict(os.environ, PYTHONPATH=str(src))
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mglru", *argv, "--json", path], env=env,
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        doc = json.loads(Path(path).read_text())
        doc["command_wall_s"] = wall
        return doc
    finally:
        os.unlink(path)


def _rates(doc: dict) -> str:
    if "requests_per_s" in doc:
        out = f"{doc['requests_per_s'] / 1e6:.2f} M req/s"
        for c in doc.get("compare", []):
            out += f", {c['algorithm']} {c['requests_per_s'] / 1e6:.2f} M"
        return out
    if "rows" in doc:  # mglru experiment run: wall time of the points (each in one process)
        walls = [r["wall_s"] for r in doc["rows"]]
        return f"{len(walls)} points in {sum(walls):.1f} s (slowest {max(walls):.1f} s)"
    key = "accesses_per_s" if "accesses_per_s" in doc["records"][0] else "pages_per_s"
    return ", ".join(f"{r['gib']:g} GiB {r[key] / 1e6:.2f} M/s" for r in doc["records"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--old", required=True, help="the other checkout (its src/ is used)")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--out", required=True, help="JSON lines file to append to")
    ap.add_argument("argv", nargs=argparse.REMAINDER, help="-- then the mglru command")
    args = ap.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    sides = {"old": Path(args.old).resolve() / "src", "new": _HERE / "src"}
    with open(args.out, "a") as out:
        for pair in range(args.pairs):
            for side, src in sides.items():
                doc = _run(src, argv)
                doc.update(side=side, pair=pair, argv=argv)
                out.write(json.dumps(doc) + "\n")
                out.flush()
                print(f"pair {pair} {side}: {_rates(doc)}; whole command "
                      f"{doc['command_wall_s']:.2f} s", flush=True)


if __name__ == "__main__":
    main()
