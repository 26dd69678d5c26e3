"""Files and their page cache.

Kernel: include/linux/mm_inline.h: lru_gen_add_folio() (read() vs fault placement).

A `File` is an inode's page cache: page index -> pfn (-1 = not cached). Its
flags are what the VMA filter reads (mm/vmscan.c: walk_mm()): shmem, an unevictable mapping,
a mapping without `read_folio` (DAX), and `FMODE_NOREUSE`.
"""

from __future__ import annotations

import numpy as np

from mglru.mm.page import PAGE_SHIFT

__all__ = ["File"]


class File:
    """A file with a page cache of `nbytes` (rounded up to pages)."""

    def __init__(self, name: str, nbytes: int, *, shmem: bool = False,
                 unevictable: bool = False, has_read_folio: bool = True,
                 noreuse: bool = False, anon: bool = False) -> None:
        if nbytes <= 0:
            raise ValueError(f"file size must be positive, got {nbytes}")
        self.name = name
        self.npages = (-(-nbytes >> PAGE_SHIFT) if nbytes % (1 << PAGE_SHIFT)
                       else nbytes >> PAGE_SHIFT)
        self.shmem = shmem
        self.unevictable = unevictable
        self.has_read_folio = has_read_folio
        self.noreuse = noreuse
        #: the unlinked shmem inode behind a MAP_SHARED|MAP_ANONYMOUS mapping
        #: (mm/shmem.c: shmem_zero_setup()): freed when its last mapping goes
        self.anon = anon
        self.pages = np.full(self.npages, -1, np.int64)
        #: shadow entries of evicted pages (0 = none), see lru_gen.workingset
        self.shadow = np.zeros(self.npages, np.int64)
        #: shmem only: the swap slot holding a swapped-out page (0 = none); the
        #: slot keeps the shadow entry, as the swap cache does (shmem_writepage)
        self.swap = np.zeros(self.npages, np.int64)

    def __repr__(self) -> str:
        return f"File({self.name!r}, npages={self.npages})"
