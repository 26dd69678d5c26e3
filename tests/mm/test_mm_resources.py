"""Resource bounds: freed memory of every size is reused, teardown costs what was
touched, impossible mappings are refused at once, memcg ids are cheap."""

from __future__ import annotations

import errno
import time
import tracemalloc

import numpy as np
import pytest

from mglru import SimKernel
from mglru.cli import main
from mglru.mm.page import PMD_LEAF
from mglru.mm.process import TASK_SIZE

MiB = 1 << 20


def _thp_leaves(p) -> int:
    pt = p.mm.pt
    return int(np.count_nonzero(pt.pmd_state[:pt.nr_rows] == PMD_LEAF))


def test_freed_thp_blocks_are_reused() -> None:
    """A 64 MiB node: twelve rounds of map 48 MiB with THP, touch, exit. Every round gets
    24 huge pages (the old allocator took only never-used blocks: 24, 6, then 0)."""
    k = SimKernel("v6.10", node_bytes=(64 * MiB,))
    free0 = k.mem.nodes[0].nr_free
    for _ in range(12):
        p = k.spawn()
        a = p.mmap(48 * MiB, thp=True)
        p.access(a, 48 * MiB, write=True)
        assert _thp_leaves(p) == 24
        k.exit_task(p)
        assert k.mem.nodes[0].nr_free == free0


def test_freed_small_pages_merge_into_huge_pages() -> None:
    """512 freed, aligned 4 KiB neighbours make a huge page again (buddy merging); a THP
    block split for 4 KiB pages comes back whole."""
    k = SimKernel("v6.10", node_bytes=(32 * MiB,))
    p = k.spawn()
    a = p.mmap(28 * MiB)
    p.access(a, 28 * MiB, write=True)  # fresh memory is gone
    k.exit_task(p)
    q = k.spawn()
    b = q.mmap(24 * MiB, thp=True)
    q.access(b, 24 * MiB, write=True)
    assert _thp_leaves(q) >= 10
    k.exit_task(q)
    r = k.spawn()
    c = r.mmap(28 * MiB)
    r.access(c, 28 * MiB, write=True)  # 4 KiB pages out of the free huge blocks
    assert k.mem.nodes[0].nr_free == 16 * MiB // 4096 * 2 - 1024 - 28 * MiB // 4096
    k.exit_task(r)


def test_exit_costs_what_was_touched() -> None:
    """mmap(1 TiB), touch 1 MiB, exit: exit allocates megabytes, not gigabytes (the old
    zap built index arrays for every page of the mapping: 19.5 s, 8.4 GB)."""
    k = SimKernel("v6.10")
    p = k.spawn()
    a = p.mmap(1 << 40)
    p.access(a + (1 << 39), MiB, write=True)
    tracemalloc.start()
    t = time.perf_counter()
    k.exit_task(p)
    elapsed = time.perf_counter() - t
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 64 * MiB, f"exit allocated {peak >> 20} MiB"
    assert elapsed < 10
    assert k.memcgs.root.nr_charged == 0


@pytest.mark.parametrize("nbytes", [1 << 50, 1 << 64, TASK_SIZE + 4096, 5 << 40])
def test_impossible_mmap_enomem(nbytes: int) -> None:
    """Longer than TASK_SIZE (do_mmap) or, private and anonymous, more than RAM + swap
    (__vm_enough_memory, vm.overcommit_memory=0): ENOMEM at once, nothing mapped."""
    k = SimKernel("v6.10")  # 128 GiB RAM + 4 TiB swap
    p = k.spawn()
    t = time.perf_counter()
    with pytest.raises(OSError) as e:
        p.mmap(nbytes)
    assert e.value.errno == errno.ENOMEM
    assert time.perf_counter() - t < 1
    assert not p.mm.vmas and p.mm.pt.nr_rows == 0


def test_mmap_bounds_that_the_kernel_accepts() -> None:
    """A file mapping is not accounted (accountable_mapping), so it may exceed RAM + swap;
    a fixed address past TASK_SIZE is ENOMEM."""
    k = SimKernel("v6.10", node_bytes=(64 * MiB,), swap_pages=1024)
    p = k.spawn()
    f = k.open_file("big", 1 << 30)
    assert p.mmap(1 << 30, file=f)
    with pytest.raises(OSError) as e:
        p.mmap(1 << 30)
    assert e.value.errno == errno.ENOMEM
    assert p.mmap(60 * MiB)
    with pytest.raises(OSError) as e:
        p.mmap(1 << 21, addr=TASK_SIZE - (1 << 20))
    assert e.value.errno == errno.ENOMEM


def test_access_tracking_huge_guest_fails_early(capsys) -> None:
    """-b 1T on a 128 GiB machine: a skip with a clear reason within seconds (it used to
    fault for minutes and reach 20 GB)."""
    t = time.perf_counter()
    rc = main(["access-tracking-perf-test", "-b", "1T", "-v", "1"])
    out = capsys.readouterr()
    assert rc == 4
    assert "exceeds the simulated machine's 131072 MiB of RAM" in out.out + out.err
    assert time.perf_counter() - t < 30
