"""The swap device: slots holding swapped-out anonymous pages and their shadows.

mm/workingset.c (shadow entries). The device behaves like a synchronous one (zram,
`SWP_SYNCHRONOUS_IO`): swap-out completes in the reclaim pass that starts it,
and swap-in bypasses the swap cache and frees the slot, so swapped-in folios
are not in the swap cache.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["SwapDevice"]


class SwapDevice:
    """`capacity` slots; each holds a packed shadow (0 = free)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.shadow = np.zeros(0, np.int64)
        self._free: list[int] = []
        self._next = 1  # slot 0 is never used (an empty PTE)
        self.nr_used = 0
        self.pswpout = 0
        self.pswpin = 0

    @property
    def nr_free(self) -> int:
        """Slots still available."""
        return self.capacity - self.nr_used

    def alloc(self, n: int) -> npt.NDArray[np.int64] | None:
        """Take `n` slots, or None if the device is too full (nothing taken)."""
        if n > self.nr_free:
            return None
        reuse = [self._free.pop() for _ in range(min(n, len(self._free)))]
        fresh = np.arange(self._next, self._next + n - len(reuse), dtype=np.int64)
        self._next += len(fresh)
        if self._next > len(self.shadow):
            grown = np.zeros(max(self._next, 2 * len(self.shadow), 1024), np.int64)
            grown[: len(self.shadow)] = self.shadow
            self.shadow = grown
        self.nr_used += n
        return np.concatenate([np.array(reuse, np.int64), fresh])

    def free(self, slots: npt.NDArray[np.int64]) -> None:
        """Release slots (after swap-in or when the mapping goes away)."""
        self.shadow[slots] = 0
        self._free.extend(np.asarray(slots).tolist())
        self.nr_used -= len(slots)

    def free_one(self, slot: int) -> None:
        """`free` of one slot."""
        self.shadow[slot] = 0
        self._free.append(slot)
        self.nr_used -= 1
