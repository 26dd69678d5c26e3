"""The mm_struct list: which address spaces an aging iteration walks.

Kernel: mm/vmscan.c: iterate_mm_list().

Each memcg has one FIFO of mms (`MemCgroup.mm_list`) shared by all nodes; each
lruvec's `mm_state` keeps a cursor: `head` (where the current iteration
continues after) and `tail` (where the last one ended). Cursors are an `Mm`, the
list sentinel `SENTINEL`, or `None` (unset), as the kernel's list_head pointers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mglru.lru_gen.bloom import reset_bloom_filter
from mglru.lru_gen.helpers import BITS_PER_LONG, lru_hist_from_seq

if TYPE_CHECKING:
    from mglru.lru_gen.walk import MmWalk
    from mglru.mm.memcg import MemCgroup
    from mglru.mm.process import Mm

__all__ = ["SENTINEL", "lru_gen_add_mm", "lru_gen_del_mm", "lru_gen_migrate_mm",
           "iterate_mm_list", "iterate_mm_list_nowalk"]


class _Sentinel:
    def __repr__(self) -> str:
        return "SENTINEL"


SENTINEL = _Sentinel()


def _next(mm_list: list, pos: object) -> object:
    if pos is SENTINEL:
        return mm_list[0] if mm_list else SENTINEL
    i = mm_list.index(pos)
    return mm_list[i + 1] if i + 1 < len(mm_list) else SENTINEL


def _prev(mm_list: list, pos: object) -> object:
    i = mm_list.index(pos)
    return mm_list[i - 1] if i > 0 else SENTINEL


def lru_gen_add_mm(mm: Mm, memcg: MemCgroup) -> None:
    """Append an mm; lruvecs whose last iteration ended at the sentinel now end at it."""
    for lruvec in memcg.lruvecs:
        st = lruvec.mm_state
        if st is not None and st.tail is SENTINEL:
            st.tail = mm
    memcg.mm_list.append(mm)


def lru_gen_del_mm(mm: Mm, memcg: MemCgroup) -> None:
    """Remove an mm, moving cursors that point at it (head back, tail forward)."""
    if mm not in memcg.mm_list:
        return
    for lruvec in memcg.lruvecs:
        st = lruvec.mm_state
        if st is None:
            continue
        if st.head is mm:
            st.head = _prev(memcg.mm_list, mm)
        if st.tail is mm:
            st.tail = _next(memcg.mm_list, mm)
    memcg.mm_list.remove(mm)


def lru_gen_migrate_mm(mm: Mm, old: MemCgroup, new: MemCgroup) -> None:
    """A task owning `mm` moved memcg: move the mm between lists."""
    lru_gen_del_mm(mm, old)
    lru_gen_add_mm(mm, new)


def _get_next_mm(walk: MmWalk, mm: Mm) -> Mm | None:
    """Take the mm if its node bit is set (or force_scan), clearing the bit."""
    key = walk.lruvec.nid % BITS_PER_LONG
    if not walk.force_scan and not (mm.lru_gen_bitmap >> key) & 1:
        return None
    mm.lru_gen_bitmap &= ~(1 << key)
    return mm if mm.users > 0 else None


def _reset_mm_stats(walk: MmWalk, last: bool) -> None:
    st = walk.lruvec.mm_state
    assert st is not None
    nr_hist = walk.lruvec.nr_hist_gens
    st.stats[lru_hist_from_seq(walk.seq, nr_hist)] += walk.mm_stats
    walk.mm_stats[:] = 0
    if nr_hist > 1 and last:
        st.stats[lru_hist_from_seq(walk.seq + 1, nr_hist)] = 0


def iterate_mm_list(walk: MmWalk, prev: Mm | None) -> tuple[bool, Mm | None]:
    """Next mm for this walker; returns (last, mm). mm/vmscan.c: iterate_mm_list().

    `last` is True when this walker saw the end of the list (and so must
    increment max_seq). Sets `walk.force_scan` for mms added since the
    previous iteration; the first taken mm resets the next Bloom filter.
    """
    lruvec = walk.lruvec
    st = lruvec.mm_state
    assert st is not None
    mm_list = lruvec.memcg.mm_list
    first = last = False
    mm = None
    if walk.seq > st.seq:
        if st.head is None:
            st.head = SENTINEL
        first = st.head is SENTINEL
        while True:
            st.head = _next(mm_list, st.head)
            if st.head is SENTINEL:
                st.seq += 1
                last = True
                break
            if st.tail is None or st.tail is st.head:
                st.tail = _next(mm_list, st.head)
                walk.force_scan = True
            mm = _get_next_mm(walk, st.head)  # type: ignore[arg-type]
            if mm is not None:
                break
    if prev is not None or last:
        _reset_mm_stats(walk, last)
    if mm is not None and first:
        reset_bloom_filter(st, walk.seq + 1)
    return last, mm


def iterate_mm_list_nowalk(lruvec, seq: int) -> bool:
    """The no-walk iteration used when page tables cannot be walked (iterate_mm_list_nowalk())."""
    st = lruvec.mm_state
    if seq > st.seq:
        st.head = None
        st.tail = None
        st.seq += 1
        return True
    return False
