"""The lru_gen client: parse `/sys/kernel/debug/lru_gen`, drive aging and eviction.

A Python port of the seed's `lru_gen_util` (patch 7/7) and its upstream form
(tools/testing/selftests/cgroup/lib/lru_gen_util.c, v6.16), over the `Kernel`
protocol so it runs on `SimKernel` and on a
real host alike:

    from mglru.abi import HostKernel
    from mglru.tools.lru_gen import lru_gen_do_aging, find_generation, lru_gen_usable

    kernel = HostKernel()                       # or SimKernel("seed-v4")
    if lru_gen_usable(kernel, rules="upstream"):
        stats = lru_gen_do_aging(kernel, "access_tracking_perf_test")
        gen = find_generation(stats, total_pages, rules="upstream")
"""

from mglru.tools.lru_gen.caps import (
    CAP_CORE,
    CAP_MM_WALK,
    CAP_NAMES,
    CAP_NONLEAF_YOUNG,
    CAP_SECONDARY_MMU_WALK,
    REQUIRED_CAPS,
    check_lru_gen_usable,
    lru_gen_usable,
    read_caps,
    strtol16,
)
from mglru.tools.lru_gen.client import (
    CommandError,
    age_memcg,
    aging_command,
    aging_commands,
    evict_memcg,
    eviction_command,
    lru_gen_do_aging,
    read_lru_gen,
    read_memcg_stats,
    run_command,
)
from mglru.tools.lru_gen.generation import (
    RULES,
    GenerationNotFound,
    find_generation,
    find_generation_v4,
    lru_gen_find_generation,
)
from mglru.tools.lru_gen.parse import LruGenParseError, format_lru_gen, parse_lru_gen
from mglru.tools.lru_gen.stats import (
    GenerationStats,
    LruGenStats,
    MarkedCount,
    MemcgNotFound,
    MemcgStats,
    MmStats,
    NodeStats,
    TierStats,
)

__all__ = [
    # stats and parsing
    "LruGenStats", "MemcgStats", "NodeStats", "GenerationStats", "TierStats", "MmStats",
    "MarkedCount", "MemcgNotFound", "LruGenParseError", "parse_lru_gen", "format_lru_gen",
    # reading and commands
    "read_lru_gen", "read_memcg_stats", "aging_command", "eviction_command", "aging_commands",
    "run_command", "age_memcg", "lru_gen_do_aging", "evict_memcg", "CommandError",
    # generations
    "RULES", "find_generation", "find_generation_v4", "lru_gen_find_generation",
    "GenerationNotFound",
    # caps
    "CAP_CORE", "CAP_MM_WALK", "CAP_NONLEAF_YOUNG", "CAP_SECONDARY_MMU_WALK", "CAP_NAMES",
    "REQUIRED_CAPS", "strtol16", "read_caps", "check_lru_gen_usable", "lru_gen_usable",
]
