"""Memory pressure through cgroup files: a hot/cold workload under memory.max, memory.max
writes, memory.min protection and memory.events. Spec §4.1, §4.9 and the memcg layer
the eviction issue adds (limits, proactive reclaim).
"""

from __future__ import annotations

import errno

import pytest
from evict_checks import (
    CGROOT,
    PAGE,
    age,
    audit,
    child,
    cold_anon,
    new_kernel,
    parse_events,
    resident_mask,
    stat,
    swapped_mask,
)

HOT = 1024
COLD = 8192
LIMIT = 4096
CHUNK = 512


@pytest.mark.parametrize("preset", ("v6.10", "v6.14"))
@pytest.mark.parametrize("cold_kind", ("anon", "file"))
def test_workload_hot_set_survives_a_cold_stream(preset: str, cold_kind: str) -> None:
    """A hot set that fits in memory.max stays resident while a cold set that does not
    streams through; the cold set ends swapped (anon) or dropped (file).

    The task writes HOT = 1024 anon pages, then for 16 rounds touches the next CHUNK =
    512 cold pages once (written if anon, read through a shared mapping if file),
    reads the whole hot set and ages (`+`, force_scan), as a proactive agent would; then
    5 more rounds of hot reads and aging. memory.max = LIMIT = 4096 pages.

    Bound on hot refaults: 0. Cold pages are touched once and never again, so every
    swap-in (pswpin) is a hot refault. Why none can happen (spec §2.5, §2.6, §4.2, §4.5,
    §4.7):
    * no reclaim runs before the charge passes LIMIT, i.e. before round
      (LIMIT - HOT) / CHUNK = 6; by then the hot set has been seen young by two agings
      (rounds 0 and 1), so it is promoted (two-step upstream; v6.10 at once) and every
      later aging, which follows a full hot read, promotes it into the youngest
      generation again;
    * after the aging that ends a round, all resident cold pages except the chunk just
      faulted are in older generations than the hot set: at the limit that is
      LIMIT - HOT - CHUNK = 2560 pages. Eviction takes the oldest generation first
      (promoted folios are sorted, not evicted), and one round's charges free at most
      CHUNK + MIN_LRU_BATCH = 576 pages (reclaim works in batches of 64), so it never
      reaches the hot generation before the next hot read;
    * a hot page read since the last aging has its accessed bit set, and the rmap walk
      keeps such a folio (look-around finds it young).
    After the stream no page is charged, so no reclaim and no refault can happen.
    """
    k = new_kernel(preset, mib=256)
    w = child(k, "w")
    k.write(f"{CGROOT}/w/memory.max", str(LIMIT * PAGE))
    p = k.spawn(memcg="/w")
    hot = p.mmap(HOT * PAGE)
    p.access(hot, HOT * PAGE, write=True)
    if cold_kind == "anon":
        cold = p.mmap(COLD * PAGE)
    else:
        f = k.open_file("cold", COLD * PAGE)
        cold = p.mmap(COLD * PAGE, file=f)
    for i in range(COLD // CHUNK):
        p.access(cold + i * CHUNK * PAGE, CHUNK * PAGE, write=cold_kind == "anon")
        p.access(hot, HOT * PAGE)
        age(k, w.id, 60)
        assert w.nr_charged <= LIMIT
    for _ in range(5):
        p.access(hot, HOT * PAGE)
        age(k, w.id, 60)

    assert stat(k, "pswpin") == 0, "hot pages refaulted"
    assert resident_mask(p, hot, HOT).all()
    resident_cold = int(resident_mask(p, cold, COLD).sum())
    census = audit(k)
    assert resident_cold <= LIMIT - HOT
    if cold_kind == "anon":
        assert int(swapped_mask(p, cold, COLD).sum()) == COLD - resident_cold
        assert census.swapped == COLD - resident_cold and census.dropped == 0
    else:
        assert (f.pages >= 0).sum() == resident_cold
        assert census.dropped == COLD - resident_cold and census.swapped == 0
    events = parse_events(k.read(f"{CGROOT}/w/memory.events"))
    assert events["max"] > 0 and events["oom"] == 0 and events["oom_kill"] == 0
    assert k.oom_events == []


@pytest.mark.parametrize("preset", ("v6.10", "v6.16"))
def test_memory_max_write_reclaims_down_to_the_limit(preset: str) -> None:
    """Writing memory.max below the usage reclaims until the usage fits (memory_max_write:
    up to MAX_RECLAIM_RETRIES fruitless passes), OOM-killing only if reclaim cannot get
    there: with a swap device the cold anon pages go to swap; without one (nothing
    reclaimable) the task is killed and memory.events counts the OOM.
    """
    for swap_pages, killed in ((1 << 20, False), (0, True)):
        k = new_kernel(preset, swap_pages=swap_pages)
        a = child(k)
        p = k.spawn(memcg="/a")
        addr = cold_anon(k, a, p, 600)
        k.write(f"{CGROOT}/a/memory.max", str(100 * PAGE))
        events = parse_events(k.read(f"{CGROOT}/a/memory.events"))
        assert a.nr_charged <= 100
        if killed:
            assert not p.alive and events["oom"] >= 1 and events["oom_kill"] == 1
            assert k.oom_events[0]["reason"] == "memory.max"
        else:
            assert p.alive and int(swapped_mask(p, addr, 600).sum()) >= 500
            assert events["oom"] == 0
        audit(k)


def test_memory_min_protects_children_not_the_reclaim_target() -> None:
    """memory.min shields a memcg from reclaim aimed at an ancestor, never from reclaim
    aimed at itself (mem_cgroup_below_min ignores the target's own protection).

    /p/c holds 500 cold pages with memory.min = 1000 pages: memory.reclaim on /p finds
    nothing it may take (EAGAIN after its retries); on /p/c it reclaims.
    """
    k = new_kernel("v6.14")
    child(k, "p")
    k.mkdir(f"{CGROOT}/p/c")
    c = k.memcg("/p/c")
    p = k.spawn(memcg="/p/c")
    addr = cold_anon(k, c, p, 500)
    k.write(f"{CGROOT}/p/c/memory.min", str(1000 * PAGE))
    with pytest.raises(OSError) as e:
        k.write(f"{CGROOT}/p/memory.reclaim", str(100 * PAGE))
    assert e.value.errno == errno.EAGAIN and stat(k, "pswpout") == 0
    k.write(f"{CGROOT}/p/c/memory.reclaim", str(100 * PAGE))
    assert int(swapped_mask(p, addr, 500).sum()) >= 100
    audit(k)
