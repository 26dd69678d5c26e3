"""The cost model: named per-operation costs with their provenance.

Mechanism: `costs.toml` beside this module holds one table per operation,
`[name] ns = .. per = .. status = .. source = ..`. `load_costs` parses it with
tomllib, checks it against `COST_KEYS` (every key present, no unknown key, no
unknown field, `ns` a non-negative int, `status` one of `STATUSES`) and applies
keyword overrides, which are checked the same way. The result is a frozen
`CostModel`; timing processes read costs by attribute (`c.host_fault`) or by
name (`c["host_fault"]`). Costs are integer nanoseconds so that exact-mode
timelines are integers too.

Like libCacheSim's `DEFAULT_PARAMS` parsing, an unknown key is an error that
lists the valid keys: a misspelt cost must never silently fall back to a default.

Future optimizations:
1. per-arch or per-host cost files selected by name (`--costs icelake`), once
   calibration needs more than one machine.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["COST_KEYS", "STATUSES", "CostEntry", "CostModel", "load_costs", "zero_costs"]

#: every cost the timing model knows, with what it is charged for
COST_KEYS: dict[str, str] = {
    "kvm_exit": "EPT violation exit, fault dispatch and VM entry, per fault",
    "host_fault": "host anon write fault via GUP, excluding zeroing and charge",
    "page_zero": "clear_page of one 4 KiB page",
    "memcg_charge": "memcg charge of one page from the per-cpu stock",
    "spte_install": "TDP MMU map of one 4 KiB SPTE (under mmu_lock)",
    "guest_page_access": "the guest's access to a page once mapped",
    "lru_add_folio": "adding one folio to the LRU under lru_lock",
    "pcp_refill": "one pcp refill under zone->lock",
    "fault_contention": "per fault, per other vCPU faulting at the same time on this socket",
    "fault_contention_remote": "per fault, per other vCPU faulting at once on another socket",
    "aging_pass_fixed": "fixed cost of one aging pass (debugfs read + write)",
    "pte_table": "per PTE table overhead of the aging walk",
    "pte_walk": "per PTE step of walk_pte_range",
    "folio_update_gen": "per young folio moved to max_seq by the walk",
    "inc_min_seq_folio": "per folio moved up by inc_min_seq under lru_lock",
    "notifier_call": "one mmu_notifier test/clear_young call, outside the KVM lock",
    "gfn_range": "per memslot range handed to kvm_{test_,}age_gfn",
    "spte_test_clear": "per SPTE visited by kvm_{test_,}age_gfn",
    "tlb_flush": "one remote TLB flush of a VM",
    "atomic": "atomic RMW on a local cache line",
    "cmpxchg": "cmpxchg on a local cache line",
    "cacheline_transfer": "RMW on a cache line owned by another core",
    "cacheline_transfer_remote": "RMW on a cache line owned by a core on another socket",
    "lock_handoff": "extra latency of granting a lock to a waiter",
    "context_switch": "switching a CPU to another thread",
    "synchronize_rcu": "minimum latency of an RCU grace period",
    "evict_folio": "per folio scanned by evict_folios: isolate, sort, rmap, unmap, free",
    "swap_in": "one synchronous swap-in of a 4 KiB page on a fault (a refault's price)",
}

STATUSES = ("provisional", "calibrated", "measured")
_FIELDS = ("ns", "per", "status", "source")
_DEFAULT_FILE = "costs.toml"


@dataclass(frozen=True, slots=True)
class CostEntry:
    """One named cost and its provenance.

    Attributes:
        ns: the cost in integer nanoseconds.
        per: the unit of work it is charged for.
        status: one of `STATUSES`.
        source: which cover-letter row or public measurement fixed it.
    """

    ns: int
    per: str
    status: str
    source: str


class CostModel(Mapping[str, int]):
    """A frozen set of per-operation costs (ns), read by name or attribute.

    `c["atomic"]` and `c.atomic` both give the cost in ns; `c.entries` keeps
    the provenance. Build one with `load_costs` or `zero_costs`.
    """

    # NOTE: one slot per cost, so `c.atomic` is a plain slot read on the hot path
    __slots__ = ("entries", "origin", "_ns", *COST_KEYS)

    def __init__(self, entries: Mapping[str, CostEntry], origin: str = "") -> None:
        _check_names(entries.keys(), "cost")
        missing = sorted(set(COST_KEYS) - set(entries))
        if missing:
            raise ValueError(f"missing cost key(s) {', '.join(missing)}; every key of "
                             f"COST_KEYS must be given: {', '.join(COST_KEYS)}")
        object.__setattr__(self, "entries", dict(entries))
        object.__setattr__(self, "origin", origin)
        object.__setattr__(self, "_ns", {k: e.ns for k, e in entries.items()})
        for k, e in entries.items():
            object.__setattr__(self, k, e.ns)

    def __getitem__(self, name: str) -> int:
        try:
            return self._ns[name]
        except KeyError:
            raise KeyError(f"unknown cost {name!r}; valid costs: {', '.join(COST_KEYS)}") from None

    def __getattr__(self, name: str) -> int:
        # only reached for names that are not slots: never a valid cost
        raise AttributeError(f"unknown cost {name!r}; valid costs: {', '.join(COST_KEYS)}")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("CostModel is frozen; use replace(**overrides)")

    def __iter__(self):  # noqa: D105 - Mapping protocol
        return iter(self._ns)

    def __len__(self) -> int:  # noqa: D105 - Mapping protocol
        return len(self._ns)

    def __repr__(self) -> str:
        return f"CostModel({self.origin or 'custom'}, {len(self)} costs)"

    def replace(self, **overrides: int) -> CostModel:
        """A copy with some costs changed (status becomes "provisional", source "override").

        Raises:
            KeyError: an override names an unknown cost (the valid ones are listed).
            ValueError: an override is not a non-negative int.
        """
        _check_names(overrides.keys(), "cost override")
        entries = dict(self.entries)
        for name, ns in overrides.items():
            _check_ns(name, ns)
            entries[name] = CostEntry(ns, entries[name].per, "provisional", "override")
        return CostModel(entries, origin=self.origin + " + overrides")


def load_costs(path: str | Path | None = None, **overrides: int) -> CostModel:
    """Load a cost file (default: the packaged costs.toml) and apply overrides.

    Args:
        path: a TOML file in the format of costs.toml; None for the packaged one.
        **overrides: cost name -> ns, applied after loading.

    Returns:
        The frozen CostModel.

    Raises:
        KeyError: the file or an override has an unknown cost or field (valid ones listed).
        ValueError: a cost is missing, or a value has the wrong type or range.
    """
    if path is None:
        text = resources.files("mglru.timing").joinpath(_DEFAULT_FILE).read_text()
        origin = _DEFAULT_FILE
    else:
        text = Path(path).read_text()
        origin = str(path)
    data = tomllib.loads(text)
    _check_names(data.keys(), f"cost in {origin}")
    entries = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            raise ValueError(f"{origin}: [{name}] must be a table with fields "
                             f"{', '.join(_FIELDS)}; got {table!r}")
        unknown = sorted(set(table) - set(_FIELDS))
        if unknown:
            raise KeyError(f"{origin}: [{name}] has unknown field(s) {', '.join(unknown)}; "
                           f"valid fields: {', '.join(_FIELDS)}")
        absent = [f for f in _FIELDS if f not in table]
        if absent:
            raise ValueError(f"{origin}: [{name}] lacks field(s) {', '.join(absent)}")
        _check_ns(name, table["ns"])
        if table["status"] not in STATUSES:
            raise ValueError(f"{origin}: [{name}] status must be one of {', '.join(STATUSES)}; "
                             f"got {table['status']!r}")
        if not str(table["source"]).strip():
            raise ValueError(f"{origin}: [{name}] needs a source (its provenance)")
        entries[name] = CostEntry(table["ns"], str(table["per"]), table["status"],
                                  str(table["source"]))
    model = CostModel(entries, origin=origin)
    return model.replace(**overrides) if overrides else model


def zero_costs(**nonzero: int) -> CostModel:
    """A model where every cost is 0 except those given (for exact-timeline tests)."""
    entries = {k: CostEntry(0, "", "provisional", "zero_costs") for k in COST_KEYS}
    return CostModel(entries, origin="zero_costs").replace(**nonzero) if nonzero else \
        CostModel(entries, origin="zero_costs")


def _check_names(names: Any, what: str) -> None:
    unknown = sorted(set(names) - set(COST_KEYS))
    if unknown:
        raise KeyError(f"unknown {what}(s) {', '.join(unknown)}; valid costs: "
                       f"{', '.join(COST_KEYS)}")


def _check_ns(name: str, ns: Any) -> None:
    if isinstance(ns, bool) or not isinstance(ns, int) or ns < 0:
        raise ValueError(f"cost {name!r} must be a non-negative int of ns; got {ns!r}")
