"""Experiments: grids of simulated runs (a study), swept locally or on Dask, and reported.

A study is a TOML spec (`spec.py`): common parameters, a grid whose cartesian
product gives the points, sizes (`quick`, `full`) and exclusions. Each point is
a flat dict with a stable `run_id`; `scenario.run_point(point)` runs one and
returns a flat result row. `sweep.py` runs the points in processes or on a
Dask cluster, appends each row to a results file as it finishes and skips the
rows already there, so an interrupted sweep resumes. `report.py` turns the rows
into PNG plots and one self-contained HTML page.

Nothing heavy is imported here: numpy, matplotlib and dask load in the
functions that need them, so `mglru experiment list` stays fast.

Future optimizations:
1. share one built kernel between the points of a grid that differ only in the agent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mglru.experiment.report import report
    from mglru.experiment.spec import Spec, expand, load_spec, run_id_of, study_names
    from mglru.experiment.sweep import SweepResult, read_results, run_sweep

__all__ = ["Spec", "load_spec", "expand", "run_id_of", "study_names", "run_sweep",
           "read_results", "SweepResult", "report"]

#: public name -> module that defines it (imported on first use)
_LAZY = {
    "Spec": "mglru.experiment.spec",
    "load_spec": "mglru.experiment.spec",
    "expand": "mglru.experiment.spec",
    "run_id_of": "mglru.experiment.spec",
    "study_names": "mglru.experiment.spec",
    "run_sweep": "mglru.experiment.sweep",
    "read_results": "mglru.experiment.sweep",
    "SweepResult": "mglru.experiment.sweep",
    "report": "mglru.experiment.report",
}


def __getattr__(name: str) -> Any:
    """Import the public names on first use (see _LAZY)."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'mglru.experiment' has no attribute {name!r}")
