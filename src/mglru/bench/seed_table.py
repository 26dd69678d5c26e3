"""The cover letter's table from the model: every (vCPUs, configuration) cell, as records.

`mglru reproduce seed-table` prints these records in the cover letter's layout;
benchmarks/seed_table.py times them one vCPU count per process.
"""

from __future__ import annotations

import time

from mglru.bench.calibrate import evaluate
from mglru.bench.runner import peak_rss_mib
from mglru.bench.seed import CONFIGS
from mglru.timing.costs import CostModel, load_costs

__all__ = ["seed_table_rows"]


def seed_table_rows(vcpus: list[int], *, scale: int = 1, costs: CostModel | None = None,
                    granularity: str = "auto", progress=None, also: tuple[str, ...] = (),
                    arch: str = "x86") -> list[dict]:
    """Run every (vCPUs, config) cell; the JSON records of the table.

    Args:
        vcpus: vCPU counts, in order.
        scale: faithful reduction (1 GiB / scale per vCPU, times x scale); 1 is the seed's size.
        costs: the cost model (default: the packaged costs.toml).
        granularity: as for `run_lru_gen_benchmark`.
        progress: called as progress(done, total, n, config, record, seconds) after each cell.
        also: presets to run besides the three configurations (aging on), one row each.
        arch: the VM's arch (KVM model and its locks).

    Returns:
        One dict per cell: vcpus, config, vcpu_wall_s, aging_pass_s (None without
        aging), passes (None without aging), plus wall_s (host seconds) and peak_rss_mib.
    """
    c = costs if costs is not None else load_costs()
    cells = [(n, config) for n in vcpus for config in (*CONFIGS, *also)]
    rows = []
    kwargs = {"arch": arch} if scale > 1 else {"granularity": granularity, "arch": arch}
    for i, (n, config) in enumerate(cells):
        t0 = time.perf_counter()
        r = evaluate(c, [(n, config)], scale, **kwargs)[(n, config)]
        rec = {"vcpus": n, "config": config, "vcpu_wall_s": r.vcpu_wall_s,
               "aging_pass_s": r.aging_pass_s, "passes": r.passes,
               "wall_s": round(time.perf_counter() - t0, 3), "peak_rss_mib": peak_rss_mib()}
        rows.append(rec)
        if progress is not None:
            progress(i + 1, len(cells), n, config, rec, rec["wall_s"])
    return rows
