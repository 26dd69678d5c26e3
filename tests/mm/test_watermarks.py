"""Node watermarks and kswapd: sized as the kernel sizes them, woken below low, done at high."""

from __future__ import annotations

import math

import pytest

from mglru import SimKernel
from mglru.mm.memory import node_watermarks
from mglru.mm.page import PAGE_SIZE

MIB = 1 << 20


def _reference(managed: list[int], scale: int = 10) -> list[tuple[int, int, int]]:
    """min_free_kbytes = clamp(isqrt(16 * lowmem KiB), 128, 262144) spread by managed pages."""
    kib = sum(managed) * 4
    mfk = int(math.sqrt(kib * 16))
    mfk = 128 if mfk < 128 else 262144 if mfk > 262144 else mfk
    out = []
    for m in managed:
        wmin = (mfk // 4) * m // sum(managed)
        gap = max(wmin // 4, m * scale // 10000)
        out.append((wmin, wmin + gap, wmin + 2 * gap))
    return out


@pytest.mark.parametrize("pages", [
    1,                      # min_free_kbytes clamps up to 128 KiB
    256,                    # 1 MiB: isqrt(16 KiB * 1024) = 128, the boundary
    257,
    16384,                  # 64 MiB
    1 << 18,                # 1 GiB: 4096 KiB
    (1 << 30) // 4,         # 1 TiB: isqrt = 262144 exactly, the upper clamp
    (1 << 30) // 4 + 1,
    1 << 32,                # 16 TiB: clamped
])
def test_watermarks_match_the_kernel_formula(pages: int) -> None:
    """calculate_min_free_kbytes() and __setup_per_zone_wmarks() for one node."""
    assert node_watermarks([pages]) == _reference([pages])


def test_watermarks_split_by_managed_pages_across_nodes() -> None:
    """Each node gets min_free_pages in proportion to its size; gaps from its own size."""
    managed = [1 << 18, 3 << 18]
    got = node_watermarks(managed)
    assert got == _reference(managed)
    assert got[1][0] == 3 * got[0][0]
    assert all(lo < mi < hi for lo, mi, hi in ((w[0], w[1], w[2]) for w in got))


def test_1g_node_values() -> None:
    """1 GiB: min_free_kbytes 4096 -> min 1024 pages; gap max(256, 262) = 262."""
    k = SimKernel("v6.10", node_bytes=(1 << 30,))
    node = k.mem.nodes[0]
    managed = (1 << 18) - 1024   # the zero pages are reserved
    mfk = math.isqrt(managed * 4 * 16)
    wmin = mfk // 4
    gap = max(wmin // 4, managed * 10 // 10000)
    assert (node.wmark_min, node.wmark_low, node.wmark_high) == (wmin, wmin + gap, wmin + 2 * gap)


def _vmstat(k: SimKernel) -> dict[str, int]:
    return {a: int(b) for a, b in (line.split() for line in k.read("/proc/vmstat").splitlines())}


@pytest.mark.parametrize("preset", ["v6.10", "v6.14"])
def test_kswapd_wakes_below_low_and_stops_at_high(preset: str) -> None:
    """Filling a 64 MiB node past its low watermark wakes kswapd, which reclaims file
    pages until free pages reach high; no direct reclaim is needed."""
    k = SimKernel(preset, node_bytes=(64 * MIB,), debug=True)
    node = k.mem.nodes[0]
    f = k.open_file("cache", 32 * MIB)
    p = k.spawn()
    p.read(f, 0, 32 * MIB)                       # 8192 clean file pages
    assert _vmstat(k)["pgscan_kswapd"] == 0
    free = node.nr_free
    a = p.mmap(free * PAGE_SIZE - (node.wmark_low - 1) * PAGE_SIZE)
    p.access(a, free * PAGE_SIZE - (node.wmark_low - 1) * PAGE_SIZE, write=True)
    stats = _vmstat(k)
    assert stats["pgscan_kswapd"] > 0 and stats["pgsteal_kswapd"] > 0
    assert stats["pgscan_direct"] == 0 and stats["pgsteal_direct"] == 0
    assert node.nr_free >= node.wmark_high - 64   # a batch may overshoot by < MIN_LRU_BATCH


def test_no_kswapd_above_low() -> None:
    """An allocation that leaves exactly low free pages does not wake kswapd (boundary)."""
    k = SimKernel("v6.10", node_bytes=(64 * MIB,), debug=True)
    node = k.mem.nodes[0]
    p = k.spawn()
    n = node.nr_free - node.wmark_low
    a = p.mmap(n * PAGE_SIZE)
    p.access(a, n * PAGE_SIZE, write=True)
    assert node.nr_free == node.wmark_low
    assert _vmstat(k)["pgscan_kswapd"] == 0


def test_kswapd_off_leaves_reclaim_to_the_allocator() -> None:
    """With kswapd=False only direct reclaim runs, when the node has no free page."""
    k = SimKernel("v6.10", node_bytes=(64 * MIB,), kswapd=False)
    f = k.open_file("cache", 32 * MIB)
    p = k.spawn()
    p.read(f, 0, 32 * MIB)
    a = p.mmap(40 * MIB)
    p.access(a, 40 * MIB, write=True)
    stats = _vmstat(k)
    assert stats["pgscan_kswapd"] == 0 and stats["pgsteal_direct"] > 0
