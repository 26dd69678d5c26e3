"""Apply a host task's stream: compiled hits, the fault path one access at a time.

Exactness: each access that the compiled loop cannot finish goes through
`paths.fault.user_access` for its one page, exactly as `p.access(addr,
PAGE_SIZE)` would, after the clock has been set to its time. A fault may
reclaim (memory.max, node pressure) and so clear accessed bits set by earlier
hits or unmap their pages; running hits only up to the first fault keeps the
order of everything that can observe them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_LEAF, PMD_SHIFT, PTRS_PER_PTE
from mglru.paths.fault import user_access
from mglru.workload._host_kernel import KIND_FILE, KIND_THP, host_hits

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.process import Mm
    from mglru.workload.stream import Stream

__all__ = ["run_host", "set_clock", "access_ms"]

_EMPTY_U32 = np.zeros(0, np.uint32)


def set_clock(k: SimKernel, ns: int) -> None:
    """Move simulated time forward to `ns` (never back): what `SimKernel.tick` adds up."""
    if ns > k.clock_ns:
        k.clock_ns = int(ns)


def access_ms(t_ns: int) -> int:
    """Ground-truth stamp of a time: simulated ms since boot plus 1 (0 = never accessed)."""
    return int(t_ns) // 1_000_000 + 1


class _VmaTable:
    """The flat VMA arrays of one mm for the compiled loop, rebuilt when the VMAs change."""

    def __init__(self) -> None:
        self.key: tuple | None = None

    def of(self, mm: Mm) -> _VmaTable:
        key = tuple((v.start, v.end, id(v.rows), v.flags) for v in mm.vmas)
        if key != self.key:
            self.key = key
            vmas = mm.vmas
            self.start = np.array([v.start >> PAGE_SHIFT for v in vmas], np.int64)
            self.end = np.array([v.end >> PAGE_SHIFT for v in vmas], np.int64)
            sizes = [len(v.rows) for v in vmas]
            self.row0 = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64) \
                if vmas else np.zeros(0, np.int64)
            self.kind = np.array([(KIND_THP if v.thp else 0) | (KIND_FILE if v.file is not None
                                                                else 0) for v in vmas], np.int64)
            self.rows = np.concatenate([v.rows for v in vmas]).astype(np.int64) \
                if vmas else np.zeros(0, np.int64)
        return self


def _pfn_of(mm: Mm, vpn: int) -> int:
    """The pfn mapping `vpn` now, or -1 (for the ground truth of a faulted access)."""
    vma = mm.find_vma(vpn << PAGE_SHIFT)
    if vma is None:
        return -1
    pt = mm.pt
    row = int(vma.rows[(vpn >> 9) - (vma.start >> PMD_SHIFT)])
    if pt.pmd_state[row] == PMD_LEAF:
        return int(pt.pmd_pfn[row]) + (vpn & (PTRS_PER_PTE - 1))
    return int(pt.pte_pfn[row, vpn & (PTRS_PER_PTE - 1)])


def run_host(k: SimKernel, s: Stream, stop: int,
             last_ms: npt.NDArray[np.uint32] | None) -> None:
    """Apply accesses [s.pos, stop) of host stream `s`; the clock ends at the last one's time.

    Raises:
        ValueError: an access outside the task's mappings (SIGSEGV), as `p.access`.
        MemcgOom: as the fault path; `s.pos` is then the failing access.
    """
    p = s.task
    mm = p.mm
    table = _VmaTable()
    truth = last_ms if last_ms is not None else _EMPTY_U32
    mem_flags = k.mem.flags
    i = s.pos
    while i < stop:
        mm.use()  # every access is by a running task of this mm (lru_gen_use_mm)
        v = table.of(mm)
        pt = mm.pt
        j = host_hits(s.pages, s.writes, s.t_ns, i, stop, v.start, v.end, v.row0, v.kind, v.rows,
                      pt.pmd_state, pt.pmd_flags, pt.pmd_pfn, pt.flat_flags(), pt.flat_pfn(),
                      mem_flags, truth)
        s.hits += j - i
        s.pos = j
        if j == stop:
            break
        set_clock(k, int(s.t_ns[j]))
        vpn = int(s.pages[j])
        user_access(k, p, vpn << PAGE_SHIFT, PAGE_SIZE, bool(s.writes[j]))
        s.faults += 1
        if s.record_faults:
            s.fault_index.append(j)
        if last_ms is not None:
            pfn = _pfn_of(mm, vpn)
            if pfn >= 0:
                last_ms[pfn] = access_ms(s.t_ns[j])
        i = s.pos = j + 1
    if stop > 0:
        set_clock(k, int(s.t_ns[stop - 1]))
