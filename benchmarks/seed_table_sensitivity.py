"""Sensitivity of the seed table's rows 1-16 to each calibrated cost (+-10 %).

For every cost whose costs.toml status is "calibrated", rerun rows 1-16 (all
three configurations, full size) with that cost at 0.9x and 1.1x, the others
as packaged, and report the worst cell's error and the 16-vCPU "no opt"
average pass (the cell whose pass count is discrete). Shows how far the fit
sits from the 25 % band in each direction. About 2.5 minutes on 2 cores.

    python benchmarks/seed_table_sensitivity.py --json benchmarks/seed_table_sensitivity.json

Not collected by pytest (benchmarks/ is outside testpaths).
"""

from __future__ import annotations

import argparse
import sys

from mglru.bench.calibrate import ROWS, evaluate, relative_errors, table_cells
from mglru.bench.runner import write_json
from mglru.timing.costs import CostModel, load_costs

CELL_16 = (16, "no opt", "pass")


def _errors(costs: CostModel) -> dict[tuple[int, str, str], float]:
    return relative_errors(evaluate(costs, table_cells(ROWS)))


def _record(name: str, factor: float | None, ns: int | None,
            err: dict[tuple[int, str, str], float]) -> dict:
    worst = max(err, key=lambda cell: abs(err[cell]))
    return {"cost": name, "factor": factor, "ns": ns,
            "worst_cell": f"{worst[0]} {worst[1]} {worst[2]}",
            "worst_error_pct": round(err[worst] * 100, 1),
            "no_opt_16_pass_pct": round(err[CELL_16] * 100, 1),
            "cells_within_25_pct": sum(abs(e) <= 0.25 for e in err.values()),
            "cells": len(err)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", dest="json_path")
    ap.add_argument("--step", type=float, default=0.1, help="relative change (default 0.1)")
    args = ap.parse_args()
    base = load_costs()
    runs: list[tuple[str, float | None, int | None, CostModel]] = [("packaged", None, None, base)]
    for name in (k for k, e in base.entries.items() if e.status == "calibrated"):
        for factor in (1 - args.step, 1 + args.step):
            ns = int(round(base[name] * factor))
            runs.append((name, factor, ns, base.replace(**{name: ns})))
    records = []
    for name, factor, ns, costs in runs:
        r = _record(name, factor, ns, _errors(costs))
        records.append(r)
        what = "packaged" if factor is None else f"{name} x{factor:.2f} ({ns} ns)"
        print(f"{what:38s} worst {r['worst_error_pct']:+6.1f} % ({r['worst_cell']:16s})  "
              f"16 no opt pass {r['no_opt_16_pass_pct']:+6.1f} %  "
              f"{r['cells_within_25_pct']}/{r['cells']} within 25 %", flush=True)
    if args.json_path:
        write_json(args.json_path, records)
    return 0


if __name__ == "__main__":
    sys.exit(main())
