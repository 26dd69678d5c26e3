"""Idle page tracking and pagemap: /sys/kernel/mm/page_idle/bitmap, /proc/<pid>/pagemap.

mm/page_idle.c and fs/proc/task_mmu.c semantics, binary and byte for byte:

- the bitmap is 64-bit words, one bit per pfn; reads and writes must be
  8-byte aligned in offset and size (EINVAL); a read at or past max_pfn is
  empty and a write there ENXIO (page_idle_bitmap_read/_write); kernfs hands
  a sysfs binary file at most PAGE_SIZE bytes per call (kernfs_file_read_iter,
  kernfs_fop_write_iter), so one pread/pwrite covers at most 32 768 pfns;
- writing a 1 marks the folio of that pfn idle after clearing its accessed
  bits through the rmap walk (`page_idle_clear_pte_refs`, which calls
  ptep_clear_young_notify / pmdp_clear_young_notify, so secondary MMUs are
  asked too); a folio found referenced gets PG_young so reclaim still sees it;
- reading re-walks idle folios and reports them idle only if nothing touched
  them since;
- pagemap is one u64 per virtual page: bit 63 present, 62 swapped, 61 file
  page, 56 exclusively mapped, bits 0-54 the pfn (or the swap offset << 5).

PG_idle and PG_young live in a per-pfn byte allocated on first use (the model's
page_ext), so kernels that never use idle tracking do not pay for it.
"""

from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING

import numpy as np

from mglru.mm.mmu_notifier import mmu_notifier_clear_young
from mglru.mm.page import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_LEAF,
    PMD_SIZE,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_SWAP,
    PTE_YOUNG,
    PG_anon,
    PG_lru,
    PG_tail,
    is_zero_pfn,
)
from mglru.mm.rmap import folio_mappings

if TYPE_CHECKING:
    from mglru.kernel import SimKernel

__all__ = ["page_idle_read", "page_idle_write", "pagemap_read", "PAGE_IDLE_BITMAP"]

PAGE_IDLE_BITMAP = "/sys/kernel/mm/page_idle/bitmap"
_IDLE = 1
_YOUNG = 2
PM_PRESENT = 1 << 63
PM_SWAP = 1 << 62
PM_FILE = 1 << 61
PM_MMAP_EXCLUSIVE = 1 << 56
PM_PFRAME_MASK = (1 << 55) - 1


def _page_ext(k: SimKernel) -> np.ndarray:
    if k.mem.page_idle is None:
        k.mem.page_idle = np.zeros(k.mem.max_pfn, np.uint8)
    return k.mem.page_idle


def _get_folio(k: SimKernel, pfn: int) -> int:
    """page_idle_get_folio(): the head of an LRU folio, or -1."""
    mem = k.mem
    if is_zero_pfn(pfn) or pfn >= mem.max_pfn:
        return -1
    head = pfn & ~511 if mem.flags[pfn] & PG_tail else pfn
    return head if mem.flags[head] & PG_lru else -1


def _clear_pte_refs(k: SimKernel, head: int) -> None:
    """page_idle_clear_pte_refs(): clear accessed bits in every mapping, notifiers included."""

    referenced = False
    for m in folio_mappings(k, head):
        pt = m.mm.pt
        if m.pmd:
            young = bool(pt.pmd_flags[m.index] & PTE_YOUNG)
            pt.pmd_flags[m.index] &= ~np.uint8(PTE_YOUNG)
            end = m.addr + PMD_SIZE
        else:
            ff = pt.flat_flags()
            young = bool(ff[m.index] & PTE_YOUNG)
            ff[m.index] &= ~np.uint8(PTE_YOUNG)
            end = m.addr + PAGE_SIZE
        if mmu_notifier_clear_young(m.mm, m.addr, end):
            young = True
        referenced |= young
    if referenced:
        ext = _page_ext(k)
        ext[head] = (ext[head] & ~np.uint8(_IDLE)) | _YOUNG


#: kernfs moves at most PAGE_SIZE bytes per read or write of a sysfs binary file
KERNFS_IO_MAX = 4096


def _check_range(offset: int, size: int) -> None:
    """BITMAP_CHUNK_SIZE alignment of offset and (capped) size, else EINVAL."""
    if offset % 8 or size % 8:
        raise OSError(errno.EINVAL, "Invalid argument")


def page_idle_read(k: SimKernel, offset: int, size: int) -> bytes:
    """Read the idle bitmap words covering [offset, offset + size).

    At most KERNFS_IO_MAX bytes; empty at or past max_pfn; only whole words
    below max_pfn are returned (the kernel counts a word once its last bit is done).
    """
    size = min(size, KERNFS_IO_MAX)
    if not size:
        return b""
    _check_range(offset, size)
    pfn = offset * 8
    if pfn >= k.mem.max_pfn:
        return b""
    end = min(pfn + size * 8, k.mem.max_pfn)
    ext = _page_ext(k)
    words = [0] * ((end - pfn) // 64)
    for p in range(pfn, pfn + len(words) * 64):
        head = _get_folio(k, p)
        if head < 0 or not ext[head] & _IDLE:
            continue
        _clear_pte_refs(k, head)
        if ext[head] & _IDLE:
            words[(p - pfn) // 64] |= 1 << (p % 64)
    return struct.pack(f"<{len(words)}Q", *words)


def page_idle_write(k: SimKernel, offset: int, data: bytes) -> int:
    """Mark the pfns whose bits are set idle. Returns the bytes consumed.

    At most KERNFS_IO_MAX bytes per call (a longer write is short, as kernfs
    makes it); ENXIO at or past max_pfn.
    """
    data = data[:KERNFS_IO_MAX]
    if not data:
        return 0
    _check_range(offset, len(data))
    pfn = offset * 8
    if pfn >= k.mem.max_pfn:
        raise OSError(errno.ENXIO, "No such device or address")
    end = min(pfn + len(data) * 8, k.mem.max_pfn)
    ext = _page_ext(k)
    nwords = (end - pfn) // 64
    words = struct.unpack(f"<{nwords}Q", data[:nwords * 8])
    for i, word in enumerate(words):
        bit = 0
        while word:
            if word & 1:
                head = _get_folio(k, pfn + i * 64 + bit)
                if head >= 0:
                    _clear_pte_refs(k, head)
                    ext[head] |= _IDLE
            word >>= 1
            bit += 1
    return nwords * 8


def pagemap_read(k: SimKernel, pid: int, offset: int, size: int) -> bytes:
    """Entries of /proc/<pid>/pagemap for virtual pages offset/8 .. (offset+size)/8."""
    p = k.procs.get(pid)
    if p is None:
        raise OSError(errno.ESRCH, "No such process")
    if offset % 8 or size % 8:
        raise OSError(errno.EINVAL, "Invalid argument")
    vpn0, n = offset // 8, size // 8
    out = np.zeros(n, np.uint64)
    mem = k.mem
    pt = p.mm.pt
    for vma in p.mm.vmas_in(vpn0 << PAGE_SHIFT, (vpn0 + n) << PAGE_SHIFT):
        lo = max(vpn0, vma.start >> PAGE_SHIFT)
        hi = min(vpn0 + n, vma.end >> PAGE_SHIFT)
        for vpn in range(lo, hi):
            row = vma.rows[(vpn >> 9) - (vma.start >> 21)]
            if pt.pmd_state[row] == PMD_LEAF:
                pfn = int(pt.pmd_pfn[row]) + (vpn & 511)
                entry = PM_PRESENT | PM_MMAP_EXCLUSIVE | pfn
            else:
                i = row * 512 + (vpn & 511)
                f = int(pt.flat_flags()[i])
                if f & PTE_PRESENT:
                    pfn = int(pt.flat_pfn()[i])
                    entry = PM_PRESENT | pfn
                    if not f & PTE_SPECIAL and pfn >= 1024:
                        if mem.flags[pfn] & PG_anon:
                            entry |= PM_MMAP_EXCLUSIVE
                        else:
                            entry |= PM_FILE
                elif f & PTE_SWAP:
                    entry = PM_SWAP | ((int(pt.flat_pfn()[i]) << 5) & PM_PFRAME_MASK)
                else:
                    entry = 0
            out[vpn - vpn0] = entry
    return out.tobytes()
