"""Kernel backends for user-space tools: the `Kernel` protocol, `HostKernel`, discovery.

    from mglru import SimKernel
    from mglru.abi import HostKernel, Kernel, cgroup_root

    kernel: Kernel = SimKernel("seed-v4")   # or HostKernel() on a real machine
    cgroup_root(kernel)                     # "/sys/fs/cgroup"

Tools only read and write paths through these objects (DESIGN "One ABI for
both worlds"); `mglru.tools` builds on them.
"""

from mglru.abi.cgroup import (
    CgroupHierarchy,
    Mount,
    cgroup_root,
    find_memory_cgroup,
    memory_cgroup,
    parse_mounts,
)
from mglru.abi.features import explain_os_error, require_lru_gen
from mglru.abi.host import HostKernel
from mglru.abi.kernel import (
    DEBUGFS,
    DEFAULT_CGROUP_ROOT,
    LRU_GEN,
    LRU_GEN_ENABLED,
    LRU_GEN_FULL,
    LRU_GEN_MIN_TTL_MS,
    PROC_MOUNTS,
    FeatureUnavailable,
    Kernel,
)

__all__ = [
    "Kernel",
    "HostKernel",
    "FeatureUnavailable",
    "CgroupHierarchy",
    "Mount",
    "cgroup_root",
    "memory_cgroup",
    "find_memory_cgroup",
    "parse_mounts",
    "explain_os_error",
    "require_lru_gen",
    "LRU_GEN",
    "LRU_GEN_FULL",
    "LRU_GEN_ENABLED",
    "LRU_GEN_MIN_TTL_MS",
    "DEBUGFS",
    "PROC_MOUNTS",
    "DEFAULT_CGROUP_ROOT",
]
