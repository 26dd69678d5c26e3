"""The port of KVM's access_tracking_perf_test over the `Kernel` ABI.

Upstream: tools/testing/selftests/kvm/access_tracking_perf_test.c (v6.16); v4 7/7.

    from mglru import SimKernel
    from mglru.tools.access_tracking import TestParams, run_access_tracking_perf_test

    params = TestParams(lru_gen=True, nr_vcpus=4, vcpu_memory_bytes=256 << 20)
    result = run_access_tracking_perf_test(params)        # a fresh seed-v4 SimKernel
    result.exit_code                                      # 0 pass, 1 fail, 4 skip

The test measures how fast vCPUs access memory before and after it was
marked idle, and (with `-l`) checks that MGLRU aging moves guest-accessed
pages to newer generations — through the secondary MMU only, since the
guest never touches the host page tables after the first fault.

Kernel files are reached only through the `Kernel` protocol; the simulated
kernel's process and KVM API is used only for what the C test does with
syscalls (mmap, KVM_CREATE_VM, memslots, KVM_RUN). Modules: `params`
(flags), `ksft` (exit codes, output), `memcg`, `page_idle`, `aging`
(lru_gen_util use), `context` (iterations), `flows` (page_idle, v4,
upstream), `benchmark` (`-p`), `runner` (main).
"""

from mglru.tools.access_tracking.benchmark import (
    TIMING_FUNCTION,
    TIMING_MODULE,
    load_timing_model,
)
from mglru.tools.access_tracking.ksft import (
    EXIT_INTERRUPTED,
    KSFT_FAIL,
    KSFT_PASS,
    KSFT_SKIP,
    Log,
    TestFailure,
    TestSkip,
    timespec,
)
from mglru.tools.access_tracking.params import (
    DEFAULT_PER_VCPU_MEM_SIZE,
    TEST_MEMCG_NAME,
    TestParams,
    default_rules,
    parse_size,
)
from mglru.tools.access_tracking.runner import (
    HOST_UNSUPPORTED,
    TestResult,
    run_access_tracking_perf_test,
)

__all__ = [
    "TestParams", "TestResult", "run_access_tracking_perf_test", "parse_size", "default_rules",
    "TEST_MEMCG_NAME", "DEFAULT_PER_VCPU_MEM_SIZE", "HOST_UNSUPPORTED",
    "KSFT_PASS", "KSFT_FAIL", "KSFT_SKIP", "EXIT_INTERRUPTED", "Log", "TestFailure", "TestSkip",
    "timespec", "TIMING_MODULE", "TIMING_FUNCTION", "load_timing_model",
]
