"""Where the vCPUs' regions are, and which PTE tables an aging walk takes next.

The `-p` scenario faults the functional model lazily: a vCPU touches only its
region, and the simulated clock says how far it has got, so a region is faulted
in up to that point only when the aging walk reaches it (`VmRegions.fault`), and
in full at the end. `WalkCursor` hands the walk its PTE tables chunk by chunk,
each chunk stopping before the first table that does not exist yet: the walk
sees a table only if it exists when the walk gets there, as the kernel's walk
does (walk_pmd_range reads the page tables as it goes).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_NONE

if TYPE_CHECKING:
    from mglru.bench.vcpu import FaultProgress
    from mglru.kvm.kvm_main import Kvm
    from mglru.lru_gen.walk import MmWalk
    from mglru.mm.process import Mm

__all__ = ["VmRegions", "WalkCursor"]


class VmRegions:
    """The vCPUs' regions in the VMM's page tables, and how far each is faulted in.

    Args:
        vm: the VM, one vCPU per region.
        regions: per vCPU, (gpa, nbytes), page aligned.

    Raises:
        ValueError: regions do not match the vCPUs or are not page aligned.
    """

    def __init__(self, vm: Kvm, regions: Sequence[tuple[int, int]]) -> None:
        if len(regions) != len(vm.vcpus):
            raise ValueError(f"one region per vCPU: {len(vm.vcpus)} vCPUs, {len(regions)} regions")
        self.vm = vm
        self.gpa = [g for g, _ in regions]
        self.pages = [nbytes >> PAGE_SHIFT for _, nbytes in regions]
        if any(g % PAGE_SIZE or n % PAGE_SIZE for g, n in regions):
            raise ValueError(f"regions must be page aligned; got {list(regions)}")
        #: pages faulted in the functional model, per vCPU
        self.fdone = [0] * len(regions)
        self._layout()

    def _layout(self) -> None:
        pt = self.vm.mm.pt
        self.rows = pt.sorted_rows().copy()
        addr = pt.pmd_addr[self.rows]
        hva0 = np.array([self.vm.gpa_to_hva(g) for g in self.gpa], np.int64)
        hva1 = hva0 + np.array(self.pages, np.int64) * PAGE_SIZE
        order = np.argsort(hva0, kind="stable")
        # region of each row (-1: outside every region), by the row's 2 MiB slot
        self.row_region = np.full(len(self.rows), -1, np.int64)
        for i in order.tolist():
            inside = (addr + (1 << 21) > hva0[i]) & (addr < hva1[i])
            self.row_region[inside & (self.row_region < 0)] = i

    def fault(self, i: int, target: int) -> None:
        """Fault vCPU i's region in the functional model up to `target` pages (writes)."""
        target = min(target, self.pages[i])
        step = 1 << 14
        while self.fdone[i] < target:
            n = min(step, target - self.fdone[i])
            self.vm.vcpu_access(i, self.gpa[i] + (self.fdone[i] << PAGE_SHIFT), n << PAGE_SHIFT,
                                write=True)
            self.fdone[i] += n


class WalkCursor:
    """Where one aging walk of an mm is, and which PTE tables it takes next.

    For the VMM's mm, rows come in address order; a chunk is at most
    `chunk_tables` tables of one region and ends before the first table that does
    not exist (pmd_none). Before each chunk, the region under the walker is
    faulted up to where its vCPU has got (`progress`). Other mms are walked in
    one chunk.

    Attributes:
        tables: present PTE tables in the last chunk.
    """

    def __init__(self, regions: VmRegions, progress: FaultProgress, chunk_tables: int, mm: Mm,
                 walk: MmWalk) -> None:
        self.regions = regions
        self.progress = progress
        self.chunk_tables = chunk_tables
        self.mm = mm
        self.walk = walk
        self.idx = 0
        self.tables = 0
        self.vmm = mm is regions.vm.mm

    def next_rows(self, now: int) -> np.ndarray | None:
        """The rows of the next chunk at simulated time `now`; None when the walk is done."""
        reg = self.regions
        pt = self.mm.pt
        if not self.vmm:
            if self.idx:
                return None
            self.idx = 1
            rows = pt.sorted_rows()
            self.tables = int(np.count_nonzero(pt.pmd_state[rows] != PMD_NONE))
            return rows
        rows, region = reg.rows, reg.row_region
        n = len(rows)
        if self.idx >= n:
            return None
        i = int(region[self.idx])
        if i >= 0 and reg.fdone[i] < reg.pages[i]:
            reg.fault(i, self.progress.vcpu_pages(i, now))
        end = self.idx + 1
        lim = min(n, self.idx + self.chunk_tables)
        while end < lim and region[end] == i:
            end += 1
        present = pt.pmd_state[rows[self.idx:end]] != PMD_NONE
        if present[0]:
            # populated tables up to the first hole
            stop = int(np.argmin(present)) if not present.all() else len(present)
        else:
            # a run of holes: passed at once
            stop = int(np.argmax(present)) if present.any() else len(present)
        chunk = rows[self.idx:self.idx + stop]
        self.tables = int(np.count_nonzero(present[:stop]))
        self.idx += stop
        return chunk
