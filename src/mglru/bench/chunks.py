"""From what a functional walk chunk did to timing steps: the notifier-call cost formula.

Mechanism. The `-p` benchmark's walk pacer hands the aging thread one
`ChunkWork` per chunk of PTE tables: the tables and PTEs walked, the young
folios moved, and the chunk's notifier calls as `AgingEvent`s with each
subscriber's lock plan (`mmu.lock_plan`). `chunk_steps` turns it into the
aging thread's steps: the walk cost spread over the calls, one `Batch` per
event whose body is one notifier call under the lock the plan names
(kvm_handle_hva_range, virt/kvm/kvm_main.c: the common lock once per call that
found a memslot, unless the memslot walk is lockless; else the arch lock per
memslot range). It is the one cost formula of a notifier call: the scenario and
the tests charge calls through it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from mglru.bench.fault import VmLocks
from mglru.kvm.accounting import LOCK_RMAP, AgingEvent
from mglru.timing.costs import CostModel
from mglru.timing.steps import Batch, Locked, Segment, Work, cost

__all__ = ["ChunkWork", "walk_events", "chunk_steps"]


@dataclass(frozen=True, slots=True)
class ChunkWork:
    """What the aging walk did on one chunk of PTE tables (the timing layer's input).

    Attributes:
        tables: PTE tables walked (present PMD entries).
        ptes: present PTEs examined (MM_LEAF_OLD + MM_LEAF_YOUNG).
        young: young PTEs whose folio moved to max_seq.
        events: the chunk's notifier calls, one `AgingEvent` per notifier kind and
            subscriber, charged by the subscriber's lock plan.
        plans: per event, (common lock mode or None, arch lock modes per range).
    """

    tables: int
    ptes: int
    young: int
    events: tuple[AgingEvent, ...] = ()
    plans: tuple[tuple[str | None, tuple[str, ...]], ...] = ()


def walk_events(sub: Any, row: np.ndarray) -> list[AgingEvent]:
    """The notifier calls of one walk (or chunk) on one subscriber, as `AgingEvent`s.

    The subscriber's own `account_aging` maps the walk's counters (columns of
    `_walk_secondary`) to events and charges their locks; the events it appends
    are taken back out of its log, which keeps one event per walk: the timing
    layer needs them per chunk.
    """
    events = sub.log.events
    n = len(events)
    sub.account_aging(row)
    out = events[n:]
    del events[n:]
    return out


def _call_body(c: CostModel, locks: VmLocks, ev: AgingEvent, plan: tuple, walk_ns: int,
               cache: dict) -> tuple[Segment, ...]:
    """The segments of one notifier call of `ev`'s kind, after `walk_ns` of walk.

    kvm_handle_hva_range (virt/kvm/kvm_main.c) takes the common lock once per call that
    found a memslot, unless the memslot walk is lockless; the arch handler then
    takes its own lock per memslot range (v4 4-6/7). The work under the lock
    is the handler's: `gfn_range` per range, `spte_test_clear` per SPTE visited,
    atomics and cmpxchg attempts (retries included), flushes.
    """
    n = ev.calls
    common, arch = plan
    under = (ev.ranges * c.gfn_range + ev.visited * c.spte_test_clear + ev.atomics * c.atomic
             + ev.cmpxchg * c.cmpxchg + ev.flushes * c.tlb_flush) // n
    per_call_ranges = max(1, round(ev.ranges / n)) if ev.ranges else 0
    key = (walk_ns, under, per_call_ranges, common, arch)
    body = cache.get(key)
    if body is not None:
        return body
    segs: list[Segment] = [Work(walk_ns + c.notifier_call)]
    if common is not None and ev.slot_calls:
        lock, mode = locks.lock_for(common)
        segs.append(Locked(lock, mode, under))
    else:
        held = [m for m in arch if m != LOCK_RMAP]
        if held and per_call_ranges:
            lock, mode = locks.lock_for(held[0])
            part = under // per_call_ranges
            segs.extend(Locked(lock, mode, part) for _ in range(per_call_ranges))
            segs.append(Work(under - part * per_call_ranges))
        else:
            rmaps = 2 * c.atomic * (ev.locks.get(LOCK_RMAP, 0) // n)
            segs.append(Work(under + rmaps))
    body = tuple(s for s in segs if not (isinstance(s, Work) and s.ns == 0))
    if len(cache) > 512:
        cache.clear()
    cache[key] = body
    return body


def chunk_steps(c: CostModel, locks: VmLocks, cw: ChunkWork, cache: dict) -> Iterator:
    """Steps of one chunk: the walk cost spread over its calls, each call under its lock."""
    walk = cw.tables * c.pte_table + cw.ptes * c.pte_walk + cw.young * c.folio_update_gen
    nr_calls = sum(ev.calls for ev in cw.events)
    if not nr_calls:
        if walk:
            yield cost(walk)
        return
    left = walk
    for i, (ev, plan) in enumerate(zip(cw.events, cw.plans, strict=True)):
        share = left if i == len(cw.events) - 1 else walk * ev.calls // nr_calls
        left -= share
        per_call = share // ev.calls
        yield Batch(ev.calls, _call_body(c, locks, ev, plan, per_call, cache))
        if share - per_call * ev.calls:
            yield cost(share - per_call * ev.calls)
