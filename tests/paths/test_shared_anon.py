"""MAP_SHARED|MAP_ANONYMOUS memory is shmem: reclaim unmaps it, exit frees it.

mm/shmem.c shmem_zero_setup(): the mapping gets an unlinked shmem inode; its
pages are found through that inode's page cache (rmap), written to swap by
shmem_writepage() with their PTEs cleared, and freed with the inode when its
last mapping goes (shmem_evict_inode()).
"""

from __future__ import annotations

import numpy as np
import pytest

from mglru import SimKernel
from mglru.mm.page import PAGE_SIZE, PTE_PRESENT

CG = "/sys/fs/cgroup"
PAGES = 256


def _swapped_out(config: str, device: str = "sync"):
    k = SimKernel(config, node_bytes=(64 << 20,), swap_device=device)
    k.mkdir(f"{CG}/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(PAGES * PAGE_SIZE, shared=True)
    p.access(a, PAGES * PAGE_SIZE, write=True)
    k.write(f"{CG}/a/memory.reclaim", str(PAGES * PAGE_SIZE))
    return k, p, a


def _present(p, a: int, n: int) -> int:
    vma = p.mm.find_vma(a)
    idx = vma.pte_index(np.arange(a >> 12, (a >> 12) + n))
    return int(np.count_nonzero(p.mm.pt.flat_flags()[idx] & PTE_PRESENT))


@pytest.mark.parametrize("config", ["v6.1", "v6.12", "v6.14"])
def test_reclaim_clears_the_ptes_and_keeps_the_slots(config):
    k, p, a = _swapped_out(config)
    f = p.mm.find_vma(a).file
    assert k.stats["pswpout"] == PAGES
    assert _present(p, a, PAGES) == 0  # no PTE maps a freed page
    assert np.count_nonzero(f.swap) == PAGES and (f.pages < 0).all()
    p.access(a, PAGE_SIZE)  # a read fault swaps the page back in
    assert k.stats["pswpin"] >= 1 and _present(p, a, 1) == 1
    assert f.pages[0] >= 0 and f.swap[0] == 0


@pytest.mark.parametrize("device", ["sync", "ssd"])
def test_exit_frees_pages_slots_and_the_inode(device):
    k, p, a = _swapped_out("v6.12", device)
    p.access(a, 64 * PAGE_SIZE)  # some back in (with readahead on ssd), the rest in swap
    memcg = k.memcg("/a")
    assert memcg.nr_charged > 0 and k.swap.nr_used > 0
    assert any(n.startswith("dev/zero (deleted)") for n in k.files)
    free = k.mem.nodes[0].nr_free
    k.exit_task(p)
    assert memcg.nr_charged == 0
    assert k.swap.nr_used == 0 and len(k.swap.cache) == 0
    assert not any(n.startswith("dev/zero (deleted)") for n in k.files)
    assert k.mem.nodes[0].nr_free > free
    assert "shmem 0" in k.read(f"{CG}/a/memory.stat")


def test_every_mapping_gets_its_own_inode():
    k = SimKernel("v6.12", node_bytes=(64 << 20,))
    p = k.spawn()
    a = p.mmap(16 * PAGE_SIZE, shared=True)
    b = p.mmap(16 * PAGE_SIZE, shared=True)
    assert p.mm.find_vma(a).file is not p.mm.find_vma(b).file
    assert sum(n.startswith("dev/zero (deleted)") for n in k.files) == 2
