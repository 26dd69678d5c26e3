"""The cover letter's table from the model: values on rows 1-16 and the shape.

The table is computed once (module fixture) at the cover letter's size: 1 GiB
per vCPU, 1-16 vCPUs, "no aging", "no opt" and "opt" (15 runs, about 10 s on
this 2-core machine: the aggregated granularity makes the full size cheap, and
the "no aging" runs skip faulting the functional model, which nothing reads
there). No reduction is needed; `calibrate.evaluate(..., scale)` exists for
quick looks, but the pass count at 16 vCPUs (no opt: 3 long passes) is
discrete and a reduced run can land on 4.

Every cell is held to the issue's 25 %. The closest, no opt at 16 vCPUs
(average pass -21 %: 3 passes of 0.99 s where the cover letter's total, 2.49 s
over at least 2.4 s of vCPU time, implies 2), is discrete: its pass count is
decided by how long the first two passes take, so the margin is in the pass
count, not in a smooth error (docs/architecture.md, "Calibration and the seed
table").
"""

from __future__ import annotations

import pytest

from mglru.bench.calibrate import evaluate, relative_errors, table_cells
from mglru.bench.seed import COVER_LETTER
from mglru.timing import load_costs

SCALE = 1
ROWS = (1, 2, 4, 8, 16)
TOLERANCE = 0.25


@pytest.fixture(scope="module")
def table():
    """(vCPUs, config) -> RowResult for rows 1-16 at the cover letter's size."""
    return evaluate(load_costs(), table_cells(ROWS), SCALE)


def _pass(table, n, config):
    return table[(n, config)].aging_pass_s


def _wall(table, n, config):
    return table[(n, config)].vcpu_wall_s


def test_rows_1_to_16_within_25_percent(table):
    """Every numeric cell of rows 1-16 is within 25 % of the cover letter."""
    err = relative_errors(table)
    assert len(err) == 5 * 3 + 5 * 2  # three walls and two pass times per row
    bad = {cell: f"{e * 100:+.1f} %" for cell, e in err.items() if abs(e) > TOLERANCE}
    assert not bad, f"cells off by more than 25 %: {bad}"


def test_no_opt_pass_grows_faster_than_linearly(table):
    """No opt: each doubling of vCPUs from 4 on more than doubles the pass (write lock + chase)."""
    p = {n: _pass(table, n, "no opt") for n in ROWS}
    for n in (4, 8):
        assert p[2 * n] / p[n] > 2.5, (n, p)
    assert p[16] / p[1] > 16 * 4
    # the cover letter: x9.5 per vCPU from 1 to 16
    ref = COVER_LETTER[16]["no opt"][1] / COVER_LETTER[1]["no opt"][1]
    assert ref > 16 * 4


def test_opt_pass_stays_near_linear(table):
    """Opt: the pass grows about as the pages do (x2 per doubling, within 1.5-2.7)."""
    p = {n: _pass(table, n, "opt") for n in ROWS}
    for a, b in zip(ROWS, ROWS[1:], strict=False):
        assert 1.5 < p[b] / p[a] < 2.7, (a, b, p)
    assert 0.6 * 16 < p[16] / p[1] < 2.0 * 16


def test_opt_wall_close_to_no_aging(table):
    """Opt: the vCPUs barely notice aging (within 6 %; the cover letter: -2.3 % to +5.4 %)."""
    for n in ROWS:
        ratio = _wall(table, n, "opt") / _wall(table, n, "no aging")
        assert abs(ratio - 1) < 0.06, (n, ratio)


def test_no_opt_wall_above_both(table):
    """No opt: the write lock per call slows the vCPUs more than aging under RCU or no aging."""
    for n in ROWS:
        noopt = _wall(table, n, "no opt")
        assert noopt > _wall(table, n, "opt") and noopt > _wall(table, n, "no aging"), n


def test_one_parameter_set():
    """The three configurations use one cost model: only the preset and the aging thread differ."""
    from mglru.bench.seed import CONFIG_PRESETS

    assert CONFIG_PRESETS == {"no aging": ("seed-v4", False), "no opt": ("seed-v4-noopt", True),
                              "opt": ("seed-v4", True)}
    c = load_costs()
    fitted = [name for name, e in c.entries.items() if e.status == "calibrated"]
    assert fitted, "costs.toml has calibrated entries"
    for name in fitted:
        assert "row" in c.entries[name].source
