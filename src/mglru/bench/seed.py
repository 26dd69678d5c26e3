"""The cover letter's scenario: one VM, 1 GiB per vCPU, "no aging", "no opt" and "opt".

PATCH v4 0/7 measured `access_tracking_perf_test -p -l -b 1G -v N` on x86 TDP
without THP. `seed_benchmark` builds that scenario on a fresh SimKernel and runs
it with `mglru.bench.lru_gen_bench.run_lru_gen_benchmark`; `COVER_LETTER` holds
the published rows 1-16, the calibration data.
"""

from __future__ import annotations

from typing import Any

from mglru.bench.lru_gen_bench import BenchResult, run_lru_gen_benchmark
from mglru.timing.costs import CostModel
from mglru.timing.topology import SEED_HOST, Topology

__all__ = ["CONFIGS", "CONFIG_PRESETS", "COVER_LETTER", "seed_benchmark"]

#: the cover letter's configurations, in its order
CONFIGS = ("no aging", "no opt", "opt")
#: configuration -> (preset, aging thread?): only the preset differs between "no opt" and "opt"
CONFIG_PRESETS: dict[str, tuple[str, bool]] = {
    "no aging": ("seed-v4", False),
    "no opt": ("seed-v4-noopt", True),
    "opt": ("seed-v4", True),
}
#: PATCH v4 0/7, `access_tracking_perf_test -p -l -b 1G -v N` on x86 TDP, no THP:
#: vCPUs -> config -> (vcpu wall time s, aging avg pass time s or None). The
#: calibration data; the rows for 32, 64 and 112 vCPUs are withheld on purpose.
COVER_LETTER: dict[int, dict[str, tuple[float, float | None]]] = {
    1: {"no aging": (0.878822016, None), "no opt": (0.938250568, 0.008236007),
        "opt": (0.912270190, 0.007314582)},
    2: {"no aging": (0.984959659, None), "no opt": (1.057880728, 0.017989741),
        "opt": (1.037735641, 0.013996319)},
    4: {"no aging": (1.264881581, None), "no opt": (1.318849182, 0.056164918),
        "opt": (1.314653465, 0.029311993)},
    8: {"no aging": (1.473883699, None), "no opt": (1.589441079, 0.227419586),
        "opt": (1.498439592, 0.063857740)},
    16: {"no aging": (2.048766096, None), "no opt": (2.399335597, 1.247142841),
         "opt": (2.000914001, 0.121628689)},
}


def seed_benchmark(nr_vcpus: int, config: str = "opt", vcpu_bytes: int = 1 << 30,
                   aging: bool | None = None, arch: str = "x86", *,
                   costs: CostModel | None = None, granularity: str = "auto",
                   topology: Topology = SEED_HOST, **kwargs: Any) -> BenchResult:
    """The cover letter's scenario: one VM of `nr_vcpus` vCPUs with `vcpu_bytes` each.

    A fresh SimKernel, a memcg `access_tracking_perf_test`, the VMM process in it,
    a VM with one memslot (memstress: partitioned regions, vCPU i at i x
    vcpu_bytes), then `run_lru_gen_benchmark` with the selftest's aging pass.

    Args:
        nr_vcpus: vCPUs.
        config: "no aging", "no opt" or "opt" (see CONFIG_PRESETS), or a preset name.
        vcpu_bytes: memory per vCPU (a multiple of 4 KiB).
        aging: for a preset name, whether an aging thread runs (default True);
            ignored for the three configurations.
        arch: the VM's arch model.
        topology: the host (default: the cover letter's, two sockets: `SEED_HOST`).
        costs, granularity, **kwargs: as for `run_lru_gen_benchmark`.
    """
    from mglru.kernel import SimKernel

    if config in CONFIG_PRESETS:
        preset, with_aging = CONFIG_PRESETS[config]
    else:
        preset, with_aging = config, True if aging is None else aging
    memcg = "access_tracking_perf_test"
    total = nr_vcpus * vcpu_bytes
    # one node with room for the guest memory (per-node scans are O(node))
    node = -(-(total + (256 << 20)) // (2 << 20)) * (2 << 20)
    k = SimKernel(config=preset, seed=0, node_bytes=(node,))
    k.mkdir(f"/sys/fs/cgroup/{memcg}")
    p = k.spawn(memcg=f"/{memcg}")
    # memstress writes each page once: no translation is reused, so a guest TLB
    # changes nothing here and is left out (tlb_entries=0)
    vm = k.create_vm(p, arch=arch, nr_vcpus=nr_vcpus, tlb_entries=0)
    vm.add_memory(total, gpa=0, as_ids=(0,))   # memstress: address space 0 only
    regions = [(i * vcpu_bytes, vcpu_bytes) for i in range(nr_vcpus)]
    return run_lru_gen_benchmark(k, vm, memcg, regions, with_aging, costs, granularity,
                                 topology=topology, **kwargs)
