"""Idle page tracking from user space: pagemap + page_idle/bitmap.

As in tools/testing/selftests/kvm/access_tracking_perf_test.c; v4 7/7.

`mark_vcpu_memory_idle` is the C test's per-vCPU "mark idle" work, through the
`Kernel` protocol only:

1. translate each guest page of the vCPU's region: gva -> hva (the VMM's
   memslot table), hva -> pfn from `/proc/<pid>/pagemap` (bit 63 present,
   bits 0-54 the pfn); a page that is not present is skipped and counted
   (`no_pfn`); a present page with pfn 0 means pagemap hid the pfns (no
   CAP_SYS_ADMIN): the test is skipped;
2. read the bitmap word of each pfn: a page still idle since the last
   marking counts as `still_idle`; the others are marked idle by writing
   their bits (which clears their accessed bits through the rmap, secondary
   MMUs included);
3. assert that fewer than 1 % of the pages had no pfn, and apply the
   still-idle rule: 10 % or more still idle fails the test, or only warns
   (see `idle_pages_warn_only` in the runner).

The C test issues two syscalls per page; the port reads the pagemap once per
memslot, the bitmap once per run of consecutive words (in 4 KiB calls, the most
a sysfs binary file moves per call) and writes it the same
way. For 4 KiB folios the outcome is the same. For a THP the C test marks the
folio through its first page and then finds the folio's other pages idle
(counting them `still_idle`); the port reads every page before marking any,
so it counts them as marked. User space cannot tell folios apart without
/proc/kpageflags, which the simulated kernel does not serve.

Future optimizations:
1. serve /proc/kpageflags so THP-backed runs can reproduce the C counts.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mglru.abi.kernel import Kernel
from mglru.tools.access_tracking.ksft import test_assert, test_require
from mglru.tools.memstress import HOST_PAGE_SIZE, MemstressArgs, VcpuArgs, addr_gpa2hva

__all__ = ["PAGE_IDLE_BITMAP", "PAGEMAP_PRESENT", "PAGEMAP_PFN_MASK", "IdleCounts",
           "lookup_pfns", "mark_vcpu_memory_idle", "pagemap_path"]

PAGE_IDLE_BITMAP = "/sys/kernel/mm/page_idle/bitmap"
PAGEMAP_PRESENT = 1 << 63
PAGEMAP_PFN_MASK = (1 << 55) - 1


class IdleCounts(tuple):
    """(pages, no_pfn, still_idle) of one vCPU's marking."""

    __slots__ = ()

    def __new__(cls, pages: int, no_pfn: int, still_idle: int) -> IdleCounts:
        """Build the triple."""
        return super().__new__(cls, (pages, no_pfn, still_idle))

    @property
    def pages(self) -> int:
        """Guest pages of the region."""
        return self[0]

    @property
    def no_pfn(self) -> int:
        """Pages not present in the host."""
        return self[1]

    @property
    def still_idle(self) -> int:
        """Pages idle since the last marking."""
        return self[2]


def pagemap_path(pid: int) -> str:
    """/proc/<pid>/pagemap (the C test's /proc/self/pagemap)."""
    return f"/proc/{pid}/pagemap"


def _runs(sorted_ids: npt.NDArray[np.int64]) -> list[tuple[int, int]]:
    """[first, last] of each run of consecutive ids."""
    if not len(sorted_ids):
        return []
    breaks = np.flatnonzero(np.diff(sorted_ids) != 1) + 1
    starts = np.concatenate(([0], breaks))
    ends = np.concatenate((breaks, [len(sorted_ids)])) - 1
    return list(zip(sorted_ids[starts].tolist(), sorted_ids[ends].tolist(), strict=True))


def lookup_pfns(kernel: Kernel, args: MemstressArgs, pid: int,
                va: VcpuArgs) -> npt.NDArray[np.int64]:
    """The pfn of each guest page of a region (0: not present).

    Raises:
        TestSkip: pagemap hides pfns ("Looking up PFNs requires CAP_SYS_ADMIN").
    """
    gvas = va.gpa + np.arange(va.pages, dtype=np.int64) * va.page_size
    vpns = addr_gpa2hva(args, gvas) // HOST_PAGE_SIZE
    entries = np.zeros(va.pages, np.uint64)
    order = np.argsort(vpns, kind="stable")
    sorted_vpns = vpns[order]
    uniq = np.unique(sorted_vpns)
    path = pagemap_path(pid)
    for first, last in _runs(uniq):
        raw = kernel.pread(path, (last - first + 1) * 8, first * 8)
        words = np.frombuffer(raw, np.uint64)
        test_assert(len(words) == last - first + 1,
                    f"pread of {path} returned {len(raw)} bytes, expected {(last - first + 1) * 8}",
                    "pread(fd, &value, sizeof(value), offset) == sizeof(value)")
        sel = (sorted_vpns >= first) & (sorted_vpns <= last)
        entries[order[sel]] = words[sorted_vpns[sel] - first]
    present = (entries & np.uint64(PAGEMAP_PRESENT)) != 0
    pfns = (entries & np.uint64(PAGEMAP_PFN_MASK)).astype(np.int64)
    test_require(not np.any(present & (pfns == 0)), "Looking up PFNs requires CAP_SYS_ADMIN")
    return np.where(present, pfns, 0)


#: a sysfs binary file moves at most PAGE_SIZE bytes per call (fs/kernfs/file.c)
_BITMAP_IO_WORDS = 4096 // 8


def _read_idle(kernel: Kernel, words: npt.NDArray[np.int64]) -> npt.NDArray[np.uint64]:
    """The bitmap words `words` (sorted, unique), read per run, 4 KiB per pread.

    kernfs_file_read_iter() returns at most PAGE_SIZE bytes, so a run longer
    than 512 words takes several calls on a real host.
    """
    out = np.zeros(len(words), np.uint64)
    for first, last in _runs(words):
        lo = int(np.searchsorted(words, first))
        for start in range(first, last + 1, _BITMAP_IO_WORDS):
            n = min(_BITMAP_IO_WORDS, last + 1 - start)
            raw = kernel.pread(PAGE_IDLE_BITMAP, n * 8, start * 8)
            vals = np.frombuffer(raw, np.uint64)
            test_assert(len(vals) == n,
                        f"pread of {PAGE_IDLE_BITMAP} returned {len(raw)} bytes, expected {n * 8}",
                        "pread(fd, &value, sizeof(value), offset) == sizeof(value)")
            out[lo + start - first:lo + start - first + n] = vals
    return out


def mark_vcpu_memory_idle(kernel: Kernel, args: MemstressArgs, pid: int,
                          va: VcpuArgs) -> IdleCounts:
    """Mark a vCPU's region idle; returns its counts. See the module docstring.

    Raises:
        TestFailure: 1 % or more of the pages had no pfn, or a bitmap write
            was short.
        TestSkip: pfns are hidden.
    """
    pfns = lookup_pfns(kernel, args, pid, va)
    present = pfns != 0
    no_pfn = int(va.pages - np.count_nonzero(present))
    pp = pfns[present]
    words = pp // 64
    bits = (pp % 64).astype(np.uint64)
    uniq = np.unique(words)
    word_vals = _read_idle(kernel, uniq)[np.searchsorted(uniq, words)]
    idle = ((word_vals >> bits) & np.uint64(1)) != 0
    still_idle = int(np.count_nonzero(idle))
    # mark_page_idle() of every page that was not idle, one write per run of words
    to_mark_words = words[~idle]
    to_mark_bits = np.left_shift(np.uint64(1), bits[~idle])
    if len(to_mark_words):
        uw, inv = np.unique(to_mark_words, return_inverse=True)
        vals = np.zeros(len(uw), np.uint64)
        np.bitwise_or.at(vals, inv, to_mark_bits)
        for first, last in _runs(uw):
            lo = int(np.searchsorted(uw, first))
            hi = int(np.searchsorted(uw, last, side="right"))
            for start in range(lo, hi, _BITMAP_IO_WORDS):  # 4 KiB per pwrite, as kernfs takes
                data = vals[start:min(hi, start + _BITMAP_IO_WORDS)].tobytes()
                word = first + start - lo
                n = kernel.pwrite(PAGE_IDLE_BITMAP, data, word * 8)
                test_assert(n == len(data), f"Set page_idle bits for PFN {word * 64:#x}",
                            "pwrite(page_idle_fd, &bits, 8, 8 * (pfn / 64)) == 8")
    test_assert(no_pfn < va.pages // 100,
                f"vCPU {va.vcpu_idx}: No PFN for {no_pfn} out of {va.pages} pages.",
                "no_pfn < pages / 100")
    return IdleCounts(va.pages, no_pfn, still_idle)
