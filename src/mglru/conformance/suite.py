"""The differential suite: each scenario on a real kernel (QEMU) and on its matching preset.

    results = run_suite(["6.12"], builtin_scenarios())
    [r.to_dict() for r in results]   # {"scenario", "kernel", "preset", "match", "differences"}

One guest boots per kernel and runs every scenario (each with its own memcgs);
each scenario gets a fresh simulated kernel of the matching preset, sized like
the guest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mglru.backends import open_kernel
from mglru.conformance.compare import compare_traces
from mglru.conformance.run import run_scenario
from mglru.conformance.scenario import Scenario

__all__ = ["KERNEL_PRESETS", "KNOWN_DIFFERENCES", "ConformanceResult", "run_suite",
           "GUEST_MEMORY_MIB"]

#: real kernel -> the preset it is compared with. No v6.1 preset exists yet: 6.1 is
#: compared with v6.10, the oldest upstream preset (their MGLRU differs in details
#: such as the mm_stats columns, not in the paths these scenarios take).
KERNEL_PRESETS = {"6.1": "v6.10", "6.12": "v6.12"}
GUEST_MEMORY_MIB = 2048

_FAULT_ACTIVE = ("before v6.14, folio_add_lru() (mm/swap.c) marks a folio added in a page "
                 "fault (lru_gen_in_fault()) active and lru_gen_add_folio() "
                 "(include/linux/mm_inline.h) puts an active folio in max_seq; the presets "
                 "put new and swapped-in anonymous folios in max_seq - 1, as v6.14+ does")
_REFAULT_TOKEN_6_1 = ("v6.1's lru_gen_refault() (mm/workingset.c) counts "
                      "workingset_refault_anon only while the eviction token's seq is still "
                      "min_seq; once eviction moved min_seq on, the swap-ins are not counted "
                      "(v6.12 counts every refault and uses the token only for the 'recent' "
                      "test); the v6.10 preset counts every refault")

_RECLAIM_AGES = ("a consequence of the fault placement above: the model's faulted folios sit on "
                 "max_seq - 1's list until eviction sorts them (sort_folio(), a "
                 "MAX_LRU_BATCH per call), so memory.reclaim isolates nothing at priorities "
                 "12 and 11 and get_nr_to_scan() (mm/vmscan.c) ages at priority 10; on the "
                 "kernel the oldest list is empty, try_to_inc_min_seq() advances at once and "
                 "it evicts at DEF_PRIORITY without aging")

#: (scenario, kernel) -> why the model differs, with the kernel source that decides it.
#: The match stays false: these are differences, written down until the model has them.
KNOWN_DIFFERENCES: dict[tuple[str, str], str] = {
    ("fresh_faults", "6.1"): _FAULT_ACTIVE,
    ("fresh_faults", "6.12"): _FAULT_ACTIVE,
    ("stale_seqs", "6.1"): _FAULT_ACTIVE,
    ("stale_seqs", "6.12"): _FAULT_ACTIVE,
    ("refault", "6.1"): f"{_FAULT_ACTIVE}; {_REFAULT_TOKEN_6_1}",
    ("refault", "6.12"): _FAULT_ACTIVE,
    ("rmdir_busy", "6.1"): _FAULT_ACTIVE,
    ("rmdir_busy", "6.12"): _FAULT_ACTIVE,
    ("thp", "6.1"): _FAULT_ACTIVE,
    ("thp", "6.12"): _FAULT_ACTIVE,
    ("memory_reclaim", "6.1"): _RECLAIM_AGES,
    ("memory_reclaim", "6.12"): _RECLAIM_AGES,
}


@dataclass
class ConformanceResult:
    """One scenario on one kernel."""

    scenario: str
    kernel: str
    preset: str
    differences: list[str] = field(default_factory=list)

    @property
    def match(self) -> bool:
        """No difference beyond the tolerance."""
        return not self.differences

    @property
    def known(self) -> str:
        """The explanation of a known difference, or ""."""
        return KNOWN_DIFFERENCES.get((self.scenario, self.kernel), "") if self.differences else ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON record."""
        out: dict[str, Any] = {"scenario": self.scenario, "kernel": self.kernel,
                               "preset": self.preset, "match": self.match,
                               "differences": self.differences}
        if self.known:
            out["known"] = self.known
        return out


def run_suite(kernels: Iterable[str], scenarios: list[Scenario],
              progress: Callable[[str], None] | None = None) -> list[ConformanceResult]:
    """Run every scenario on each kernel and on its preset; compare.

    Raises:
        UnsupportedStep: a scenario needs what a backend cannot do.
        BackendError: QEMU missing, or a guest that does not boot.
    """
    from mglru.kernel import SimKernel

    results = []
    for name in kernels:
        preset = KERNEL_PRESETS[name]
        with open_kernel(f"qemu:{name}", memory_mib=GUEST_MEMORY_MIB) as real:
            if progress:
                progress(f"kernel {name}: booted {real.uname_release()} in "
                         f"{real.boot_seconds:.1f} s")
            for sc in scenarios:
                kernel_trace = run_scenario(real, sc)
                model = SimKernel(preset, node_bytes=(GUEST_MEMORY_MIB << 20,))
                model_trace = run_scenario(model, sc)
                r = ConformanceResult(sc.name, name, preset,
                                      compare_traces(kernel_trace, model_trace))
                if progress:
                    progress(f"kernel {name}: {sc.name}: "
                             + ("match" if r.match else f"{len(r.differences)} differences"))
                results.append(r)
    return results
