"""The test's parameters and their parsers (`-b` sizes, `-m` modes, `-w`).

As in tools/testing/selftests/kvm/access_tracking_perf_test.c; v4 7/7.

`TestParams` carries the C test's `struct test_params` and globals plus the
port's own choices: which kernel, which rules (v4 as posted, or upstream
v6.16+), the VM's arch model, and the test hook that clears caps after the
feature check.
"""

from __future__ import annotations

from dataclasses import dataclass

from mglru.abi.kernel import DEFAULT_CGROUP_ROOT
from mglru.sizes import parse_size  # noqa: F401  (re-exported: `-b`'s parser)
from mglru.tools.lru_gen import RULES

__all__ = ["TEST_MEMCG_NAME", "DEFAULT_PER_VCPU_MEM_SIZE", "DEFAULT_CONFIG", "TestParams",
           "parse_size", "default_rules"]

TEST_MEMCG_NAME = "access_tracking_perf_test"
#: DEFAULT_PER_VCPU_MEM_SIZE of memstress.h
DEFAULT_PER_VCPU_MEM_SIZE = 1 << 30
DEFAULT_CONFIG = "seed-v4"
#: presets whose kernels are the v4 series: the v4 test's rules fit them
_V4_PRESETS = ("seed-v4", "seed-v4-noopt")


def default_rules(config: str, kernel: str = "sim") -> str:
    """v4 for the seed's presets, upstream for every other kernel and for a real host.

    A host never has cap 0x8 (the series was not merged), so the v4 rules
    would only ever skip there.
    """
    return "v4" if kernel == "sim" and config in _V4_PRESETS else "upstream"


@dataclass
class TestParams:
    """Everything one run needs.

    Attributes:
        vcpu_memory_bytes: `-b`.
        nr_vcpus: `-v`.
        overlap: `-o`: all vCPUs sweep all memory.
        backing_src: `-s`.
        modes: `-m` (None: every mode the arch supports by default).
        lru_gen: `-l`: MGLRU aging instead of idle page tracking.
        benchmark: `-p`: time aging while the vCPUs fault memory in.
        cgroup_root: `-r`.
        warn_only: `-w` (upstream): >0 warn only, 0 fail, None auto.
        kernel: "sim" or "host".
        config: the simulated kernel's preset.
        rules: "v4" or "upstream" (None: `default_rules(config, kernel)`).
        arch: the VM's arch model (None: the preset's).
        tdp_mmu: x86: TDP MMU, else the shadow MMU.
        seed: the simulated kernel's and the guest's seed.
        clear_caps_after_check: test hook: cap bits to clear through
            `enabled` right after the feature check.
    """

    __test__ = False  # not a pytest class

    vcpu_memory_bytes: int = DEFAULT_PER_VCPU_MEM_SIZE
    nr_vcpus: int = 1
    overlap: bool = False
    backing_src: str = "anonymous"
    modes: list[int] | None = None
    lru_gen: bool = False
    benchmark: bool = False
    cgroup_root: str = DEFAULT_CGROUP_ROOT
    warn_only: int | None = None
    kernel: str = "sim"
    config: str = DEFAULT_CONFIG
    rules: str | None = None
    arch: str | None = None
    tdp_mmu: bool = True
    seed: int = 0
    clear_caps_after_check: int = 0

    def resolved_rules(self) -> str:
        """The rules in force.

        Raises:
            ValueError: unknown rules.
        """
        rules = self.rules or default_rules(self.config, self.kernel)
        if rules not in RULES:
            raise ValueError(f"rules must be one of {', '.join(RULES)}; got {rules!r}")
        return rules
