"""Ground truth of host accesses: when each page was last accessed.

A stamp is the simulated time of an access in ms since boot plus one (0 =
never). The engine keeps two stores and shows one view:

- per pfn (`by_pfn`): the stamps of the Python fault path, of callers (a
  start-up touch) and of the compiled loop while a reclaim hook watches
  evictions (the hook reads the stamps of pages already unmapped, which only
  this store still holds);
- per PTE slot of each task's page tables (`slots`): the stamps of the compiled
  loop otherwise. The loop then touches the PTE and its stamp, two cache lines,
  instead of the PTE, the pfn it holds and the pfn's stamp: at 16 GiB of
  uniform hits that is most of its time.

The view (`view`): the stamp of a mapped page is the larger of its pfn stamp and
the stamps of the slots that map it; an unmapped page has its pfn stamp. This
is exact for a mapped page the engine accessed: each of its accesses, its fault
included, left a stamp in one of the two stores, and whatever either store held
before came from an earlier page there (so from before this page's fault). A page
mapped without an access of its own (the rest of a THP that one access faulted
in) shows what was there before, as a store by pfn alone does. `fold` writes the view
into the pfn store; it runs before a reclaim hook sees evictions and whenever
the view is read after the loop stamped slots.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PMD_LEAF, PTE_PRESENT, PTE_SPECIAL, PTRS_PER_PTE

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.process import Mm

__all__ = ["HostTruth"]


class HostTruth:
    """The two stores of host ground truth (see the module docstring).

    Args:
        max_pfn: pfns of the machine.
    """

    def __init__(self, max_pfn: int) -> None:
        self.by_pfn = np.zeros(max_pfn, np.uint32)
        #: per mm (by id(), the mm kept with its array so no id is reused) slot stamps
        self.slots: dict[int, tuple[Mm, npt.NDArray[np.uint32]]] = {}
        self._stale = False  # slots stamped since the last fold

    def target(self, k: SimKernel, mm: Mm) -> tuple[npt.NDArray[np.uint32], bool]:
        """(stamps, by_slot) for the compiled loop about to run on `mm`'s page tables."""
        if k.reclaim_hook is not None:
            self.fold()
            return self.by_pfn, False
        n = mm.pt.pte_flags.size
        held = self.slots.get(id(mm))
        if held is None:  # a task new here: forget those that exited meanwhile
            self._drop_exited()
        if held is None or held[0] is not mm or len(held[1]) < n:
            arr = np.zeros(n, np.uint32)  # the page tables grew: slots keep their index
            if held is not None and held[0] is mm:
                arr[: len(held[1])] = held[1]
            self.slots[id(mm)] = (mm, arr)
        self._stale = True
        return self.slots[id(mm)][1], True

    def view(self) -> npt.NDArray[np.uint32]:
        """The per-pfn stamps (the pfn store, folded first; writes to it are kept)."""
        self.fold()
        return self.by_pfn

    def fold(self) -> None:
        """Raise the pfn stamps of mapped pages to their slots' stamps."""
        if not self._stale:
            return
        out = self.by_pfn
        self._drop_exited()
        for mm, stamps in self.slots.values():
            pt = mm.pt
            n = min(pt.nr_rows * PTRS_PER_PTE, len(stamps))
            flags = pt.flat_flags()[:n]
            slot = np.flatnonzero((flags & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT)
            pfn = pt.flat_pfn()[slot].astype(np.int64)
            rows = np.flatnonzero(pt.pmd_state[: pt.nr_rows] == PMD_LEAF)
            if len(rows):  # a PMD leaf maps pmd_pfn + i through slot i of its row
                sub = np.arange(PTRS_PER_PTE, dtype=np.int64)
                slot = np.concatenate([slot, (rows[:, None] * PTRS_PER_PTE + sub).ravel()])
                pfn = np.concatenate([pfn, (pt.pmd_pfn[rows].astype(np.int64)[:, None]
                                            + sub).ravel()])
            keep = (pfn < len(out)) & (slot < len(stamps))
            slot, pfn = slot[keep], pfn[keep]
            new = stamps[slot]
            out[pfn] = np.maximum(out[pfn], new)
            lost = out[pfn] < new  # a page mapped twice: one write of several won
            if lost.any():
                np.maximum.at(out, pfn[lost], new[lost])
        self._stale = False

    def _drop_exited(self) -> None:
        """Forget the slots of torn-down mms (their pages are gone)."""
        for key in [key for key, (mm, _) in self.slots.items() if mm.users == 0]:
            del self.slots[key]
