"""Differential conformance: scenarios run on a real kernel (QEMU) and on the model, compared.

    from mglru.conformance import builtin_scenarios, run_suite
    for r in run_suite(["6.12"], builtin_scenarios()):
        print(r.scenario, r.match, r.differences)

Scenarios are TOML files (`mglru.conformance.scenario` describes the steps);
`mglru conformance` runs them from the command line.
"""

from mglru.conformance.compare import TOLERANCE_FRACTION, TOLERANCE_PAGES, compare_traces
from mglru.conformance.run import Snapshot, Trace, UnsupportedStep, run_scenario
from mglru.conformance.scenario import (
    Scenario,
    ScenarioError,
    Step,
    builtin_scenarios,
    load_scenario,
)
from mglru.conformance.suite import KERNEL_PRESETS, KNOWN_DIFFERENCES, ConformanceResult, run_suite

__all__ = ["Scenario", "Step", "ScenarioError", "load_scenario", "builtin_scenarios",
           "Snapshot", "Trace", "UnsupportedStep", "run_scenario", "compare_traces",
           "TOLERANCE_PAGES", "TOLERANCE_FRACTION", "KERNEL_PRESETS", "KNOWN_DIFFERENCES",
           "ConformanceResult", "run_suite"]
