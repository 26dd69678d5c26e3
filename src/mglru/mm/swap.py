"""The swap device: slots holding swapped-out pages, their shadows and the swap cache.

mm/workingset.c (shadow entries), mm/swapfile.c (slots), mm/swap_state.c (the swap
cache, `mglru.mm.swap_cache`). Swap-out completes in the reclaim pass that starts
it on every kind of device. The kind decides swap-in (mm/memory.c do_swap_page(),
6.1 and 6.12):

- ``sync`` (the default, as before: zram, `SWP_SYNCHRONOUS_IO`): an anonymous
  swap-in whose slot is not in the swap cache bypasses it: a new folio, the slot
  freed, no readahead;
- ``ssd``: anonymous swap-ins go through the swap cache with VMA readahead;
- ``hdd``: a rotational device, which turns VMA readahead off for all devices
  (mm/swap_state.c swap_use_vma_readahead(): nr_rotate_swap), so anonymous
  swap-ins use cluster readahead as shmem does.

shmem swap-ins go through the swap cache with cluster readahead on every kind
(mm/shmem.c shmem_swapin_folio(), 6.1 and 6.12: no synchronous bypass).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mglru.mm.swap_cache import SwapCache
from mglru.presets import SWAP_DEVICES, KernelConfig

__all__ = ["SwapDevice", "SWAP_DEVICES", "swap_setup_page_cluster"]


def swap_setup_page_cluster(cfg: KernelConfig) -> int:
    """page-cluster at boot: the configured value, else swap_setup()'s (mm/swap.c, 6.1 and
    6.12: 2 on machines with less than 16 MiB of memory, else 3)."""
    if cfg.page_cluster is not None:
        return cfg.page_cluster
    return 2 if sum(cfg.node_bytes) >> 20 < 16 else 3


class SwapDevice:
    """`capacity` slots; each holds a packed shadow (0 = free or cached).

    `page_cluster` is /proc/sys/vm/page-cluster (readahead of up to
    1 << page_cluster pages), `vma_ra_enabled` /sys/kernel/mm/swap/vma_ra_enabled.
    """

    def __init__(self, capacity: int, kind: str = "sync", page_cluster: int = 3,
                 vma_ra_enabled: bool = True) -> None:
        if kind not in SWAP_DEVICES:
            raise ValueError(f"swap device must be one of {', '.join(SWAP_DEVICES)}; got {kind!r}")
        self.capacity = capacity
        self.kind = kind
        #: SWP_SYNCHRONOUS_IO: anonymous swap-ins may bypass the swap cache
        self.synchronous = kind == "sync"
        #: a rotational device: swap_use_vma_readahead() is false
        self.rotational = kind == "hdd"
        self.page_cluster = page_cluster
        self.vma_ra_enabled = vma_ra_enabled
        self.cache = SwapCache()
        #: swapin_nr_pages()'s state (cluster readahead): prev_offset,
        #: last_readahead_pages, swapin_readahead_hits
        self.ra_prev_offset = 0
        self.ra_last_pages = 0
        self.ra_hits = 0
        self.shadow = np.zeros(0, np.int64)
        self._free: list[int] = []
        self._next = 1  # slot 0 is never used (an empty PTE)
        self.nr_used = 0
        self.pswpout = 0
        self.pswpin = 0

    @property
    def use_vma_readahead(self) -> bool:
        """swap_use_vma_readahead() (mm/swap_state.c)."""
        return self.vma_ra_enabled and not self.rotational

    @property
    def bypass_ok(self) -> bool:
        """True while every anonymous swap-in takes today's synchronous bypass: the
        device is synchronous and no slot is in the swap cache (the compiled
        stream faults rely on it)."""
        return self.synchronous and not self.cache.folio

    @property
    def max_slot(self) -> int:
        """The last slot number (si->max - 1; slot 0 is the header)."""
        return self.capacity

    def full(self) -> bool:
        """vm_swap_full(): fewer than half of the slots are free (include/linux/swap.h)."""
        return self.nr_free * 2 < self.capacity

    def shadow_of(self, slot: int) -> int:
        """The shadow in `slot`, 0 for a slot never used."""
        return int(self.shadow[slot]) if slot < len(self.shadow) else 0

    def in_use(self, slot: int) -> bool:
        """The slot is allocated (__swp_swapcount() != 0 or cached)."""
        return 0 < slot < self._next and (bool(self.shadow[slot]) or slot in self.cache.folio)

    @property
    def nr_free(self) -> int:
        """Slots still available."""
        return self.capacity - self.nr_used

    def alloc(self, n: int) -> npt.NDArray[np.int64] | None:
        """Take `n` slots, or None if the device is too full (nothing taken)."""
        if n > self.nr_free:
            return None
        if n == 1 and self._free:  # one folio (shrink_folio_list): no arrays to join
            self.nr_used += 1
            return np.array([self._free.pop()], np.int64)
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
