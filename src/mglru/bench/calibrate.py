"""Calibration of costs.toml on the cover letter's rows 1-16, by mechanism.

Mechanism. One parameter set explains every configuration, so each fitted
cost is fixed by the rows whose mechanism it is, in this order (`FIT_PLAN`):

==================  ============================  ==========================================
cost                rows that fix it              why those rows
==================  ============================  ==========================================
host_fault          1 (no aging), vCPU wall       one vCPU alone: the fault path's sum
fault_contention    2-16 (no aging), vCPU wall    what grows with vCPUs on the same socket
                                                  when nothing else runs (row 2: one other
                                                  vCPU, on node 0)
fault_contention_   2-16 (no aging), vCPU wall    the same from vCPUs on the other socket
remote                                            (rows 4-16 have about half there:
                                                  mglru.timing.topology.Topology.place)
notifier_call       1 (opt), avg pass             one vCPU: the walk's core-bound per call
spte_test_clear     2-16 (opt), avg pass          the memory-bound share of a call, slowed by
                                                  the vCPUs faulting meanwhile
spte_install        1-16 (no opt), pass and wall  the read-side section a per-call write lock
                                                  waits for
lock_handoff        1-16 (no opt), pass and wall  readers let in by the writer's release pass
                                                  the wait_lock on one by one: the convoy unit
cacheline_transfer  1-16 (no opt), pass and wall  the lock word moving between cores (also on
                                                  the fault path); chosen on a full-size grid
==================  ============================  ==========================================

Each cost of `FIT_PLAN` is a 1-D golden-section search over its rows, the
others held: least squares of log errors for the fault path and the opt walk,
minimax (the largest log error) for the no-opt costs, whose rows the lock
contention makes the least smooth. `rounds` passes of the plan can be made
because they interact. The packaged values, on the two-socket host
(`mglru.timing.topology.SEED_HOST`): the two contention costs from a 2-D
grid on rows 2-16 (no aging; the coordinate steps crawl along its flat
valley), then the other steps at full size, one round, and a small grid
around the no-opt pair (minimax over the ten no-opt cells, host_fault +
spte_install held so row 1 stays); cacheline_transfer from the one-socket
grid (benchmarks/calibrate_no_opt_grid.py). costs.toml records each. The
cross-socket transfer (cacheline_transfer_remote) is fixed from published
latencies, not fitted. The other costs keep their sourced values. Rows
32-112 are never used.

Evaluation runs a faithful reduction (`scale` > 1): vcpu_bytes / scale, the pass
fixed cost / scale and vCPU steps / scale, times x scale. Every time in the
benchmark is a count of per-page operations times a cost, plus the fixed pass
cost, so dividing pages and the fixed cost by the same factor divides every
time by it; what does not scale (the 2 MiB table as the walk's unit, the
1 ms averaging window of the aggregated mode) changes the results by a few
percent, and the pass count at 16 vCPUs (no opt) is discrete: a reduction can
land on a different count, so the tests and the table run at full size.

Future optimizations:
1. a joint least-squares polish after the coordinate passes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from mglru.bench.seed import CONFIGS, COVER_LETTER, seed_benchmark
from mglru.timing.costs import CostModel, load_costs

__all__ = ["ROWS", "FIT_PLAN", "Fit", "RowResult", "evaluate", "relative_errors", "calibrate",
           "reduced_costs", "table_cells"]

#: the cover letter's calibration rows (vCPUs)
ROWS = (1, 2, 4, 8, 16)


@dataclass(frozen=True, slots=True)
class Fit:
    """One step of the plan: a cost, the cells that fix it, its search bracket (ns)."""

    cost: str
    cells: tuple[tuple[int, str, str], ...]   # (vCPUs, config, "wall" | "pass")
    lo: int
    hi: int
    #: "lsq": sum of squared log errors; "max": the largest |log error| (minimax)
    loss: str = "lsq"


_NO_OPT = tuple((n, "no opt", k) for n in (1, 2, 4, 8, 16) for k in ("pass", "wall"))
#: rows 2-16 (no aging): one other vCPU on the same socket at 2, then others on both
#: (mglru.timing.topology: 1 + 2, 3 + 4, 7 + 8 at 4, 8, 16), so the two are identifiable
_NO_AGING = tuple((n, "no aging", "wall") for n in (2, 4, 8, 16))

FIT_PLAN: tuple[Fit, ...] = (
    Fit("host_fault", ((1, "no aging", "wall"),), 500, 2000),
    Fit("fault_contention", _NO_AGING, 50, 1500),
    Fit("fault_contention_remote", _NO_AGING, 0, 1500),
    Fit("notifier_call", ((1, "opt", "pass"),), 10, 400),
    Fit("spte_test_clear", tuple((n, "opt", "pass") for n in (2, 4, 8, 16)), 5, 300),
    Fit("lock_handoff", _NO_OPT, 30, 600, "max"),
    Fit("spte_install", _NO_OPT, 100, 500, "max"),
)


@dataclass(frozen=True, slots=True)
class RowResult:
    """The model's numbers for one cell, at full size (times x scale)."""

    vcpu_wall_s: float
    aging_pass_s: float | None
    passes: int | None


def reduced_costs(costs: CostModel, scale: int) -> CostModel:
    """The costs of a run reduced by `scale`: the pass's fixed cost divided by it."""
    if scale == 1:
        return costs
    return costs.replace(aging_pass_fixed=costs.aging_pass_fixed // scale)


def evaluate(costs: CostModel, cells: Iterable[tuple[int, str]], scale: int = 1,
             **kwargs) -> dict[tuple[int, str], RowResult]:
    """Run the cover letter's scenario for each (vCPUs, config) cell.

    Args:
        costs: the cost model.
        cells: (vCPUs, "no aging" | "no opt" | "opt").
        scale: reduction factor (1 = 1 GiB per vCPU, the cover letter's size).
        **kwargs: passed to `seed_benchmark`.
    """
    c = reduced_costs(costs, scale)
    extra = dict(kwargs)
    if scale > 1:
        extra.setdefault("granularity", "aggregated")
        extra.setdefault("batch_pages", max(512, 4096 // scale))
    out = {}
    for n, config in cells:
        # without aging nothing reads the functional state: leave it unfaulted (speed)
        kw = extra if config != "no aging" else {"fault_all": False, **extra}
        r = seed_benchmark(n, config, vcpu_bytes=(1 << 30) // scale, costs=c, **kw)
        out[(n, config)] = RowResult(r.vcpu_wall_s * scale,
                                     None if r.aging_pass_s is None else r.aging_pass_s * scale,
                                     r.passes)
    return out


def relative_errors(results: dict[tuple[int, str], RowResult]) -> dict[tuple[int, str, str], float]:
    """(vCPUs, config, "wall" | "pass") -> model / cover letter - 1, for rows 1-16."""
    out = {}
    for (n, config), r in results.items():
        if n not in COVER_LETTER:
            continue
        wall, avg = COVER_LETTER[n][config]
        out[(n, config, "wall")] = r.vcpu_wall_s / wall - 1.0
        if avg is not None and r.aging_pass_s is not None:
            out[(n, config, "pass")] = r.aging_pass_s / avg - 1.0
    return out


def _loss(costs: CostModel, cells: Sequence[tuple[int, str, str]], scale: int,
          kind: str = "lsq") -> float:
    res = evaluate(costs, sorted({(n, c) for n, c, _ in cells}), scale)
    err = relative_errors(res)
    logs = [math.log1p(err[cell]) ** 2 for cell in cells]
    if kind == "max":
        # minimax, with a small sum so that ties move towards smaller errors elsewhere
        return max(logs) + 0.01 * sum(logs)
    return sum(logs)


def _golden(f: Callable[[int], float], lo: int, hi: int, tol: int = 2) -> int:
    """Integer golden-section search for the minimum of f on [lo, hi]."""
    g = (math.sqrt(5) - 1) / 2
    a, b = float(lo), float(hi)
    c, d = b - g * (b - a), a + g * (b - a)
    cache: dict[int, float] = {}

    def fx(x: float) -> float:
        k = int(round(x))
        if k not in cache:
            cache[k] = f(k)
        return cache[k]

    while b - a > tol:
        if fx(c) < fx(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    return min(cache, key=cache.get)


def calibrate(costs: CostModel | None = None, scale: int = 4, rounds: int = 2,
              plan: Sequence[Fit] = FIT_PLAN,
              log: Callable[[str], None] = print) -> dict[str, int]:
    """Fit the costs of `plan` on rows 1-16, in order, `rounds` times.

    Returns:
        cost name -> fitted ns (apply with `costs.replace(**fitted)`).
    """
    c = costs if costs is not None else load_costs()
    fitted: dict[str, int] = {}
    for r in range(rounds):
        for step in plan:
            def loss(x: int, step: Fit = step) -> float:
                return _loss(c.replace(**{**fitted, step.cost: x}), step.cells, scale,
                             step.loss)

            fitted[step.cost] = _golden(loss, step.lo, step.hi)
            log(f"round {r + 1}: {step.cost} = {fitted[step.cost]} ns "
                f"(loss {loss(fitted[step.cost]):.4f} on {len(step.cells)} cell(s))")
    return fitted


def table_cells(vcpus: Iterable[int] = ROWS) -> list[tuple[int, str]]:
    """Every (vCPUs, config) cell of the table for these vCPU counts."""
    return [(n, config) for n in vcpus for config in CONFIGS]
