"""The reverse map: from a folio to the PTEs (or PMD) that map it.

Kernel: mm/rmap.c: folio_referenced_one().

Mechanism: a per-pfn `hint` (uint32) is kept only once something needs the
rmap (the first eviction): for anonymous folios it is the flat index of the
mapping PTE in its mm's page-table pool, for file folios the page index in
their file. `folio_mappings` turns a hint into concrete mappings by checking
each candidate mm / file, so the hint never has to be exact (a stale hint just
finds nothing). Aging-only workloads never pay for it.

Future optimizations:
1. an mm id per pfn would avoid trying every process for anonymous folios.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PAGE_SHIFT, PMD_LEAF, PTE_PRESENT, PTE_SPECIAL, PTRS_PER_PTE, PG_anon

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.filemap import File
    from mglru.mm.process import Mm, Vma

__all__ = ["Mapping", "rmap_enable", "rmap_note_anon", "rmap_note_file", "folio_mappings",
           "anon_folios_mapped"]


@dataclass(slots=True)
class Mapping:
    """One mapping of a folio: an mm, its VMA, the address and the PTE slot (or PMD row)."""

    mm: Mm
    vma: Vma
    addr: int
    #: flat PTE index in the mm's pool, or the page-table row for a PMD mapping
    index: int
    pmd: bool


def rmap_enable(k: SimKernel) -> npt.NDArray[np.uint32]:
    """Build the hints from all page tables and page caches (once)."""
    mem = k.mem
    if mem.rmap_hint is not None:
        return mem.rmap_hint
    hint = np.zeros(mem.max_pfn, np.uint32)
    for p in k.procs.values():
        pt = p.mm.pt
        n = pt.nr_rows * PTRS_PER_PTE
        flags = pt.flat_flags()[:n]
        pfns = pt.flat_pfn()[:n].astype(np.int64)
        mapped = np.nonzero((flags & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT)[0]
        mapped = mapped[pfns[mapped] >= 1024]
        anon = (mem.flags[pfns[mapped]] & PG_anon) != 0
        hint[pfns[mapped[anon]]] = mapped[anon]
        rows = np.nonzero(pt.pmd_state[: pt.nr_rows] == PMD_LEAF)[0]
        hint[pt.pmd_pfn[rows].astype(np.int64)] = rows * PTRS_PER_PTE
    for f in k.files.values():
        cached = np.nonzero(f.pages >= 0)[0]
        hint[f.pages[cached]] = cached
    mem.rmap_hint = hint
    return hint


def rmap_note_anon(k: SimKernel, pfns: npt.NDArray[np.int64], index: npt.NDArray[np.int64]) -> None:
    """New anonymous folios mapped at these flat PTE indices (no-op until enabled)."""
    if k.mem.rmap_hint is not None:
        k.mem.rmap_hint[pfns] = index


def rmap_note_file(k: SimKernel, pfns: npt.NDArray[np.int64],
                   pgoffs: npt.NDArray[np.int64]) -> None:
    """New page-cache folios at these page indices (no-op until enabled)."""
    if k.mem.rmap_hint is not None:
        k.mem.rmap_hint[pfns] = pgoffs


def _file_of(k: SimKernel, pfn: int, pgoff: int) -> File | None:
    for f in k.files.values():
        if pgoff < f.npages and f.pages[pgoff] == pfn:
            return f
    return None


def anon_folios_mapped(k: SimKernel, heads: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """folio_mapped() of many anonymous heads at once: what `folio_mappings` finds, non-empty.

    Entries of file folios are False (ask `folio_mappings`).
    """
    hint = rmap_enable(k)[heads].astype(np.int64)
    row, i = hint // PTRS_PER_PTE, hint % PTRS_PER_PTE
    out = np.zeros(len(heads), bool)
    for p in k.procs.values():
        pt = p.mm.pt
        inside = row < pt.nr_rows
        r = np.where(inside, row, 0)
        idx = np.where(inside, hint, 0)
        leaf = pt.pmd_state[r] == PMD_LEAF
        pmd = leaf & (i == 0) & (pt.pmd_pfn[r] == heads)
        pte = ~leaf & ((pt.flat_flags()[idx] & PTE_PRESENT) != 0) & (pt.flat_pfn()[idx] == heads)
        out |= inside & (pmd | pte)
    return out & ((k.mem.flags[heads] & PG_anon) != 0)


def folio_mappings(k: SimKernel, pfn: int) -> list[Mapping]:
    """Every PTE or PMD currently mapping the folio whose head is `pfn`."""
    hint = int(rmap_enable(k)[pfn])
    out: list[Mapping] = []
    if k.mem.flags[pfn] & PG_anon:
        row, i = divmod(hint, PTRS_PER_PTE)
        for p in k.procs.values():
            pt = p.mm.pt
            if row >= pt.nr_rows:
                continue
            addr = int(pt.pmd_addr[row]) + (i << PAGE_SHIFT)
            if pt.pmd_state[row] == PMD_LEAF:
                if i == 0 and pt.pmd_pfn[row] == pfn:
                    out.append(Mapping(p.mm, p.mm.find_vma(addr), addr, row, True))
            elif (pt.flat_flags()[hint] & PTE_PRESENT) and pt.flat_pfn()[hint] == pfn:
                out.append(Mapping(p.mm, p.mm.find_vma(addr), addr, hint, False))
        return out
    f = _file_of(k, pfn, hint)
    if f is None:
        return out
    for p in k.procs.values():
        for vma in p.mm.vmas:
            if vma.file is not f:
                continue
            first = vma.pgoff
            if not first <= hint < first + ((vma.end - vma.start) >> PAGE_SHIFT):
                continue
            addr = vma.start + ((hint - first) << PAGE_SHIFT)
            idx = int(vma.pte_index(np.array([addr >> PAGE_SHIFT]))[0])
            if (p.mm.pt.flat_flags()[idx] & PTE_PRESENT) and p.mm.pt.flat_pfn()[idx] == pfn:
                out.append(Mapping(p.mm, vma, addr, idx, False))
    return out
