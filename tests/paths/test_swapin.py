"""Swap-ins through the swap cache with readahead, and the synchronous bypass.

The expected numbers are worked out here from the kernel's rules (mm/swap_state.c
__swapin_nr_pages(), swap_vma_ra_win(), swap_cluster_readahead(); mm/memory.c
do_swap_page(); mm/shmem.c shmem_swapin_folio(); mm/vmscan.c shrink_folio_list()),
not read back from the model's helpers.
"""

from __future__ import annotations

import errno

import numpy as np
import pytest

from mglru import SimKernel
from mglru.lru_gen.helpers import MAX_NR_GENS
from mglru.mm.page import PAGE_SIZE, PTE_PRESENT, PTE_SWAP, PG_active, PG_anon, PG_swapcache

CG = "/sys/fs/cgroup"
PC = "/proc/sys/vm/page-cluster"
N = 64


def vm(k: SimKernel) -> dict[str, int]:
    return {a: int(b) for a, b in (line.split() for line in k.read("/proc/vmstat").splitlines())}


def swapped_task(preset: str = "v6.12", device: str = "ssd", n: int = N, page_cluster=None,
                 memcg: str = "a", **mmap_kw):
    """A task in /<memcg> whose n written anon pages are all swapped out (slots 1..n)."""
    kw = {} if page_cluster is None else {"page_cluster": page_cluster}
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True, swap_device=device, **kw)
    k.mkdir(f"{CG}/{memcg}")
    p = k.spawn(f"/{memcg}")
    base = p.mmap(n * PAGE_SIZE, **mmap_kw)
    p.access(base, n * PAGE_SIZE, write=True)
    k.write(f"{CG}/{memcg}/memory.reclaim", str(n * PAGE_SIZE))
    assert k.swap.nr_used == n and k.read(f"{CG}/{memcg}/memory.current") == "0\n"
    return k, p, base


def pte(p, addr: int) -> tuple[int, int]:
    vma = p.mm.find_vma(addr)
    i = int(vma.pte_index(np.array([addr >> 12]))[0])
    return int(p.mm.pt.flat_flags()[i]), int(p.mm.pt.flat_pfn()[i])


def touch(p, base: int, page: int, write: bool = False) -> None:
    p.access(base + page * PAGE_SIZE, PAGE_SIZE, write=write)


# -- VMA readahead: the adaptive window ------------------------------------------------------
def test_vma_readahead_grows_with_hits_and_brings_back_unmapped_neighbours():
    k, p, base = swapped_task()
    # faults 0, 1, 3, 7, 15: windows 1 (no previous fault next to it), 2 (next to the
    # previous one), then hits + 2 rounded up to 4, 8, 8 (page-cluster 3 = 8 pages)
    # forward from the fault; the pages between are readahead hits (minor faults)
    expect_read = {0: 1, 1: 2, 3: 4, 7: 8, 15: 8}
    read = 0
    for page in range(16):
        before = vm(k)
        touch(p, base, page)
        after = vm(k)
        got = after["pswpin"] - before["pswpin"]
        if page in expect_read:
            assert got == expect_read[page], page
            assert after["pgmajfault"] - before["pgmajfault"] == 1
            read += got
        else:  # a readahead hit: no I/O, a minor fault
            assert got == 0 and after["pgmajfault"] == before["pgmajfault"], page
            assert after["swap_ra_hit"] - before["swap_ra_hit"] == 1
    assert vm(k)["swap_ra"] == read - 5  # all but the faulting pages
    # pages 16..22 were read ahead by the fault at 15: cached, charged, not mapped
    for page in range(16, 23):
        flags, slot = pte(p, base + page * PAGE_SIZE)
        assert flags & PTE_SWAP and not flags & PTE_PRESENT
        pfn = k.swap.cache.lookup(slot)
        assert pfn >= 0 and k.mem.flags[pfn] & PG_swapcache and not k.mem.flags[pfn] & PG_anon
    assert len(k.swap.cache) == read and vm(k)["nr_swapcached"] == read
    assert k.read(f"{CG}/a/memory.current") == f"{read * PAGE_SIZE}\n"
    # read faults keep their slots (in the swap cache): none was freed
    assert k.swap.nr_used == N


def test_vma_readahead_is_clamped_to_the_vma():
    k, p, base = swapped_task(n=6)
    touch(p, base, 4)  # window 1: no neighbour
    touch(p, base, 5)  # window 2 forward from page 5: page 6 is outside the VMA
    assert vm(k)["pswpin"] == 2 and vm(k)["swap_ra"] == 0


def test_backward_faults_read_backward():
    k, p, base = swapped_task()
    touch(p, base, 40)
    touch(p, base, 39)  # the page before the last fault: window 2 ends at the fault
    flags, slot = pte(p, base + 38 * PAGE_SIZE)
    assert k.swap.cache.lookup(slot) >= 0 and vm(k)["pswpin"] == 3


@pytest.mark.parametrize("pc,windows", [(0, [1, 1, 1, 1]), (1, [1, 2, 2, 2]),
                                        (5, [1, 2, 4, 8]), (31, [1, 2, 4, 8])])
def test_page_cluster_bounds_the_window(pc: int, windows: list[int]):
    """page-cluster 0 reads one page; VMA readahead never exceeds 1 << 5 pages."""
    k, p, base = swapped_task(page_cluster=0)
    k.write(PC, str(pc))
    assert k.read(PC) == f"{pc}\n"
    page, reads = 0, []
    while len(reads) < len(windows):
        before = vm(k)["pswpin"]
        touch(p, base, page)
        if vm(k)["pswpin"] != before:
            reads.append(vm(k)["pswpin"] - before)
        page += 1
    assert reads == windows


# -- where readahead folios land ---------------------------------------------------------------
@pytest.mark.parametrize("preset", ["v6.1", "v6.12", "v6.14"])
def test_readahead_folios_land_as_active_folios_of_the_fault(preset: str):
    """folio_add_lru() inside a fault with recency sets PG_active on readahead folios
    too: 6.1-6.13 put them in max_seq, v6.14 in max_seq - 1 (not workingset)."""
    k, p, base = swapped_task(preset)
    touch(p, base, 0)
    touch(p, base, 1)  # reads 1 and 2
    _, slot = pte(p, base + 2 * PAGE_SIZE)
    pfn = k.swap.cache.lookup(slot)
    lv = k.lruvec(k.memcg("/a"))
    want = lv.max_seq if preset != "v6.14" else lv.max_seq - 1
    assert int(k.mem.gen[pfn]) - 1 == want % MAX_NR_GENS
    assert not k.mem.flags[pfn] & PG_active  # cleared once on a list


@pytest.mark.parametrize("preset", ["v6.1", "v6.12", "v6.14"])
def test_readahead_without_recency_is_not_anon_without_swap_cache(preset: str):
    """A VMA without recency (VM_SEQ_READ): readahead folios are not active, and being
    in the swap cache they do not take the "anon not in swap cache" max_seq - 1 slot:
    6.1-6.13 put them in min_seq (two generations or fewer past it), v6.14 in
    max_seq - 3 clamped to min_seq."""
    k, p, base = swapped_task(preset, flags=("seq_read",))
    lv = k.lruvec(k.memcg("/a"))
    k.write("/sys/kernel/debug/lru_gen", f"+ {lv.memcg.id} 0 {lv.max_seq} 1 1")
    assert lv.max_seq - lv.min_seq[0] == 2  # three generations
    touch(p, base, 0)
    touch(p, base, 1)
    _, slot = pte(p, base + 2 * PAGE_SIZE)
    pfn = k.swap.cache.lookup(slot)
    min_seq = lv.min_seq[0]
    want = min_seq if preset != "v6.14" else max(lv.max_seq - 3, min_seq)
    assert lv.max_seq - min_seq <= 2 or preset == "v6.14"
    assert int(k.mem.gen[pfn]) - 1 == want % MAX_NR_GENS
    assert want != lv.max_seq - 1


# -- reclaim, refaults, writes -------------------------------------------------------------------
def test_clean_swap_cache_folios_are_reclaimed_without_writing():
    k, p, base = swapped_task("v6.12")
    for page in range(16):
        touch(p, base, page)
    cached = len(k.swap.cache)
    assert cached == 23
    out = vm(k)["pswpout"]
    k.write(f"{CG}/a/memory.reclaim", str(cached * PAGE_SIZE))
    assert vm(k)["pswpout"] == out  # nothing was dirty: no I/O
    assert len(k.swap.cache) == 0 and k.swap.nr_used == N  # the same slots, shadows back
    for page in range(N):
        flags, slot = pte(p, base + page * PAGE_SIZE)
        assert flags & PTE_SWAP and k.swap.shadow[slot] != 0
    # the second round refaults: workingset_refault_anon counts every page read,
    # readahead ones included (workingset_refault() in __read_swap_cache_async)
    # (the window does not shrink below half the last one: 4 pages centred on 30)
    r0, in0 = vm(k)["workingset_refault_anon"], vm(k)["pswpin"]
    touch(p, base, 30)
    touch(p, base, 31)
    assert vm(k)["workingset_refault_anon"] - r0 == vm(k)["pswpin"] - in0 == 4
    _, slot = pte(p, base + 29 * PAGE_SIZE)
    assert k.swap.cache.lookup(slot) >= 0


def test_dirty_swap_cache_folio_is_written_to_its_own_slot():
    k, p, base = swapped_task("v6.12")
    touch(p, base, 0)
    _, pfn = pte(p, base)
    assert k.mem.flags[pfn] & PG_swapcache  # a read fault keeps it cached
    touch(p, base, 0, write=True)  # the PTE becomes dirty (no fault: it was mapped)
    out = vm(k)["pswpout"]
    k.write(f"{CG}/a/memory.reclaim", str(PAGE_SIZE))
    assert vm(k)["pswpout"] == out + 1 and k.swap.nr_used == N


def test_write_fault_frees_the_slot_read_fault_keeps_it():
    k, p, base = swapped_task("v6.12")
    touch(p, base, 0, write=True)
    _, pfn = pte(p, base)
    assert not k.mem.flags[pfn] & PG_swapcache and k.swap.nr_used == N - 1
    touch(p, base, 1)
    _, pfn = pte(p, base + PAGE_SIZE)
    assert k.mem.flags[pfn] & PG_swapcache and k.swap.nr_used == N - 1


def test_swap_full_frees_the_slot_on_a_read_fault():
    """vm_swap_full(): fewer than half of the slots free."""
    k = SimKernel("v6.12", node_bytes=(64 << 20,), swap_device="ssd", swap_pages=100)
    k.mkdir(f"{CG}/a")
    p = k.spawn("/a")
    base = p.mmap(N * PAGE_SIZE)
    p.access(base, N * PAGE_SIZE, write=True)
    k.write(f"{CG}/a/memory.reclaim", str(N * PAGE_SIZE))
    touch(p, base, 10)
    _, pfn = pte(p, base + 10 * PAGE_SIZE)
    assert not k.mem.flags[pfn] & PG_swapcache and k.swap.nr_used == N - 1


# -- exit ----------------------------------------------------------------------------------------
def test_exit_frees_swap_cache_folios_and_slots():
    k, p, base = swapped_task("v6.12")
    for page in range(16):
        touch(p, base, page)
    assert len(k.swap.cache) > 16
    k.exit_task(p)
    assert k.swap.nr_used == 0 and len(k.swap.cache) == 0
    assert k.read(f"{CG}/a/memory.current") == "0\n" and vm(k)["nr_swapcached"] == 0


# -- the synchronous device ------------------------------------------------------------------------
def test_synchronous_device_bypasses_the_swap_cache():
    k, p, base = swapped_task("v6.12", device="sync")
    for page in range(16):
        touch(p, base, page)
    s = vm(k)
    assert s["pswpin"] == s["pgmajfault"] == 16 and s["swap_ra"] == 0
    assert len(k.swap.cache) == 0 and k.swap.nr_used == N - 16


# -- cluster readahead: shmem, and anonymous memory on a rotational device --------------------
def test_shmem_cluster_readahead():
    """shmem uses the swap cache on every device. Slots 1..16 in index order; faults
    on 0, 1, 2, 3: slot 1 is next to prev_offset 0 (2 pages, but its aligned pair is
    {0, 1} without the header: 1 page), slot 2 reads {2, 3}, index 2 hits, slot 4
    reads 4 pages {4..7} (one hit + 2, rounded up to 4)."""
    k = SimKernel("v6.12", node_bytes=(64 << 20,), debug=True)  # a synchronous device
    k.mkdir(f"{CG}/a")
    p = k.spawn("/a")
    f = k.open_file("shm", 16 * PAGE_SIZE, shmem=True)
    base = p.mmap(16 * PAGE_SIZE, file=f)
    p.access(base, 16 * PAGE_SIZE, write=True)
    k.write(f"{CG}/a/memory.reclaim", str(16 * PAGE_SIZE))
    assert (f.swap != 0).all() and (f.pages < 0).all()
    steps = []
    for page in range(4):
        before = vm(k)
        touch(p, base, page)
        after = vm(k)
        steps.append((after["pswpin"] - before["pswpin"],
                      after["pgmajfault"] - before["pgmajfault"]))
    assert steps == [(1, 1), (2, 1), (0, 0), (4, 1)]
    # the faulted pages left the swap cache and their slots; 5, 6, 7 wait in it
    assert k.swap.nr_used == 12 and len(k.swap.cache) == 3


def test_cluster_readahead_charges_the_slot_owner():
    """mem_cgroup_swapin_charge_folio(): a neighbour slot of another memcg comes back
    into that memcg (and its LRU), not the faulting task's."""
    k = SimKernel("v6.12", node_bytes=(64 << 20,), debug=True, swap_device="hdd")
    tasks = []
    for name in ("a", "b"):
        k.mkdir(f"{CG}/{name}")
        t = k.spawn(f"/{name}")
        b = t.mmap(2 * PAGE_SIZE)
        t.access(b, 2 * PAGE_SIZE, write=True)
        k.write(f"{CG}/{name}/memory.reclaim", str(2 * PAGE_SIZE))
        tasks.append((t, b))
    (pa, ba), _ = tasks
    touch(pa, ba, 0)  # slot 1: one page
    touch(pa, ba, 1)  # slot 2 next to slot 1: the pair {2, 3}; slot 3 is /b's
    assert k.read(f"{CG}/b/memory.current") == f"{PAGE_SIZE}\n"
    assert f"swapcached {PAGE_SIZE}\n" in k.read(f"{CG}/b/memory.stat")
    pfn = k.swap.cache.lookup(3)
    assert k.mem.memcg[pfn] == k.memcg("/b").id and k.mem.gen[pfn] != 0


# -- the page-cluster file -------------------------------------------------------------------------
@pytest.mark.parametrize("preset,text,value", [
    ("v6.12", "0", 0), ("v6.12", " 31\n", 31), ("v6.12", "0x10", 16), ("v6.12", "010", 8),
    ("v6.1", "32", 32), ("v6.1", "2147483647", 2147483647),
])
def test_page_cluster_accepts(preset: str, text: str, value: int):
    k = SimKernel(preset, node_bytes=(64 << 20,))
    assert k.read(PC) == "3\n"
    k.write(PC, text)
    assert k.read(PC) == f"{value}\n"


@pytest.mark.parametrize("preset,text", [
    ("v6.12", "32"), ("v6.12", "-1"), ("v6.1", "-1"), ("v6.12", ""), ("v6.12", "3x"),
    ("v6.12", "abc"), ("v6.1", "2147483648"),
])
def test_page_cluster_rejects(preset: str, text: str):
    k = SimKernel(preset, node_bytes=(64 << 20,))
    with pytest.raises(OSError) as e:
        k.write(PC, text)
    assert e.value.errno == errno.EINVAL and k.read(PC) == "3\n"


def test_page_cluster_boot_default_on_small_machines():
    assert SimKernel("v6.12", node_bytes=(8 << 20,)).read(PC) == "2\n"


def test_vma_ra_enabled_off_uses_cluster_readahead():
    k, p, base = swapped_task("v6.12")
    k.write("/sys/kernel/mm/swap/vma_ra_enabled", "off")
    assert k.read("/sys/kernel/mm/swap/vma_ra_enabled") == "false\n"
    with pytest.raises(OSError):
        k.write("/sys/kernel/mm/swap/vma_ra_enabled", "x")
    touch(p, base, 0)  # slot 1, next to prev_offset 0: its pair without the header
    touch(p, base, 1)  # slot 2: {2, 3}
    assert vm(k)["pswpin"] == 3
