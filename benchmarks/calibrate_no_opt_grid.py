"""The full-size grid that fixed the no-opt block of costs.toml (lock_handoff, spte_install,
cacheline_transfer).

For each point, the five "no opt" rows (1-16 vCPUs, 1 GiB each) run at full
size; host_fault + spte_install is held at its packaged sum so that row 1's
fault path stays where step 1 of `calibrate.FIT_PLAN` put it. Prints one line
per point (the largest |error| of the ten no-opt cells first) and the best
point; `--json` keeps every point. The packaged values came from a run of
this grid (about 6 s a point on 2 cores), then steps 1-4 of FIT_PLAN at full size:

    python benchmarks/calibrate_no_opt_grid.py \
        --lock-handoff 150,200,250,300,350,400,450,500 --spte-install 150,234,300,400,500
    python benchmarks/calibrate_no_opt_grid.py \
        --lock-handoff 220,240,260,280 --spte-install 200,220,240,260 \
        --cacheline-transfer 30,50,70,90

Not collected by pytest (benchmarks/ is outside testpaths).
"""

from __future__ import annotations

import argparse
import itertools
import sys

from mglru.bench.calibrate import ROWS, evaluate, relative_errors
from mglru.bench.runner import write_json
from mglru.timing.costs import load_costs


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def main() -> int:
    base = load_costs()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lock-handoff", default=str(base.lock_handoff))
    ap.add_argument("--spte-install", default=str(base.spte_install))
    ap.add_argument("--cacheline-transfer", default=str(base.cacheline_transfer))
    ap.add_argument("--json", dest="json_path")
    args = ap.parse_args()
    fault_sum = base.host_fault + base.spte_install
    records = []
    for h, s, ct in itertools.product(_ints(args.lock_handoff), _ints(args.spte_install),
                                      _ints(args.cacheline_transfer)):
        c = base.replace(lock_handoff=h, spte_install=s, host_fault=fault_sum - s,
                         cacheline_transfer=ct)
        res = evaluate(c, [(n, "no opt") for n in ROWS])
        err = relative_errors(res)
        cells = {f"{n} {k}": round(err[(n, "no opt", k)] * 100, 1)
                 for n in ROWS for k in ("pass", "wall")}
        rec = {"lock_handoff": h, "spte_install": s, "cacheline_transfer": ct,
               "max_abs_error_pct": max(abs(v) for v in cells.values()), "cells_pct": cells,
               "passes": [res[(n, "no opt")].passes for n in ROWS]}
        records.append(rec)
        print(f"max {rec['max_abs_error_pct']:5.1f} %  lock_handoff {h:4d}  spte_install {s:4d}  "
              f"cacheline_transfer {ct:3d}  passes {rec['passes']}", flush=True)
    best = min(records, key=lambda r: r["max_abs_error_pct"])
    print(f"best: lock_handoff {best['lock_handoff']}, spte_install {best['spte_install']}, "
          f"cacheline_transfer {best['cacheline_transfer']}: "
          f"largest no-opt error {best['max_abs_error_pct']} %")
    if args.json_path:
        write_json(args.json_path, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
