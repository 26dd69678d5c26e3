"""The columns of a result row, and how a cell is printed (no heavy imports: the CLI and
the report read these without loading the simulated kernel)."""

from __future__ import annotations

from typing import Any

__all__ = ["METRICS", "EXTRAS", "cell"]

#: the result row's metrics, in row order (defined in mglru.experiment.metrics and .cost)
METRICS = (
    "saved_mib_mean", "saved_mib_end", "reclaimed_pages", "warm_reclaimed",
    "warm_reclaimed_frac", "refaults", "guest_major_faults", "scanned",
    "scanned_per_reclaimed", "wss_error", "ptes_walked", "sptes_walked", "notifier_calls",
    "mmu_lock_acquisitions", "mmu_lock_hold_ms", "aging_cpu_ms", "eviction_cpu_ms",
    "vcpu_stall_ms", "refault_cost_ms", "overhead_ms", "combined_cost_ms", "cost_per_saved_mib",
    "sim_ms", "wall_s", "accesses",
)
#: per-side and diagnostic columns after the metrics (who lost memory, lock detail)
EXTRAS = (
    "guest_refaults", "host_refaults", "host_major_faults",
    "guest_rss_mib_end", "host_rss_mib_end", "guest_saved_mib_end", "host_saved_mib_end",
    "mmu_lock_blocking_hold_ms", "agent_errors", "evicted_seen",
)


def cell(v: Any, none: str = "-") -> str:
    """A table cell: 4 significant digits for floats, `none` for None."""
    if v is None:
        return none
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
