"""memstress for the simulated KVM: a VM whose vCPUs sweep their memory.

As tools/testing/selftests/kvm/lib/memstress.c; v4 7/7.

The KVM selftests' `lib/memstress.c` as the access-tracking test uses it,
over the simulated kernel's user-space API (what a VMM does with syscalls:
mmap, KVM_CREATE_VM, KVM_SET_USER_MEMORY_REGION, KVM_RUN):

- `memstress_create_vm` makes one VM with `nr_vcpus` vCPUs and
  `nr_vcpus * vcpu_memory_bytes` of guest test memory in `slots` memslots,
  backed by a `backing_src` type (`anonymous`, `anonymous_thp`); each vCPU
  gets its own region (`partition=True`) or all share the whole of it (the
  test's `-o`);
- one *iteration* of a vCPU is one pass of memstress's guest code over its
  region: every guest page is touched once, written with probability
  `write_percent` %, else read. Guest page tables are not modelled, so the
  guest addresses its memory directly (gva == gpa) and guest pages are
  4 KiB (`GUEST_MODES` lists the others as unsupported);
- `VcpuThreads` tracks, per vCPU, the last iteration it completed and when
  (host clock), like `vcpu_last_completed_iteration[]` and
  `vcpu_last_completed_time[]` in the test. vCPU threads run one after the
  other: the functional model is sequential (times of concurrent runs come
  from the timing model, `mglru.timing`).

An iteration touches a region with one `vm.vcpu_access` call per vCPU when
`write_percent` is 0 or 100 (the only values the access-tracking test uses);
other percentages draw each page's kind from a seeded generator and issue
one call per run of same-kind pages.

Future optimizations:
1. a masked `vcpu_access` (pages given by a boolean array) would make mixed
   write percentages one call per region too.
2. guest page sizes above 4 KiB need a strided `vcpu_access` (the guest
   touches one word per guest page, so only one host page in 16 for 64K).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PAGE_SIZE, PMD_SIZE

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm import Kvm
    from mglru.mm.process import Process

__all__ = ["HOST_PAGE_SIZE", "KVM_MAX_VCPUS", "BACKING_SRC_TYPES", "SUPPORTED_BACKING_SRCS",
           "BackingSrc", "GuestMode", "GUEST_MODES", "DEFAULT_GUEST_MODE", "guest_mode_string",
           "guest_modes_for_arch", "MemstressError", "UnknownBackingSrc",
           "UnsupportedBackingSrc", "VcpuArgs", "MemstressArgs", "parse_backing_src_type",
           "memstress_create_vm", "addr_gpa2hva", "memstress_set_write_percent",
           "memstress_guest_code", "VcpuThreads"]

#: getpagesize() of the simulated host
HOST_PAGE_SIZE = PAGE_SIZE
#: the selftests' KVM_MAX_VCPUS bound on -v
KVM_MAX_VCPUS = 512


class MemstressError(ValueError):
    """A memstress precondition failed (the C library's TEST_ASSERT)."""


class UnknownBackingSrc(MemstressError):
    """`-s` names no backing source type the selftests know."""


class UnsupportedBackingSrc(MemstressError):
    """A backing source type the simulated kernel does not model."""


# -- backing sources (lib/test_util.c: vm_mem_backing_src_alias) -------------------------
@dataclass(frozen=True, slots=True)
class BackingSrc:
    """A backing source type as `-s` names it.

    Attributes:
        name: the selftest's alias ("anonymous", "anonymous_thp", ...).
        pagesz: its page size in bytes (THP: the PMD size it aligns to).
        thp: mmap with MADV_HUGEPAGE.
        supported: whether the simulated kernel can back guest memory with it.
    """

    name: str
    pagesz: int
    thp: bool = False
    supported: bool = False


_HUGETLB_SIZES = (("16kb", 16 << 10), ("64kb", 64 << 10), ("512kb", 512 << 10),
                  ("1mb", 1 << 20), ("2mb", 2 << 20), ("8mb", 8 << 20), ("16mb", 16 << 20),
                  ("32mb", 32 << 20), ("256mb", 256 << 20), ("512mb", 512 << 20),
                  ("1gb", 1 << 30), ("2gb", 2 << 30), ("16gb", 16 << 30))

#: every type the C library knows, in its order; only the first two are modelled
BACKING_SRC_TYPES: dict[str, BackingSrc] = {
    s.name: s for s in (
        BackingSrc("anonymous", HOST_PAGE_SIZE, supported=True),
        BackingSrc("anonymous_thp", PMD_SIZE, thp=True, supported=True),
        BackingSrc("anonymous_hugetlb", 2 << 20),
        *(BackingSrc(f"anonymous_hugetlb_{n}", sz) for n, sz in _HUGETLB_SIZES),
        BackingSrc("shared_hmem", HOST_PAGE_SIZE),
        BackingSrc("shared_hugetlb", 2 << 20),
        BackingSrc("shmem", HOST_PAGE_SIZE),
    )
}
SUPPORTED_BACKING_SRCS = tuple(n for n, s in BACKING_SRC_TYPES.items() if s.supported)

#: why the others are not modelled (hugetlb folios are not on the LRU; shared
#: memory would need shmem-backed memslots)
_UNSUPPORTED_WHY = ("hugetlbfs and shared (memfd/shmem) backing are not modelled by the simulated "
                    "kernel")


def parse_backing_src_type(name: str) -> BackingSrc:
    """The backing source called `name`.

    Raises:
        UnknownBackingSrc: "Unknown backing src type: NAME", with the list.
        UnsupportedBackingSrc: not modelled (the message says which are).
    """
    src = BACKING_SRC_TYPES.get(name)
    if src is None:
        raise UnknownBackingSrc(f"Unknown backing src type: {name} (available: "
                                f"{', '.join(BACKING_SRC_TYPES)})")
    if not src.supported:
        raise UnsupportedBackingSrc(f"backing src type {name} is not supported: "
                                    f"{_UNSUPPORTED_WHY}; supported: "
                                    f"{', '.join(SUPPORTED_BACKING_SRCS)}")
    return src


# -- guest modes (lib/guest_modes.c, kvm_util.c: vm_guest_mode_string) -------------------
@dataclass(frozen=True, slots=True)
class GuestMode:
    """One `enum vm_guest_mode` entry: physical/virtual address bits and guest page size."""

    id: int
    pa_bits: int | None  # None: "ANY" (x86 takes the host's)
    va_bits: int
    page_size: int

    def __str__(self) -> str:
        """vm_guest_mode_string()."""
        pa = "ANY," if self.pa_bits is None else f"{self.pa_bits},"
        kib = f"{self.page_size >> 10}K"
        return f"PA-bits:{pa:<4} VA-bits:{self.va_bits}, {kib:>3} pages"


#: enum vm_guest_mode, in the selftests' order (the ids `-m` takes)
GUEST_MODES: tuple[GuestMode, ...] = tuple(
    GuestMode(i, pa, va, ps << 10) for i, (pa, va, ps) in enumerate((
        (52, 48, 4), (52, 48, 16), (52, 48, 64), (48, 48, 4), (48, 48, 16), (48, 48, 64),
        (40, 48, 4), (40, 48, 16), (40, 48, 64), (None, 48, 4), (47, 64, 4), (44, 64, 4),
        (36, 48, 4), (36, 48, 16), (36, 48, 64), (36, 47, 16))))

#: VM_MODE_DEFAULT per arch (the mode the library appends first)
DEFAULT_GUEST_MODE = {"x86": 9, "arm64": 6, "riscv": 6, "loongarch": 6, "mips": 6,
                      "powerpc": 6}


def guest_mode_string(mode: int) -> str:
    """vm_guest_mode_string(): e.g. "PA-bits:ANY, VA-bits:48,  4K pages"."""
    return str(GUEST_MODES[mode])


def guest_modes_for_arch(arch: str) -> dict[int, bool]:
    """Mode id -> supported on a simulated host of `arch`: only its 4K default mode.

    Larger guest pages change what memstress touches (one word per guest
    page), which `vcpu_access` cannot express without a per-page loop; see
    the module docstring.
    """
    default = DEFAULT_GUEST_MODE[arch]
    return {m.id: m.id == default for m in GUEST_MODES}


# -- the VM -----------------------------------------------------------------------------
@dataclass(slots=True)
class VcpuArgs:
    """memstress_vcpu_args: what one vCPU's guest code sweeps.

    Attributes:
        vcpu_idx: the vCPU.
        gpa: start of its region (gva == gpa).
        pages: guest pages in the region.
        page_size: guest page size.
    """

    vcpu_idx: int
    gpa: int
    pages: int
    page_size: int

    @property
    def nbytes(self) -> int:
        """The region's size in bytes."""
        return self.pages * self.page_size


@dataclass(slots=True)
class MemstressArgs:
    """memstress_args: the VM, the test memory and the guest code's knobs.

    Attributes:
        k: the kernel.
        process: the VMM (test) process.
        vm: the VM.
        mode: the guest mode id.
        backing_src: the backing source.
        gpa: start of the test memory.
        size: its size in bytes.
        guest_page_size: from the mode.
        write_percent: chance (in %) that a guest access is a write.
        partition: each vCPU has its own region (else all share all memory).
        memslots: (gpa, size, hva) of each memslot the library created, as the
            VMM records them (user space's gpa -> hva translation).
        vcpu_args: per vCPU.
        rng: draws access kinds for mixed write percentages.
    """

    k: SimKernel
    process: Process
    vm: Kvm
    mode: int
    backing_src: BackingSrc
    gpa: int
    size: int
    guest_page_size: int
    write_percent: int = 100
    partition: bool = True
    memslots: list[tuple[int, int, int]] = field(default_factory=list)
    vcpu_args: list[VcpuArgs] = field(default_factory=list)
    rng: np.random.Generator = field(default_factory=lambda: np.random.default_rng(0))

    @property
    def nr_vcpus(self) -> int:
        """vCPUs of the VM."""
        return len(self.vcpu_args)


def memstress_create_vm(k: SimKernel, process: Process, *, mode: int, nr_vcpus: int,
                        vcpu_memory_bytes: int, slots: int = 1,
                        backing_src: BackingSrc | str = "anonymous", partition: bool = True,
                        arch: str | None = None, tdp_mmu: bool = True, seed: int = 0,
                        log: Callable[[str], None] | None = None) -> MemstressArgs:
    """Create the VM and its test memory, as memstress_create_vm() does.

    Args:
        k: the kernel.
        process: the test process (its mm backs the guest).
        mode: guest mode id (see `GUEST_MODES`).
        nr_vcpus: vCPUs.
        vcpu_memory_bytes: bytes of test memory per vCPU.
        slots: memslots to split the test memory into.
        backing_src: a `BackingSrc` or its name.
        partition: give each vCPU its own region (False: the test's `-o`).
        arch: the VM's arch model (default the kernel's).
        tdp_mmu: x86: the TDP MMU, or the shadow MMU if False.
        seed: seeds the guest's write/read draws.
        log: receives the library's pr_info lines.

    Raises:
        MemstressError: a size or mode the C library rejects.
    """
    src = parse_backing_src_type(backing_src) if isinstance(backing_src, str) else backing_src
    arch = arch or k.cfg.arch
    supported = guest_modes_for_arch(arch)
    if not 0 <= mode < len(GUEST_MODES):
        raise MemstressError(f"Guest mode ID {mode} too big")
    if not supported[mode]:
        raise MemstressError(f"Guest mode ID {mode} ({guest_mode_string(mode)}) not supported.")
    if not tdp_mmu and arch != "x86":
        raise MemstressError(f"the shadow MMU (tdp_mmu=False) is an x86 model; arch is {arch}")
    if not 1 <= nr_vcpus <= KVM_MAX_VCPUS:
        raise MemstressError(f"Invalid number of vcpus, must be between 1 and {KVM_MAX_VCPUS}")
    guest_page_size = GUEST_MODES[mode].page_size
    if log:
        log(f"Testing guest mode: {guest_mode_string(mode)}")
    if vcpu_memory_bytes <= 0 or vcpu_memory_bytes % HOST_PAGE_SIZE:
        raise MemstressError("Guest memory size is not host page size aligned.")
    if vcpu_memory_bytes % guest_page_size:
        raise MemstressError("Guest memory size is not guest page size aligned.")
    guest_num_pages = nr_vcpus * vcpu_memory_bytes // guest_page_size
    if slots < 1 or guest_num_pages % slots:
        raise MemstressError(f"Guest memory cannot be evenly divided into {slots} slots.")
    size = guest_num_pages * guest_page_size
    vm = k.create_vm(process, arch=arch, nr_vcpus=nr_vcpus, tdp_mmu=tdp_mmu)
    slot_bytes = size // slots
    # memstress's memslots are in address space 0 only (lib/memstress.c), even
    # where x86 has an SMM address space
    gpa = vm.add_memory(slot_bytes, thp=src.thp, as_ids=(0,))
    for i in range(1, slots):
        vm.add_memory(slot_bytes, gpa=gpa + i * slot_bytes, thp=src.thp, as_ids=(0,))
    if log:
        log(f"guest physical test memory: [{gpa:#x}, {gpa + size:#x})")
    args = MemstressArgs(k, process, vm, mode, src, gpa, size, guest_page_size,
                         partition=partition, rng=np.random.default_rng(seed))
    for i in range(slots):
        g = gpa + i * slot_bytes
        args.memslots.append((g, slot_bytes, vm.gpa_to_hva(g)))
    per_vcpu = vcpu_memory_bytes // guest_page_size
    for i in range(nr_vcpus):
        if partition:
            args.vcpu_args.append(VcpuArgs(i, gpa + i * vcpu_memory_bytes, per_vcpu,
                                           guest_page_size))
        else:
            args.vcpu_args.append(VcpuArgs(i, gpa, guest_num_pages, guest_page_size))
    return args


def addr_gpa2hva(args: MemstressArgs, gpas: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """addr_gpa2hva() for many addresses, from the memslots the library created.

    Raises:
        MemstressError: an address outside the test memory.
    """
    hvas = np.full(len(gpas), -1, np.int64)
    for g, size, hva in args.memslots:
        inside = (gpas >= g) & (gpas < g + size)
        hvas[inside] = gpas[inside] - g + hva
    if len(hvas) and hvas.min() < 0:
        bad = int(gpas[np.argmax(hvas < 0)])
        raise MemstressError(f"No vm physical memory at {bad:#x}")
    return hvas


def memstress_set_write_percent(args: MemstressArgs, write_percent: int) -> None:
    """memstress_set_write_percent(): the share of guest accesses that write.

    Raises:
        MemstressError: outside 0..100.
    """
    if not 0 <= write_percent <= 100:
        raise MemstressError(f"write_percent must be in [0, 100], got {write_percent}")
    args.write_percent = write_percent


def memstress_guest_code(args: MemstressArgs, vcpu_idx: int) -> None:
    """One pass of the guest code on a vCPU: touch every page of its region once."""
    va = args.vcpu_args[vcpu_idx]
    vm = args.vm
    if args.write_percent in (0, 100):
        vm.vcpu_access(vcpu_idx, va.gpa, va.nbytes, write=args.write_percent == 100)
        return
    # guest_random_u32() % 100 < write_percent, per page; one call per run of one kind
    writes = args.rng.integers(0, 100, va.pages) < args.write_percent
    edges = np.flatnonzero(np.diff(writes.view(np.int8))) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [va.pages]))
    ps = va.page_size
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        vm.vcpu_access(vcpu_idx, va.gpa + s * ps, (e - s) * ps, write=bool(writes[s]))


# -- vCPU threads and their completion tracking -------------------------------------------
class VcpuThreads:
    """The test's vCPU threads: an iteration counter and per-vCPU completion.

    `run_iteration(work)` kicks every vCPU into the next iteration and runs
    `work(vcpu_args)` for each, in vCPU order; afterwards
    `last_completed_iteration[i]` is the iteration vCPU i finished and
    `last_completed_ns[i]` when (host `perf_counter_ns`).
    """

    def __init__(self, args: MemstressArgs) -> None:
        """Threads for the vCPUs of `args`, none started on an iteration yet."""
        self.args = args
        #: the iteration the vCPUs were last kicked into
        self.iteration = 0
        self.last_completed_iteration = [0] * args.nr_vcpus
        self.last_completed_ns = [0] * args.nr_vcpus

    def run_iteration(self, work: Callable[[VcpuArgs], None]) -> int:
        """Start the next iteration and run it on every vCPU; returns its number."""
        self.iteration += 1
        for va in self.args.vcpu_args:
            work(va)
            self.last_completed_iteration[va.vcpu_idx] = self.iteration
            self.last_completed_ns[va.vcpu_idx] = time.perf_counter_ns()
        return self.iteration

    def all_vcpus_done(self, target_iteration: int) -> bool:
        """Whether every vCPU completed `target_iteration`."""
        return all(it == target_iteration for it in self.last_completed_iteration)

    def guest_code(self, va: VcpuArgs) -> None:
        """`work` for ITERATION_ACCESS_MEMORY: run the guest code once."""
        memstress_guest_code(self.args, va.vcpu_idx)
