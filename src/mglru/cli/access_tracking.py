"""`mglru access-tracking-perf-test`: the KVM selftest's flags, output and exit codes.

    mglru access-tracking-perf-test [-h] [-m mode] [-b vcpu_bytes] [-v vcpus] [-o]
        [-s mem_type] [-l] [-p] [-r memcg_root] [-w n]
        [--kernel sim|host|qemu:6.12|...] [--config PRESET] [--rules v4|upstream] [--json FILE]
        [--arch ARCH] [--no-tdp-mmu] [--seed N]

`-h` prints the C test's help; `--help` click's. Exit codes are kselftest's:
0 pass, 1 fail, 4 skip; 2 is a usage error, 130 Ctrl-C (the memcg is removed
first). See `mglru.tools.access_tracking` for the test itself.
"""

from __future__ import annotations

import sys

import click

from mglru.backends import KERNEL_SPEC_HELP, KernelSpec
from mglru.cli.lru_gen import KernelSpecType
from mglru.cli.output import Size, configuration, document, json_option, write_json
from mglru.presets import ARCHES, PRESETS
from mglru.tools.access_tracking import (
    DEFAULT_PER_VCPU_MEM_SIZE,
    Log,
    TestParams,
    run_access_tracking_perf_test,
)
from mglru.tools.access_tracking.params import DEFAULT_CONFIG
from mglru.tools.lru_gen import RULES
from mglru.tools.memstress import (
    BACKING_SRC_TYPES,
    DEFAULT_GUEST_MODE,
    GUEST_MODES,
    SUPPORTED_BACKING_SRCS,
    guest_mode_string,
)

__all__ = ["access_tracking_perf_test", "c_help"]


def c_help(arch: str = "x86") -> str:
    """The C test's help(), with the simulated host's supported modes and sources."""
    lines = [
        "",
        "usage: access_tracking_perf_test [-h] [-m mode] [-b vcpu_bytes] [-v vcpus] [-o] "
        "[-s mem_type] [-l] [-r memcg_root]",
        "",
        " -h: Display this help message.",
        " -m: specify the guest mode ID to test",
        "     (default: test all supported modes)",
        "     This option may be used multiple times.",
        "     Guest mode IDs:",
    ]
    default = DEFAULT_GUEST_MODE[arch]
    for m in GUEST_MODES:
        mark = " (supported)" if m.id == default else ""
        lines.append(f"         {m.id}:    {guest_mode_string(m.id)}{mark}")
    lines += [
        " -b: specify the size of the memory region which should be",
        "     dirtied by each vCPU. e.g. 10M or 3G.",
        "     (default: 1G)",
        " -v: specify the number of vCPUs to run.",
        " -o: Overlap guest memory accesses instead of partitioning",
        "     them into a separate region of memory for each vCPU.",
        " -l: Use MGLRU aging instead of idle page tracking",
        " -p: Benchmark MGLRU aging while faulting memory in",
        " -r: The memory cgroup hierarchy root to use (when -l is given)",
        " -w: idle page checks only warn (>0) or fail (0); default: auto (upstream rules)",
        " -s: specify the type of memory that should be used to",
        "     back the guest data region. (default: anonymous)",
        "     available values:",
    ]
    for name, src in BACKING_SRC_TYPES.items():
        lines.append(f"         {name}{'' if src.supported else ' (not modelled)'}")
    lines += [
        "",
        "mglru options: --kernel sim|host|qemu:NAME, --config PRESET, --rules v4|upstream,",
        "               --json FILE, --arch ARCH, --no-tdp-mmu, --seed N (see --help)",
        "",
    ]
    return "\n".join(lines)


@click.command("access-tracking-perf-test",
               context_settings={"help_option_names": ["--help"]})
@click.option("-h", "show_help", is_flag=True, help="print the C test's help and exit")
@click.option("-m", "modes", type=int, multiple=True, metavar="mode",
              help="guest mode ID (repeatable; default: the arch's supported mode)")
@click.option("-b", "vcpu_bytes", type=Size(), default=DEFAULT_PER_VCPU_MEM_SIZE,
              metavar="vcpu_bytes", help="memory per vCPU, e.g. 10M or 3G [default: 1G]")
@click.option("-v", "vcpus", type=int, default=1, metavar="vcpus", help="vCPUs [default: 1]")
@click.option("-o", "overlap", is_flag=True, help="all vCPUs access all memory")
@click.option("-s", "mem_type", default="anonymous", metavar="mem_type",
              help=f"backing source ({', '.join(SUPPORTED_BACKING_SRCS)})")
@click.option("-l", "lru_gen", is_flag=True, help="MGLRU aging instead of idle page tracking")
@click.option("-p", "benchmark", is_flag=True, help="benchmark aging while faulting memory in")
@click.option("-r", "memcg_root", default="/sys/fs/cgroup", metavar="memcg_root",
              help="memory cgroup hierarchy root (with -l) [default: /sys/fs/cgroup]")
@click.option("-w", "warn_only", type=int, default=None, metavar="n",
              help="idle page checks: >0 warn only, 0 fail [default: auto]")
@click.option("--kernel", "kernel", type=KernelSpecType(), default="sim", show_default=True,
              help=f"the simulated kernel, this host, or a stock kernel in QEMU "
                   f"({KERNEL_SPEC_HELP})")
@click.option("--config", type=click.Choice(list(PRESETS)), default=DEFAULT_CONFIG,
              show_default=True, help="simulated kernel preset")
@click.option("--rules", type=click.Choice(list(RULES)), default=None,
              help="the test as posted in v4, or upstream v6.16+ [default: v4 for "
                   "seed-v4/seed-v4-noopt, upstream for other presets and --kernel host]")
@json_option()
@click.option("--arch", type=click.Choice(list(ARCHES)), default=None,
              help="the VM's secondary MMU model [default: the preset's arch]")
@click.option("--tdp-mmu/--no-tdp-mmu", default=True, show_default=True,
              help="x86: the TDP MMU, or the shadow MMU (kvm.tdp_mmu=N)")
@click.option("--seed", type=int, default=0, show_default=True, help="simulated kernel seed")
@click.option("--test-clear-caps", type=str, default=None, hidden=True,
              help="test hook: clear these cap bits (hex) right after the feature check")
def access_tracking_perf_test(show_help: bool, modes: tuple[int, ...], vcpu_bytes: int,
                              vcpus: int, overlap: bool, mem_type: str, lru_gen: bool,
                              benchmark: bool, memcg_root: str, warn_only: int | None,
                              kernel: KernelSpec, config: str, rules: str | None,
                              json_path: str | None, arch: str | None, tdp_mmu: bool,
                              seed: int, test_clear_caps: str | None) -> None:
    """KVM's access_tracking_perf_test (with the v4 series' -l/-p/-r) on a kernel.

    Measures guest access times before and after memory is marked idle
    (idle page tracking, or MGLRU aging with -l, which also checks that
    guest-accessed pages move to newer generations). Exit codes: 0 pass,
    1 fail, 4 skip.
    """
    ctx = click.get_current_context()
    if show_help:
        click.echo(c_help(arch or PRESETS[config].arch))
        ctx.exit(0)
    try:
        clear = int(test_clear_caps, 16) if test_clear_caps else 0
    except ValueError:
        raise click.BadParameter(f"not hex: {test_clear_caps!r}",
                                 param_hint="--test-clear-caps") from None
    if kernel.kind == "sim":  # "sim:PRESET" is --config PRESET
        config, kernel = kernel.arg or config, KernelSpec("sim")
    params = TestParams(vcpu_memory_bytes=vcpu_bytes, nr_vcpus=vcpus, overlap=overlap,
                        backing_src=mem_type, modes=list(modes) or None, lru_gen=lru_gen,
                        benchmark=benchmark, cgroup_root=memcg_root, warn_only=warn_only,
                        kernel=str(kernel), config=config, rules=rules, arch=arch, tdp_mmu=tdp_mmu,
                        seed=seed, clear_caps_after_check=clear)
    # with `--json -` stdout carries the document only: the C test's lines go to stderr
    log = Log(out=sys.stderr) if json_path == "-" else Log()
    result = run_access_tracking_perf_test(params, log=log)
    if json_path:
        options = {k: v for k, v in ctx.params.items()
                   if k not in ("show_help", "json_path", "test_clear_caps")}
        options["modes"] = list(modes)
        options["kernel"] = str(kernel)
        config = configuration("access-tracking-perf-test", **options,
                               resolved={k: result.record.get(k)
                                         for k in ("config", "rules", "arch", "mmu")})
        write_json(json_path, document("mglru.access-tracking-perf-test/1", config,
                                       **dict(sorted(result.record.items()))))
    ctx.exit(result.exit_code)
