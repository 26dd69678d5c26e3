"""main() of the port: feature checks, the memcg, one VM per guest mode, the exit code. v4 7/7.

`run_access_tracking_perf_test(params, kernel=None)` runs the whole test and
returns a `TestResult` (exit code, message, the `--json` record); it never
raises for what the test reports (failures, skips, Ctrl-C), so the CLI and
tests share it.

Order, as in the C `main()` and `setup_vm_and_run()`:

1. feature checks: without `-l` the idle bitmap must open read-write
   ("CONFIG_IDLE_PAGE_TRACKING is not enabled"); with `-l`, `enabled` must
   have the caps of the rules (v4: 0x1, 0x2 and 0x8, each its own skip
   message; upstream: 0x1|0x2) and lru_gen must open read-write;
2. the test hook `clear_caps_after_check` writes `enabled` without those
   bits (cap 0x8 off turns the seed's secondary-MMU walk off);
3. `-p` without `-l` fails; `-p` without the timing model skips;
4. a real kernel (`--kernel host`, `--kernel qemu:...`) stops here with a
   skip: a KVM guest cannot be run from Python (no vCPU threads, no guest
   code), so only the checks ran;
5. per guest mode: spawn the test process (the simulated kernel's stand-in
   for this program), create the memcg and move the process into it (`-l`),
   create the VM through memstress, run the benchmark or the flow; then move
   the process back, remove the memcg, exit the process — on failure and
   Ctrl-C too.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from mglru.abi.kernel import LRU_GEN_ENABLED, BackendError, FeatureUnavailable, Kernel, kernel_kind
from mglru.backends import open_kernel
from mglru.tools.access_tracking.benchmark import run_benchmark, timing_model_status
from mglru.tools.access_tracking.context import TestContext
from mglru.tools.access_tracking.flows import (
    idle_pages_warn_only,
    run_test_upstream,
    run_test_v4,
)
from mglru.tools.access_tracking.ksft import (
    EXIT_INTERRUPTED,
    KSFT_FAIL,
    KSFT_PASS,
    KSFT_SKIP,
    Log,
    TestFailure,
    TestSkip,
    test_assert,
    test_require,
)
from mglru.tools.access_tracking.memcg import test_memcg
from mglru.tools.access_tracking.page_idle import PAGE_IDLE_BITMAP
from mglru.tools.access_tracking.params import TEST_MEMCG_NAME, TestParams
from mglru.tools.lru_gen import check_lru_gen_usable, read_caps
from mglru.tools.memstress import (
    DEFAULT_GUEST_MODE,
    GUEST_MODES,
    HOST_PAGE_SIZE,
    KVM_MAX_VCPUS,
    MemstressError,
    UnknownBackingSrc,
    UnsupportedBackingSrc,
    VcpuThreads,
    guest_mode_string,
    guest_modes_for_arch,
    memstress_create_vm,
    parse_backing_src_type,
)

__all__ = ["TestResult", "run_access_tracking_perf_test", "HOST_UNSUPPORTED"]

HOST_UNSUPPORTED = ("--kernel host: this port cannot run a KVM guest from Python (it needs "
                    "/dev/kvm, vCPU threads and compiled guest code); the feature checks passed. "
                    "Run tools/testing/selftests/kvm/access_tracking_perf_test on the host, or "
                    "this test with --kernel sim")


def _real_kernel_unsupported(kind: str) -> str:
    """HOST_UNSUPPORTED, naming the real kernel the checks ran on."""
    if kind == "host":
        return HOST_UNSUPPORTED
    return HOST_UNSUPPORTED.replace("--kernel host", f"--kernel {kind}", 1).replace(
        "on the host", "in the guest", 1)


@dataclass
class TestResult:
    """What a run ended with.

    Attributes:
        exit_code: KSFT_PASS, KSFT_FAIL, KSFT_SKIP or EXIT_INTERRUPTED.
        status: "pass", "fail", "skip" or "interrupted".
        message: the assertion or skip message ("" on success).
        record: the `--json` document.
    """

    __test__ = False

    exit_code: int
    status: str
    message: str
    record: dict[str, Any]


def _can_open_rw(kernel: Kernel, path: str) -> bool:
    """Whether open(path, O_RDWR) would succeed (exists, for backends without `access`)."""
    access = getattr(kernel, "access", None)
    return access(path, write=True) if callable(access) else kernel.exists(path)


def _feature_checks(kernel: Kernel, params: TestParams, rules: str, log: Log) -> None:
    """The C main()'s checks before any test runs (see the module docstring)."""
    if not params.lru_gen:
        test_require(_can_open_rw(kernel, PAGE_IDLE_BITMAP),
                     "CONFIG_IDLE_PAGE_TRACKING is not enabled" if rules == "v4" else
                     f"Couldn't open {PAGE_IDLE_BITMAP}. Is CONFIG_IDLE_PAGE_TRACKING enabled?")
        if rules == "upstream":
            log.pr_info("Using page_idle for aging")
        return
    try:
        caps = check_lru_gen_usable(kernel, rules)
    except FeatureUnavailable as e:
        raise TestSkip(e.reason, e.hint) from None
    log.record["caps"] = f"0x{caps:04x}"
    if rules == "upstream":
        log.pr_info("Using lru_gen for aging")


def _clear_caps(kernel: Kernel, mask: int, log: Log) -> None:
    """The test hook: turn cap bits off through `enabled` after the check."""
    caps = read_caps(kernel) & ~mask
    try:
        kernel.write(LRU_GEN_ENABLED, f"0x{caps:x}\n")
    except OSError as e:
        test_assert(False, f"test hook: writing 0x{caps:x} to {LRU_GEN_ENABLED} failed "
                           f"({e.strerror})", "clear_caps_after_check")
    log.record["caps_after_hook"] = kernel.read(LRU_GEN_ENABLED).strip()


def _warm_up(kernel: Any, params: TestParams, arch: str) -> None:
    """Compile the model's numba kernels on a throwaway kernel of the same preset.

    The timing lines are the host's clock around the simulated work; the first
    aging pass of a process would otherwise include tens of seconds of JIT
    compilation (a fresh clone has no numba cache). Nothing of this kernel is
    reported or kept.
    """
    from mglru.kernel import SimKernel
    from mglru.tools.lru_gen import lru_gen_do_aging

    k = SimKernel(config=kernel.cfg, seed=params.seed)
    k.mkdir("/sys/fs/cgroup/warm_up")
    p = k.spawn(memcg="/warm_up")
    vm = k.create_vm(p, arch=arch, tdp_mmu=params.tdp_mmu)
    gpa = vm.add_memory(4 << 20, thp=params.backing_src == "anonymous_thp", as_ids=(0,))
    vm.vcpu_access(0, gpa, 4 << 20, write=True)
    for _ in range(2):
        lru_gen_do_aging(k, "warm_up")
    vm.vcpu_access(0, gpa, 4 << 20)
    lru_gen_do_aging(k, "warm_up")


def _run_guest_mode(kernel: Any, params: TestParams, rules: str, mode: int, log: Log,
                    bench_fn: Any) -> None:
    """setup_vm_and_run() for one guest mode on the simulated kernel."""
    arch = params.arch or kernel.cfg.arch
    process = kernel.spawn()
    log.record["pid"] = process.pid
    try:
        if params.lru_gen:
            with test_memcg(kernel, params.cgroup_root, TEST_MEMCG_NAME, process.pid, log):
                _create_and_run(kernel, params, rules, mode, arch, process, log, bench_fn)
        else:
            _create_and_run(kernel, params, rules, mode, arch, process, log, bench_fn)
    finally:
        kernel.exit_task(process)


def _create_and_run(kernel: Any, params: TestParams, rules: str, mode: int, arch: str,
                    process: Any, log: Log, bench_fn: Any) -> None:
    """memstress_create_vm(), then the benchmark or the flow of the rules."""
    try:
        args = memstress_create_vm(kernel, process, mode=mode, nr_vcpus=params.nr_vcpus,
                                   vcpu_memory_bytes=params.vcpu_memory_bytes,
                                   backing_src=params.backing_src,
                                   partition=not params.overlap, arch=arch,
                                   tdp_mmu=params.tdp_mmu, seed=params.seed, log=log.pr_info)
    except MemstressError as e:
        raise TestFailure(str(e), "memstress_create_vm()") from None
    per_page = (HOST_PAGE_SIZE if rules == "v4"
                else max(args.guest_page_size, HOST_PAGE_SIZE))
    ctx = TestContext(kernel, params, rules, log, args, VcpuThreads(args), process.pid,
                      idle_pages_warn_only(kernel, rules, arch, params.warn_only, log),
                      params.nr_vcpus * params.vcpu_memory_bytes // per_page)
    log.record.update(mmu=args.vm.mmu.name, arch=arch, test_pages=ctx.test_pages,
                      warn_only=ctx.warn_only, generations=ctx.generations)
    if bench_fn is not None:
        run_benchmark(ctx, bench_fn)
    elif rules == "v4":
        run_test_v4(ctx)
    else:
        run_test_upstream(ctx)


def _guest_modes(params: TestParams, arch: str) -> list[int]:
    """The `-m` modes, or the arch's supported mode (for_each_guest_mode)."""
    return list(params.modes) if params.modes else [DEFAULT_GUEST_MODE[arch]]


def _check_options(params: TestParams, arch: str) -> None:
    """What the C test asserts while parsing its options (before any setup)."""
    test_assert(1 <= params.nr_vcpus <= KVM_MAX_VCPUS,
                f"Invalid number of vcpus, must be between 1 and {KVM_MAX_VCPUS}",
                "nr_vcpus > 0 && nr_vcpus <= max_vcpus")
    supported = guest_modes_for_arch(arch)
    for mode in params.modes or ():
        test_assert(0 <= mode < len(GUEST_MODES), f"Guest mode ID {mode} too big",
                    "mode < NUM_VM_MODES")
        test_assert(supported[mode],
                    f"Guest mode ID {mode} ({guest_mode_string(mode)}) not supported.",
                    "guest_modes[mode].supported")
    test_assert(params.tdp_mmu or arch == "x86",
                f"the shadow MMU (--no-tdp-mmu) is an x86 model; arch is {arch}", "tdp_mmu")


def _check_fits(kernel: Any, params: TestParams) -> None:
    """Refuse at once guest memory the simulated machine cannot hold in RAM.

    The test touches all of it again and again; more than RAM only swaps
    (and on a real host without that much swap, the OOM killer ends it).

    Raises:
        TestSkip: the guest memory exceeds the simulated RAM.
    """
    mem = getattr(kernel, "mem", None)
    if mem is None:
        return
    need = params.vcpu_memory_bytes * params.nr_vcpus
    ram = mem.max_pfn * HOST_PAGE_SIZE
    test_require(need <= ram, f"{need >> 20} MiB of guest memory ({params.nr_vcpus} vCPUs x "
                              f"{params.vcpu_memory_bytes >> 20} MiB) exceeds the simulated "
                              f"machine's {ram >> 20} MiB of RAM; use a smaller -b or fewer vCPUs")


def _run(params: TestParams, kernel: Kernel | None, log: Log) -> None:
    """main(): raises TestFailure / TestSkip as the C test exits."""
    rules = params.resolved_rules()
    try:  # getopt time in the C test
        parse_backing_src_type(params.backing_src)
    except UnknownBackingSrc as e:
        raise TestFailure(str(e), "parse_backing_src_type()") from None
    except UnsupportedBackingSrc as e:
        raise TestSkip(str(e)) from None
    if kernel is None:
        with open_kernel(params.kernel, config=params.config, seed=params.seed) as k:
            _run_on(params, k, rules, log)
    else:
        _run_on(params, kernel, rules, log)


def _run_on(params: TestParams, kernel: Kernel, rules: str, log: Log) -> None:
    """main() after the kernel is open."""
    sim = kernel_kind(kernel) == "sim"
    cfg = kernel.cfg if sim else None  # type: ignore[attr-defined]
    log.record.update(kernel="sim" if sim else params.kernel,
                      config=None if cfg is None else cfg.name, rules=rules)
    if cfg is not None:
        _check_options(params, params.arch or cfg.arch)
        _check_fits(kernel, params)
    _feature_checks(kernel, params, rules, log)
    if params.clear_caps_after_check:
        _clear_caps(kernel, params.clear_caps_after_check, log)
    test_assert(not params.benchmark or params.lru_gen, "-p specified without -l",
                "!params.benchmark_lru_gen || params.lru_gen")
    bench_fn = None
    if params.benchmark:
        bench_fn, why = timing_model_status()
        test_require(bench_fn is not None, f"timing model not available ({why})")
    if cfg is None:
        raise TestSkip(_real_kernel_unsupported(params.kernel))
    arch = params.arch or cfg.arch
    if params.lru_gen:
        try:
            _warm_up(kernel, params, arch)
        except Exception:  # noqa: BLE001 - only a cache warm-up: the run reports real errors
            pass
    for mode in _guest_modes(params, arch):
        _run_guest_mode(kernel, params, rules, mode, log, bench_fn)


def run_access_tracking_perf_test(params: TestParams, kernel: Kernel | None = None,
                                  log: Log | None = None) -> TestResult:
    """Run the test; never raises for failures, skips or Ctrl-C.

    Args:
        params: the run's parameters.
        kernel: a backend to use instead of a fresh one (tests pass a
            `SimKernel`; its preset then decides the default rules).
        log: where to print (default stdout/stderr).

    Returns:
        The exit code, status, message and JSON record.
    """
    log = log or Log()
    if kernel is not None and kernel_kind(kernel) == "sim" and params.rules is None:
        params.config = kernel.cfg.name  # type: ignore[attr-defined]
    rec = log.record
    rec.update(test="access_tracking_perf_test", clock="host", nr_vcpus=params.nr_vcpus,
               vcpu_memory_bytes=params.vcpu_memory_bytes, overlap=params.overlap,
               backing_src=params.backing_src,
               mode="page_idle" if not params.lru_gen else
               ("lru_gen_benchmark" if params.benchmark else "lru_gen"))
    start = time.perf_counter_ns()
    try:
        _run(params, kernel, log)
        code, status, message = KSFT_PASS, "pass", ""
    except TestFailure as e:
        log.assertion_failure(e, rec.get("pid", os.getpid()))
        code, status, message = KSFT_FAIL, "fail", e.message
    except TestSkip as e:
        log.skip(e.message, e.hint)
        code, status, message = KSFT_SKIP, "skip", e.message
        if e.hint:
            rec["hint"] = e.hint
    except BackendError as e:
        log.skip(str(e), "")
        code, status, message = KSFT_SKIP, "skip", str(e)
    except KeyboardInterrupt:
        print("Interrupted", file=log.err)
        code, status, message = EXIT_INTERRUPTED, "interrupted", "KeyboardInterrupt"
    rec.update(result=status, exit_code=code, message=message,
               host_elapsed_ns=time.perf_counter_ns() - start)
    return TestResult(code, status, message, rec)
