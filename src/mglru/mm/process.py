"""Processes, mm_structs, VMAs and primary page tables.

Kernel: include/linux/mm_types.h; the VMA filter of mm/vmscan.c: walk_mm().

Page tables keep the kernel's shape where the aging walk can see it: a PMD
entry per 2 MiB (none / PTE table / THP leaf / huge zero page, with accessed
and dirty bits, including the *non-leaf* accessed bit) and a PTE table of 512
entries (present, accessed, dirty, special, write, pfn). Tables live in one
pool per mm, one row per 2 MiB of mapped virtual space; PUD/P4D levels are
implied by addresses.

Per mapped 4 KiB page: 5 bytes (uint32 pfn + uint8 bits).

Public API (see docs/architecture.md, "Processes"):

    p = k.spawn(memcg="/a")            # a task with a fresh mm
    addr = p.mmap(nbytes, thp=True)    # anonymous; file=... for file-backed
    p.access(addr, nbytes, write=True) # faults and sets accessed bits
"""

from __future__ import annotations

import errno
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.page import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_LEAF,
    PMD_NONE,
    PMD_SHIFT,
    PMD_SIZE,
    PTE_PRESENT,
    PTRS_PER_PTE,
)

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.filemap import File
    from mglru.mm.memcg import MemCgroup

__all__ = ["Vma", "PageTables", "Mm", "Process", "VM_FLAGS"]

# vm_flags bits (the subset the VMA filter and faults read)
VM_READ = 1 << 0
VM_WRITE = 1 << 1
VM_EXEC = 1 << 2
VM_SHARED = 1 << 3
VM_LOCKED = 1 << 13
VM_IO = 1 << 14
VM_SEQ_READ = 1 << 15
VM_RAND_READ = 1 << 16
VM_DONTEXPAND = 1 << 18
VM_HUGETLB = 1 << 22
VM_PFNMAP = 1 << 10
VM_MIXEDMAP = 1 << 28
VM_HUGEPAGE = 1 << 29
VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP

VM_FLAGS = {
    "read": VM_READ, "write": VM_WRITE, "exec": VM_EXEC, "shared": VM_SHARED,
    "locked": VM_LOCKED, "io": VM_IO, "seq_read": VM_SEQ_READ, "rand_read": VM_RAND_READ,
    "dontexpand": VM_DONTEXPAND, "hugetlb": VM_HUGETLB, "pfnmap": VM_PFNMAP,
    "mixedmap": VM_MIXEDMAP, "hugepage": VM_HUGEPAGE,
}

_MMAP_BASE = 0x7F00_0000_0000 >> 4  # bottom-up allocation keeps tables sorted
#: TASK_SIZE_MAX of x86-64 with 4-level paging: the top of the user address space
TASK_SIZE = (1 << 47) - PAGE_SIZE
#: vm.mmap_min_addr's default: the lowest address a mapping may use
MMAP_MIN_ADDR = 65536


@dataclass(slots=True)
class Vma:
    """A vm_area_struct: [start, end) with flags and an optional file."""

    start: int
    end: int
    flags: int
    file: File | None = None
    pgoff: int = 0
    #: page-table rows covering this VMA's 2 MiB slots, in address order
    rows: npt.NDArray[np.int64] = field(default_factory=lambda: np.empty(0, np.int64))
    #: vma->swap_readahead_info: (last swap fault address, window, readahead hits)
    swap_ra: tuple[int, int, int] = (0, 0, 0)

    @property
    def is_anon(self) -> bool:
        """Anonymous (no file)."""
        return self.file is None

    @property
    def thp(self) -> bool:
        """THP allowed (MADV_HUGEPAGE analogue)."""
        return bool(self.flags & VM_HUGEPAGE)

    def pte_index(self, vpns: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """Flat PTE-pool indices of virtual page numbers inside this VMA."""
        rows = self.rows[(vpns >> 9) - (self.start >> PMD_SHIFT)]
        return rows * PTRS_PER_PTE + (vpns & (PTRS_PER_PTE - 1))


class PageTables:
    """The page-table pool of one mm: PMD entries and PTE tables by row."""

    def __init__(self) -> None:
        cap = 16
        self.nr_rows = 0
        self.pmd_addr = np.zeros(cap, np.int64)  # base address of the 2 MiB slot
        self.pmd_state = np.zeros(cap, np.uint8)  # PMD_NONE / TABLE / LEAF / HUGE_ZERO
        self.pmd_flags = np.zeros(cap, np.uint8)  # PTE_YOUNG / PTE_DIRTY on the PMD
        self.pmd_pfn = np.zeros(cap, np.uint32)  # head pfn of a THP leaf
        self.pte_pfn = np.zeros((cap, PTRS_PER_PTE), np.uint32)
        self.pte_flags = np.zeros((cap, PTRS_PER_PTE), np.uint8)
        self.row_of: dict[int, int] = {}
        self._sorted: npt.NDArray[np.int64] | None = None

    def ensure_rows(self, start: int, end: int) -> npt.NDArray[np.int64]:
        """Rows for every 2 MiB slot overlapping [start, end), creating empty ones."""
        first, last = start >> PMD_SHIFT, (end - 1) >> PMD_SHIFT
        row_of = self.row_of
        need = [s for s in range(first, last + 1) if s not in row_of]
        if need:
            r0 = self.nr_rows
            if r0 + len(need) > len(self.pmd_addr):
                self._grow(r0 + len(need))
            row_of.update(zip(need, range(r0, r0 + len(need)), strict=True))
            self.pmd_addr[r0:r0 + len(need)] = np.array(need, np.int64) << PMD_SHIFT
            self.nr_rows += len(need)
            self._sorted = None
            if len(need) == last + 1 - first:  # a fresh range: rows in slot order
                return np.arange(r0, r0 + len(need), dtype=np.int64)
        return np.fromiter((row_of[s] for s in range(first, last + 1)), np.int64,
                           last + 1 - first)

    def _grow(self, n: int) -> None:
        cap = max(n, 2 * len(self.pmd_addr))

        def grow(a: np.ndarray) -> np.ndarray:
            b = np.zeros((cap,) + a.shape[1:], a.dtype)
            b[: len(a)] = a
            return b

        self.pmd_addr = grow(self.pmd_addr)
        self.pmd_state = grow(self.pmd_state)
        self.pmd_flags = grow(self.pmd_flags)
        self.pmd_pfn = grow(self.pmd_pfn)
        self.pte_pfn = grow(self.pte_pfn)
        self.pte_flags = grow(self.pte_flags)

    def sorted_rows(self) -> npt.NDArray[np.int64]:
        """Row indices in address order (the order a page-table walk visits them)."""
        if self._sorted is None:
            self._sorted = np.argsort(self.pmd_addr[: self.nr_rows], kind="stable").astype(np.int64)
        return self._sorted

    def flat_pfn(self) -> npt.NDArray[np.uint32]:
        """PTE pfns as one flat array (a view)."""
        return self.pte_pfn.reshape(-1)

    def flat_flags(self) -> npt.NDArray[np.uint8]:
        """PTE bits as one flat array (a view)."""
        return self.pte_flags.reshape(-1)

    def clear_rows(self, rows: npt.NDArray[np.int64]) -> None:
        """Forget the contents of some rows (munmap of whole tables)."""
        self.pmd_state[rows] = PMD_NONE
        self.pmd_flags[rows] = 0
        self.pte_flags[rows] = 0
        self.pte_pfn[rows] = 0


class Mm:
    """An mm_struct: VMAs, page tables, the lru_gen bitmap and notifier subscriptions."""

    def __init__(self, id_: int, owner: Process) -> None:
        self.id = id_
        # a weak reference: the task holds its mm, not the other way round, so an
        # exited task and its mm are freed as soon as nothing uses them (no cycle
        # for the garbage collector to find later, with their arrays)
        self._owner = weakref.ref(owner)
        self.vmas: list[Vma] = []
        self.pt = PageTables()
        #: lru_gen.bitmap: one bit per node id mod 64, set when a task using it runs
        self.lru_gen_bitmap = 0
        #: mm_users; 0 once the mm is torn down
        self.users = 1
        #: MMU notifier subscriptions (mmu_notifier_register), see mglru.kvm
        self.notifiers: list = []
        #: mmap_lock held for write elsewhere: the walk skips the mm (mm/vmscan.c: walk_mm())
        self.mmap_lock_busy = False
        #: PMD slots (addr >> PMD_SHIFT) whose PTE-table lock another CPU holds: a
        #: test hook for the contended-trylock paths of the walk (mm/vmscan.c: walk_pte_range())
        self.ptl_contended: set[int] = set()
        self._next_addr = _MMAP_BASE

    @property
    def owner(self) -> Process:
        """mm->owner: the task that owns this mm (CONFIG_MEMCG)."""
        p = self._owner()
        assert p is not None, "the owner of a live mm is gone"
        return p

    def __repr__(self) -> str:
        return f"Mm(id={self.id}, vmas={len(self.vmas)})"

    @property
    def memcg(self) -> MemCgroup:
        """The memcg charged for this mm: its owner task's (mm->owner)."""
        return self.owner.memcg

    def nr_mapped(self) -> int:
        """Pages mapped by present PTEs and THP PMDs (an RSS estimate)."""

        n = self.pt.nr_rows
        return int(np.count_nonzero(self.pt.pte_flags[:n] & PTE_PRESENT)
                   + 512 * np.count_nonzero(self.pt.pmd_state[:n] == PMD_LEAF))

    def has_notifiers(self) -> bool:
        """mm_has_notifiers(): any secondary MMU subscribed."""
        return bool(self.notifiers)

    def find_vma(self, addr: int) -> Vma | None:
        """The VMA containing addr, if any."""
        for vma in self.vmas:
            if vma.start <= addr < vma.end:
                return vma
        return None

    def vmas_in(self, start: int, end: int) -> list[Vma]:
        """VMAs overlapping [start, end), in address order."""
        return [v for v in self.vmas if v.start < end and start < v.end]

    def use(self) -> None:
        """lru_gen_use_mm(): a task of this mm was switched in (include/linux/mm_types.h)."""
        self.lru_gen_bitmap = (1 << 64) - 1

    def get_unmapped_area(self, nbytes: int) -> int:
        """Next free address; 2 MiB aligned so THP can be used, with a guard gap.

        Raises:
            OSError: ENOMEM when the range would pass TASK_SIZE
                (mm/mmap.c, generic_get_unmapped_area).
        """
        addr = -(-self._next_addr // PMD_SIZE) * PMD_SIZE
        if nbytes > TASK_SIZE - MMAP_MIN_ADDR or addr > TASK_SIZE - nbytes:
            raise OSError(errno.ENOMEM, "Cannot allocate memory")
        self._next_addr = addr + nbytes + PMD_SIZE
        return addr

    def insert_vma(self, vma: Vma) -> None:
        """Link a VMA, keeping address order, and give it page-table rows."""
        for v in self.vmas:
            if v.start < vma.end and vma.start < v.end:
                raise OSError(17, f"mapping [{vma.start:#x}, {vma.end:#x}) overlaps "
                                  f"[{v.start:#x}, {v.end:#x})")
        vma.rows = self.pt.ensure_rows(vma.start, vma.end)
        self.vmas.append(vma)
        self.vmas.sort(key=lambda v: v.start)


class Process:
    """A task with its own mm. Created by `SimKernel.spawn`."""

    def __init__(self, kernel: SimKernel, pid: int, memcg: MemCgroup, nid: int) -> None:
        self.kernel = kernel
        self.pid = pid
        self.memcg = memcg
        #: preferred node for allocations (the node the task runs on)
        self.nid = nid
        self.mm = Mm(pid, self)
        self.alive = True

    def __repr__(self) -> str:
        return f"Process(pid={self.pid}, memcg={self.memcg.path!r})"

    def mmap(self, nbytes: int, *, addr: int | None = None, file: File | None = None,
             offset: int = 0, thp: bool = False, shared: bool = False,
             flags: tuple[str, ...] = ()) -> int:
        """Map `nbytes` (rounded up to pages) and return the start address.

        Args:
            nbytes: length in bytes.
            addr: a fixed, page-aligned address (MAP_FIXED_NOREPLACE), else chosen.
            file: back the mapping with a file's page cache (MAP_SHARED).
            offset: file offset in bytes (page aligned).
            thp: allow transparent huge pages (MADV_HUGEPAGE).
            shared: MAP_SHARED|MAP_ANONYMOUS without a file: the mapping gets an
                unnamed shmem file of its length, as mmap_region() does through
                shmem_zero_setup() (mm/mmap.c), so its pages are shmem.
            flags: extra VMA flags by name: locked, io, seq_read, rand_read,
                dontexpand, hugetlb, pfnmap, mixedmap.

        Raises:
            ValueError: bad length, alignment or flag name.
            OSError: EEXIST if a fixed range overlaps an existing mapping;
                ENOMEM if it is longer than the address space (TASK_SIZE),
                does not fit below it, or (private anonymous) exceeds RAM
                plus swap, as vm.overcommit_memory=0 refuses.
        """
        if nbytes <= 0:
            raise ValueError(f"mmap length must be positive, got {nbytes}")
        length = -(-nbytes // PAGE_SIZE) * PAGE_SIZE
        if length > TASK_SIZE:  # do_mmap(): "Careful about overflows.."
            raise OSError(errno.ENOMEM, f"Cannot allocate memory: {nbytes} bytes exceed "
                          f"the {TASK_SIZE + PAGE_SIZE >> 40} TiB address space")
        anon_shared = shared and file is None
        if anon_shared:
            from mglru.mm.filemap import File as _File

            file = _File("dev/zero (deleted)", length, shmem=True, anon=True)
        if file is None and not {"shared"} & set(flags):
            self._vm_enough_memory(length >> PAGE_SHIFT)
        vm = VM_READ | VM_WRITE | (VM_HUGEPAGE if thp else 0)
        for name in flags:
            try:
                vm |= VM_FLAGS[name]
            except KeyError:
                raise ValueError(f"unknown VMA flag {name!r}; "
                                 f"valid: {', '.join(VM_FLAGS)}") from None
        if file is not None:
            vm |= VM_SHARED
        if addr is None:
            addr = self.mm.get_unmapped_area(length)
        elif addr % PAGE_SIZE or offset % PAGE_SIZE:
            raise ValueError(f"address {addr:#x} and offset {offset:#x} must be page aligned")
        elif addr < 0 or addr > TASK_SIZE - length:
            raise OSError(errno.ENOMEM, f"Cannot allocate memory: [{addr:#x}, +{length:#x}) "
                          "is outside the user address space")
        self.mm.insert_vma(Vma(addr, addr + length, vm, file, offset >> PAGE_SHIFT))
        if anon_shared:  # the kernel's page cache (and rmap) must find its pages
            self.kernel.files[f"dev/zero (deleted) {self.pid}:{addr:#x}"] = file
        return addr

    def _vm_enough_memory(self, pages: int) -> None:
        """__vm_enough_memory() under vm.overcommit_memory = 0 (mm/util.c).

        The heuristic refuses one private writable mapping larger than all
        RAM plus all swap (accountable_mapping(), mm/mmap.c): it could never
        be backed.

        Raises:
            OSError: ENOMEM.
        """
        k = self.kernel
        limit = k.mem.max_pfn + k.swap.capacity
        if pages > limit:
            raise OSError(errno.ENOMEM, f"Cannot allocate memory: {pages << PAGE_SHIFT} bytes "
                          f"exceed RAM + swap ({limit << PAGE_SHIFT} bytes), "
                          "vm.overcommit_memory=0")

    def access(self, addr: int, nbytes: int, *, write: bool = False) -> None:
        """Touch [addr, addr+nbytes) from user space: fault in, set accessed (and dirty) bits.

        Raises:
            ValueError: part of the range is not mapped (SIGSEGV).
        """
        self.kernel.user_access(self, addr, nbytes, write)

    def read(self, file: File, offset: int, nbytes: int) -> None:
        """read(2) from a file: page cache without a mapping (folio_mark_accessed)."""
        self.kernel.file_read(self, file, offset, nbytes)
