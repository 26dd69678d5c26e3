"""rmap/PT walk feedback: `lru_gen_look_around`.

Kernel: mm/vmscan.c: lru_gen_look_around(); v4 2/7 (`should_look_around`).

Mechanism: when the rmap walk of eviction finds a young PTE, MGLRU harvests up
to 64 neighbouring PTEs of the same table (spatial locality), promotes what it
finds young, and feeds dense windows into the current Bloom filter so the next
aging walk scans that table. How secondary MMUs take part depends on the
version (`Rules.look_around_*`):

- v6.10: called only for a primary-young PTE; primary bits only; the caller
  then still runs ptep_clear_flush_young_notify().
- seed-v4: `should_look_around` asks clear_young() on the target first (even
  with cap 0x8 off); the window is scanned only if the target was
  primary-young and the mm has no notifiers.
- v6.12: clear_young_notify() on the target; the window always, with
  clear_young() per candidate PTE when the mm has notifiers.
- bitmap / fast-only (what-ifs): like v6.12, but window PTEs consult only
  subscribers that can age without locks, and the window is scanned if the
  target was young in the primary MMU or in such a subscriber.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

from mglru.lru_gen._look_around_kernel import harvest_window, look_around_window
from mglru.lru_gen._look_around_notify import (
    NR_C,
    NR_SPTE_ARRAYS,
    clear_young_one,
    harvest_notify,
)
from mglru.lru_gen.bloom import update_bloom_filter
from mglru.lru_gen.folio import lru_gen_add_one, lru_gen_del_one
from mglru.lru_gen.helpers import LRU_REFS_FLAGS, LRU_REFS_FLAGS_V6_10, MAX_NR_GENS, MIN_LRU_BATCH
from mglru.mm.mmu_notifier import mmu_notifier_clear_young
from mglru.mm.page import (
    NR_RESERVED_PFNS,
    PAGE_SHIFT,
    PAGE_SIZE,
    PMD_SHIFT,
    PTE_DIRTY,
    PTE_PRESENT,
    PTE_SPECIAL,
    PTE_YOUNG,
    PG_anon,
    PG_dirty,
    PG_head,
    PG_referenced,
    PG_swapbacked,
    PG_swapcache,
    PG_tail,
    PG_workingset,
)
from mglru.mm.process import VM_SPECIAL

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.rmap import Mapping

__all__ = ["lru_gen_look_around", "lru_gen_set_refs"]

_NO_SPTES = np.zeros(0, np.uint8)


def lru_gen_set_refs(k: SimKernel, pfn: int) -> bool:
    """Young found outside a walk: first sighting marks, second activates."""
    flags = int(k.mem.flags[pfn])
    if not flags & (PG_referenced | PG_workingset):
        k.mem.flags[pfn] = (flags & ~LRU_REFS_FLAGS) | PG_referenced
        return False
    k.mem.flags[pfn] = (flags & ~LRU_REFS_FLAGS) | PG_workingset
    return True


#: per number of subscribers, the buffer of one compiled clear_young call
_ONE_CALL: dict[int, np.ndarray] = {}


def _clear_young_notify(k: SimKernel, mm, addr: int, idx: int, fast_only: bool,  # noqa: ANN001
                        segs: tuple | None = None) -> bool:
    """ptep_clear_young_notify(): primary test-and-clear OR secondary clear_young."""
    ff = mm.pt.flat_flags()
    young = bool(ff[idx] & PTE_YOUNG)
    ff[idx] &= ~np.uint8(PTE_YOUNG)
    if mm.has_notifiers() and _notifier_clear_young(mm, addr, fast_only, segs):
        young = True
    return young


def _notifier_clear_young(mm, addr: int, fast_only: bool = False,  # noqa: ANN001
                          segs: tuple | None = None) -> bool:
    """mmu_notifier_clear_young() of the page at `addr`: the subscribers' calls compiled
    when `segs` holds their segments (`_notify_segments`, as for the window's calls;
    given for plain calls only), else each subscriber's `clear_young` in Python."""
    if segs is None:
        return bool(mmu_notifier_clear_young(mm, addr, addr + PAGE_SIZE, fast_only=fast_only))
    subs = mm.notifiers
    calls = _ONE_CALL.get(len(subs))  # filled by the call, read at once: kept
    if calls is None:
        calls = _ONE_CALL[len(subs)] = np.zeros((1, len(subs), NR_C), np.int64)
    young = clear_young_one(addr >> PAGE_SHIFT, segs[0], segs[1], calls)
    for i, sub in enumerate(subs):
        sub.account_clear_young(calls[:, i])
    return bool(young)


def _update_folio(k: SimKernel, lruvec: Lruvec, pfn: int, dirty: bool, walk) -> None:
    """walk_update_folio() for look-around: with a walk batch, else set refs + activate."""
    mem = k.mem
    flags = int(mem.flags[pfn])
    if dirty and not flags & PG_dirty and not (
            flags & PG_anon and flags & PG_swapbacked and not flags & PG_swapcache):
        flags |= PG_dirty
        mem.flags[pfn] = flags
    new_gen = lruvec.max_seq % MAX_NR_GENS
    old_gen = int(mem.gen[pfn]) - 1
    if walk is not None or not k.cfg.two_step_promotion:
        # folio_update_gen() semantics (v6.10 look-around also used them without a walk)
        if old_gen < 0:
            mem.flags[pfn] = flags | PG_referenced
            return
        if k.cfg.two_step_promotion and not flags & (PG_referenced | PG_workingset):
            mem.flags[pfn] = flags | PG_referenced
            return
        if walk is None and old_gen == new_gen:
            return
        refs_flags = LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10
        flags &= ~refs_flags
        if k.cfg.two_step_promotion:
            flags |= PG_workingset
        mem.flags[pfn] = flags
        mem.gen[pfn] = new_gen + 1
        if old_gen != new_gen:
            nr = 512 if flags & PG_head else 1
            t = 0 if flags & PG_swapbacked else 1
            lruvec.nr_pages[old_gen, t, 0] -= nr
            lruvec.nr_pages[new_gen, t, 0] += nr
        return
    if lru_gen_set_refs(k, pfn) and old_gen >= 0 and old_gen != new_gen:
        lru_gen_del_one(mem, lruvec, pfn, reclaiming=False)
        mem.flags[pfn] |= 1 << 2  # PG_active: folio_activate()
        lru_gen_add_one(mem, lruvec, pfn)


#: per mm, the last `_notify_segments` result and the segment lists it was built from
_SEGS_BUILT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _notify_segments(mm) -> tuple | None:  # noqa: ANN001
    """The arguments of `harvest_notify` for the subscribers of `mm`, or None when some
    subscriber's calls must run in Python (see `Kvm.clear_young_segments`).

    Built again only when a subscriber hands out another list than last time (KVM
    keeps its list while its memslots and SPTE arrays stay)."""
    lists = []
    for sub in mm.notifiers:
        get = getattr(sub, "clear_young_segments", None)
        segs = get() if get is not None else None
        if segs is None:
            return None
        lists.append(segs)
    last = _SEGS_BUILT.get(mm)
    if last is not None and len(last[0]) == len(lists) and all(
            a is b for a, b in zip(last[0], lists, strict=True)):
        return last[1]
    arrays: list = []
    rows = []
    for i, segs in enumerate(lists):
        for vpn0, vpn1, gfn0, sptes in segs:
            a = next((j for j, x in enumerate(arrays) if x is sptes), len(arrays))
            if a == len(arrays):
                arrays.append(sptes)
            rows.append((vpn0, vpn1, gfn0, a, i))
    built = None
    if len(arrays) <= NR_SPTE_ARRAYS:
        cols = np.array(rows, np.int64).reshape(-1, 5).T.copy()
        built = tuple(cols), tuple(arrays) + (_NO_SPTES,) * (NR_SPTE_ARRAYS - len(arrays))
    _SEGS_BUILT[mm] = (lists, built)
    return built


def _harvest_notify(k: SimKernel, lruvec: Lruvec, mm, window, start: int,  # noqa: ANN001
                    walk, segs: tuple) -> int:
    """`_harvest` with every call to the subscribers compiled (`harvest_notify`)."""
    win_f, win_p, cand = window
    cand = np.flatnonzero(cand)
    subs = mm.notifiers
    calls = np.zeros((len(cand), len(subs), NR_C), np.int64)
    out = np.zeros((len(cand), 3), np.int64)
    mem = k.mem
    n = harvest_notify(win_f, win_p, cand, (mem.flags, mem.gen, mem.memcg), lruvec.memcg.id,
                       k.rules.look_around_skips_lone_and_unlisted, start >> PAGE_SHIFT,
                       segs[0], segs[1], calls, out)
    for i, sub in enumerate(subs):
        sub.account_clear_young(calls[:n, i])
    young = 0
    for head, dirty, yes in out[:n].tolist():
        if yes:
            young += 1
            _update_folio(k, lruvec, head, bool(dirty), walk)
    return young


def _harvest(k: SimKernel, lruvec: Lruvec, mm, window, start: int, base_idx: int,  # noqa: ANN001
             walk, segs: tuple | None) -> int:
    """The window loop of `lru_gen_look_around` in Python (notifiers, v6.14+ activation);
    `segs`: the subscribers' segments, or None (their calls run in Python)."""
    rules = k.rules
    win_f, win_p, cand = window
    memcg_id = lruvec.memcg.id
    fast_only = rules.look_around_window_fast_only
    if rules.look_around_notify and not fast_only and segs is not None:
        return _harvest_notify(k, lruvec, mm, window, start, walk, segs)
    young = 0
    for i in np.flatnonzero(cand).tolist():
        j = base_idx + i
        a = start + (i << PAGE_SHIFT)
        f = int(win_f[i])
        pfn = int(win_p[i])
        head = pfn & ~511 if k.mem.flags[pfn] & PG_tail else pfn
        if k.mem.memcg[head] != memcg_id:
            continue
        if rules.look_around_skips_lone_and_unlisted and k.mem.gen[head] == 0:
            continue  # not on an MGLRU list (e.g. the folio under reclaim)
        if not rules.look_around_notify:
            if not f & PTE_YOUNG:
                continue
            win_f[i] &= ~np.uint8(PTE_YOUNG)
        elif not _clear_young_notify(k, mm, a, j, fast_only):
            continue
        young += 1
        _update_folio(k, lruvec, head, bool(f & PTE_DIRTY), walk)
    return young


def lru_gen_look_around(k: SimKernel, lruvec: Lruvec, m: Mapping, walk=None) -> bool:
    """Harvest the PTEs around a mapping of a folio under reclaim; returns referenced."""
    rules = k.rules
    mm, vma, addr, idx = m.mm, m.vma, m.addr, m.index
    ff = mm.pt.flat_flags()
    young = 0
    fast_only = rules.look_around_window_fast_only
    notify = rules.look_around_target_secondary_first or rules.look_around_notify
    # the subscribers' segments, for the compiled calls of the target and the window
    segs = _notify_segments(mm) if notify and mm.has_notifiers() else None
    if not notify:
        if not ff[idx] & PTE_YOUNG:
            return False
        young_target = True
    elif rules.look_around_target_secondary_first:
        secondary = mm.has_notifiers() and _notifier_clear_young(mm, addr, segs=segs)
        if ff[idx] & PTE_YOUNG:
            ff[idx] &= ~np.uint8(PTE_YOUNG)
            if mm.has_notifiers():
                return True
        else:
            return bool(secondary)
        young_target = True
        young = 1
    else:
        primary = bool(ff[idx] & PTE_YOUNG)
        young_target = _clear_young_notify(k, mm, addr, idx, False, segs)
        if not young_target:
            return False
        young = 1
        # what-ifs: scan the window for a secondary-only young target only if
        # every subscriber can answer without locks (our reading of v2/v3)
        if fast_only and not primary and not all(s.fast_only_capable() for s in mm.notifiers):
            return True
    if vma.flags & VM_SPECIAL:
        return young_target
    start, end = look_around_window(addr, vma.start, vma.end, MIN_LRU_BATCH)
    if rules.look_around_skips_lone_and_unlisted and end - start == PAGE_SIZE:
        return True  # the PMD's span in the VMA is this page alone (never cut)
    node = k.mem.nodes[lruvec.nid]
    memcg_id = lruvec.memcg.id
    has_notifiers = mm.has_notifiers() and rules.look_around_notify
    base_idx = idx - ((addr - start) >> PAGE_SHIFT)
    fp = mm.pt.flat_pfn()
    n = (end - start) >> PAGE_SHIFT
    # NOTE: the PTE tests are done for the whole window at once; the loop only
    # changes the bits of the PTE it is at, so testing them first is the same
    win_f = ff[base_idx: base_idx + n]
    win_p = fp[base_idx: base_idx + n].astype(np.int64)
    cand = (win_f & (PTE_PRESENT | PTE_SPECIAL)) == PTE_PRESENT
    if not has_notifiers:
        cand &= (win_f & PTE_YOUNG) != 0
    cand &= (win_p >= max(node.start_pfn, NR_RESERVED_PFNS)) & (win_p < node.end_pfn)
    if not has_notifiers and (walk is not None or not k.cfg.two_step_promotion):
        young += harvest_window(
            win_f, win_p, np.flatnonzero(cand), k.mem.flags, k.mem.gen, k.mem.memcg,
            lruvec.nr_pages[:, :, 0], memcg_id, rules.look_around_skips_lone_and_unlisted,
            lruvec.max_seq % MAX_NR_GENS, walk is not None, k.cfg.two_step_promotion,
            LRU_REFS_FLAGS if k.cfg.two_step_promotion else LRU_REFS_FLAGS_V6_10)
    else:
        young += _harvest(k, lruvec, mm, (win_f, win_p, cand), start, base_idx, walk, segs)
    st = lruvec.mm_state
    if st is not None and young * 8 >= n:
        update_bloom_filter(st, lruvec.max_seq, mm.id, start >> PMD_SHIFT)
    return True

