"""How to hand grouped state to the compiled aging walk: a micro-benchmark.

The walk's hot loop (`walk_pte_range` over young PTEs: `get_pfn_folio`,
clear the accessed bit, `walk_update_folio`) written five ways over the same
4 Mi PTEs, each timed as the median of several passes after a warm-up:

* `args`: every array and scalar a positional argument, helpers inlined by hand
  (the shape of the walk before it was split);
* `tuple_calls`: the state in named tuples, the helpers plain `@njit` calls;
* `tuple_ir_inline`: the same helpers inlined at numba IR level (`inline="always"`);
* `structref`: the state in mutable structrefs, the helpers plain calls;
* `record`: the scalars in one structured-array record, the arrays positional;
* `*_nonrt`: the helpers compiled without numba's reference counting
  (`_nrt=False`), so a call does not incref/decref every array it is handed.

It then times the call itself from Python (dispatch and unboxing, no work)
with the state as named tuples and as plain tuples: numba types a plain tuple
argument in C but a named tuple field by field in Python.

Run: `python benchmarks/walk_state_layout.py [--mib 16384] [--reps 7]`.

Measured 2026-12-06 on the 2 shared cores (load about 9, 4 Mi PTEs, median
of 7): args 46.0 ms, tuple_calls 716.5 ms (x15.6), tuple_ir_inline 558.8 ms
(x12.1), structref 411.3 ms (x8.9), tuple_calls_nonrt 45.1 ms (x0.98),
record 602.4 ms (x13.1), record_nonrt 53.1 ms (x1.15). Hence the walk's
choice: named tuples, helpers compiled with `_nrt=False`, and plain tuples
across the Python boundary.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import namedtuple

import numpy as np
from numba import njit, types
from numba.experimental import structref

PRESENT, YOUNG, DIRTY = 1, 2, 4
PG_TAIL, PG_HEAD, PG_DIRTY, PG_SWAPBACKED, PG_REFERENCED, PG_WORKINGSET = 1, 2, 4, 8, 16, 32
REFS_FLAGS = PG_REFERENCED | PG_WORKINGSET

Folios = namedtuple("Folios", "flags gen memcg node_start node_end")
Walk = namedtuple("Walk", "memcg_id new_gen can_swap two_step refs_flags delta")


# --- positional arguments, inlined by hand -------------------------------------------

@njit
def loop_args(pfns, pflags, fflags, fgen, fmemcg, node_start, node_end, memcg_id, new_gen,
              can_swap, two_step, refs_flags, delta):
    moved = 0
    run_key = -1
    run_n = 0
    for i in range(pfns.shape[0]):
        f = pflags[i]
        if not (f & YOUNG):
            continue
        pfn = np.int64(pfns[i])
        if pfn < node_start or pfn >= node_end:
            continue
        head = pfn
        if fflags[pfn] & PG_TAIL:
            head = pfn & ~np.int64(511)
        ffl = np.int64(fflags[head])
        g = np.int64(fgen[head])
        if g == 0 or np.int64(fmemcg[head]) != memcg_id or (not can_swap and ffl & PG_SWAPBACKED):
            continue
        pflags[i] = f & np.uint8(0xFF ^ YOUNG)
        if f & DIRTY:
            ffl |= PG_DIRTY
        if two_step and not (ffl & REFS_FLAGS):
            fflags[head] = np.uint16(ffl | PG_REFERENCED)
            continue
        ffl &= ~refs_flags
        if two_step:
            ffl |= PG_WORKINGSET
        fflags[head] = np.uint16(ffl)
        fgen[head] = np.uint8(new_gen + 1)
        if g - 1 != new_gen:
            key = (g - 1) * 2 + (0 if ffl & PG_SWAPBACKED else 1)
            if key != run_key:
                if run_n:
                    delta[run_key >> 1, run_key & 1] -= run_n
                    delta[new_gen, run_key & 1] += run_n
                run_key = key
                run_n = 0
            run_n += 512 if ffl & PG_HEAD else 1
            moved += 1
    if run_n:
        delta[run_key >> 1, run_key & 1] -= run_n
        delta[new_gen, run_key & 1] += run_n
    return moved


# --- named tuples, helpers as calls -----------------------------------------------------

def _make_tuple_helpers(inline, nrt=True):
    @njit(inline=inline, _nrt=nrt)
    def get_pfn_folio(pfn, fo, w):
        if pfn < fo.node_start or pfn >= fo.node_end:
            return -1
        head = pfn
        if fo.flags[pfn] & PG_TAIL:
            head = pfn & ~np.int64(511)
        if fo.gen[head] == 0 or np.int64(fo.memcg[head]) != w.memcg_id:
            return -1
        if not w.can_swap and fo.flags[head] & PG_SWAPBACKED:
            return -1
        return head

    @njit(inline=inline, _nrt=nrt)
    def walk_update_folio(head, dirty, fo, w, batch):
        run_key, run_n, moved = batch
        ffl = np.int64(fo.flags[head])
        g = np.int64(fo.gen[head])
        if dirty:
            ffl |= PG_DIRTY
        if w.two_step and not (ffl & REFS_FLAGS):
            fo.flags[head] = np.uint16(ffl | PG_REFERENCED)
            return batch
        ffl &= ~w.refs_flags
        if w.two_step:
            ffl |= PG_WORKINGSET
        fo.flags[head] = np.uint16(ffl)
        fo.gen[head] = np.uint8(w.new_gen + 1)
        if g - 1 == w.new_gen:
            return batch
        key = (g - 1) * 2 + (0 if ffl & PG_SWAPBACKED else 1)
        if key != run_key:
            if run_n:
                w.delta[run_key >> 1, run_key & 1] -= run_n
                w.delta[w.new_gen, run_key & 1] += run_n
            run_key = key
            run_n = 0
        return run_key, run_n + (512 if ffl & PG_HEAD else 1), moved + 1

    @njit(inline=inline, _nrt=nrt)
    def flush(batch, w):
        run_key, run_n, moved = batch
        if run_n:
            w.delta[run_key >> 1, run_key & 1] -= run_n
            w.delta[w.new_gen, run_key & 1] += run_n
        return moved

    @njit
    def loop(pfns, pflags, fo, w):
        batch = (np.int64(-1), np.int64(0), np.int64(0))
        for i in range(pfns.shape[0]):
            f = pflags[i]
            if not (f & YOUNG):
                continue
            head = get_pfn_folio(np.int64(pfns[i]), fo, w)
            if head < 0:
                continue
            pflags[i] = f & np.uint8(0xFF ^ YOUNG)
            batch = walk_update_folio(head, (f & DIRTY) != 0, fo, w, batch)
        return flush(batch, w)

    return loop


loop_tuple_calls = _make_tuple_helpers("never")
loop_tuple_ir_inline = _make_tuple_helpers("always")
loop_tuple_calls_nonrt = _make_tuple_helpers("never", nrt=False)


# --- structrefs -------------------------------------------------------------------------

@structref.register
class _FoliosType(types.StructRef):
    pass


@structref.register
class _WalkType(types.StructRef):
    pass


class SFolios(structref.StructRefProxy):
    pass


class SWalk(structref.StructRefProxy):
    pass


structref.define_proxy(SFolios, _FoliosType, list(Folios._fields))
structref.define_proxy(SWalk, _WalkType, list(Walk._fields))


@njit
def _s_get_pfn_folio(pfn, fo, w):
    if pfn < fo.node_start or pfn >= fo.node_end:
        return -1
    head = pfn
    if fo.flags[pfn] & PG_TAIL:
        head = pfn & ~np.int64(511)
    if fo.gen[head] == 0 or np.int64(fo.memcg[head]) != w.memcg_id:
        return -1
    if not w.can_swap and fo.flags[head] & PG_SWAPBACKED:
        return -1
    return head


@njit
def _s_walk_update_folio(head, dirty, fo, w, batch):
    run_key, run_n, moved = batch
    ffl = np.int64(fo.flags[head])
    g = np.int64(fo.gen[head])
    if dirty:
        ffl |= PG_DIRTY
    if w.two_step and not (ffl & REFS_FLAGS):
        fo.flags[head] = np.uint16(ffl | PG_REFERENCED)
        return batch
    ffl &= ~w.refs_flags
    if w.two_step:
        ffl |= PG_WORKINGSET
    fo.flags[head] = np.uint16(ffl)
    fo.gen[head] = np.uint8(w.new_gen + 1)
    if g - 1 == w.new_gen:
        return batch
    key = (g - 1) * 2 + (0 if ffl & PG_SWAPBACKED else 1)
    if key != run_key:
        if run_n:
            w.delta[run_key >> 1, run_key & 1] -= run_n
            w.delta[w.new_gen, run_key & 1] += run_n
        run_key = key
        run_n = 0
    return run_key, run_n + (512 if ffl & PG_HEAD else 1), moved + 1


@njit
def loop_structref(pfns, pflags, fo, w):
    batch = (np.int64(-1), np.int64(0), np.int64(0))
    for i in range(pfns.shape[0]):
        f = pflags[i]
        if not (f & YOUNG):
            continue
        head = _s_get_pfn_folio(np.int64(pfns[i]), fo, w)
        if head < 0:
            continue
        pflags[i] = f & np.uint8(0xFF ^ YOUNG)
        batch = _s_walk_update_folio(head, (f & DIRTY) != 0, fo, w, batch)
    run_key, run_n, moved = batch
    if run_n:
        w.delta[run_key >> 1, run_key & 1] -= run_n
        w.delta[w.new_gen, run_key & 1] += run_n
    return moved


# --- one structured-array record for the scalars ---------------------------------------

REC = np.dtype([("node_start", np.int64), ("node_end", np.int64), ("memcg_id", np.int64),
                ("new_gen", np.int64), ("can_swap", np.bool_), ("two_step", np.bool_),
                ("refs_flags", np.int64)])


def _make_record_loop(nrt=True):
    @njit(_nrt=nrt)
    def _r_get_pfn_folio(pfn, fflags, fgen, fmemcg, r):
        if pfn < r.node_start or pfn >= r.node_end:
            return -1
        head = pfn
        if fflags[pfn] & PG_TAIL:
            head = pfn & ~np.int64(511)
        if fgen[head] == 0 or np.int64(fmemcg[head]) != r.memcg_id:
            return -1
        if not r.can_swap and fflags[head] & PG_SWAPBACKED:
            return -1
        return head


    @njit(_nrt=nrt)
    def _r_walk_update_folio(head, dirty, fflags, fgen, delta, r, batch):
        run_key, run_n, moved = batch
        ffl = np.int64(fflags[head])
        g = np.int64(fgen[head])
        if dirty:
            ffl |= PG_DIRTY
        if r.two_step and not (ffl & REFS_FLAGS):
            fflags[head] = np.uint16(ffl | PG_REFERENCED)
            return batch
        ffl &= ~r.refs_flags
        if r.two_step:
            ffl |= PG_WORKINGSET
        fflags[head] = np.uint16(ffl)
        fgen[head] = np.uint8(r.new_gen + 1)
        if g - 1 == r.new_gen:
            return batch
        key = (g - 1) * 2 + (0 if ffl & PG_SWAPBACKED else 1)
        if key != run_key:
            if run_n:
                delta[run_key >> 1, run_key & 1] -= run_n
                delta[r.new_gen, run_key & 1] += run_n
            run_key = key
            run_n = 0
        return run_key, run_n + (512 if ffl & PG_HEAD else 1), moved + 1


    @njit
    def loop_record(pfns, pflags, fflags, fgen, fmemcg, delta, rec):
        r = rec[0]
        batch = (np.int64(-1), np.int64(0), np.int64(0))
        for i in range(pfns.shape[0]):
            f = pflags[i]
            if not (f & YOUNG):
                continue
            head = _r_get_pfn_folio(np.int64(pfns[i]), fflags, fgen, fmemcg, r)
            if head < 0:
                continue
            pflags[i] = f & np.uint8(0xFF ^ YOUNG)
            batch = _r_walk_update_folio(head, (f & DIRTY) != 0, fflags, fgen, delta, r, batch)
        run_key, run_n, moved = batch
        if run_n:
            delta[run_key >> 1, run_key & 1] -= run_n
            delta[r.new_gen, run_key & 1] += run_n
        return moved

    return loop_record


loop_record = _make_record_loop()
loop_record_nonrt = _make_record_loop(nrt=False)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=16384, help="mapped memory (4 KiB PTEs)")
    ap.add_argument("--reps", type=int, default=7)
    args = ap.parse_args()
    n = args.mib << 8
    rng = np.random.default_rng(0)
    pfns = np.arange(1024, 1024 + n, dtype=np.int64)
    rng.shuffle(pfns.reshape(-1, 512))  # tables in random order, pages in order inside
    npfn = 1024 + n
    fflags = np.zeros(npfn, np.uint16)
    fgen = np.zeros(npfn, np.uint8)
    fmemcg = np.ones(npfn, np.uint16)
    delta = np.zeros((4, 2), np.int64)

    def reset(pflags):
        pflags[:] = PRESENT | YOUNG | DIRTY
        fflags[:] = PG_SWAPBACKED | PG_REFERENCED | PG_WORKINGSET
        fgen[1024:] = 1
        delta[:] = 0

    fo = Folios(fflags, fgen, fmemcg, 1024, npfn)
    w = Walk(1, 1, True, True, REFS_FLAGS, delta)
    sfo = SFolios(fflags, fgen, fmemcg, 1024, npfn)
    sw = SWalk(1, 1, True, True, REFS_FLAGS, delta)
    rec = np.array([(1024, npfn, 1, 1, True, True, REFS_FLAGS)], REC)
    variants = {
        "args": lambda p: loop_args(pfns, p, fflags, fgen, fmemcg, 1024, npfn, 1, 1, True, True,
                                    REFS_FLAGS, delta),
        "tuple_calls": lambda p: loop_tuple_calls(pfns, p, fo, w),
        "tuple_ir_inline": lambda p: loop_tuple_ir_inline(pfns, p, fo, w),
        "structref": lambda p: loop_structref(pfns, p, sfo, sw),
        "tuple_calls_nonrt": lambda p: loop_tuple_calls_nonrt(pfns, p, fo, w),
        "record": lambda p: loop_record(pfns, p, fflags, fgen, fmemcg, delta, rec),
        "record_nonrt": lambda p: loop_record_nonrt(pfns, p, fflags, fgen, fmemcg, delta, rec),
    }
    pflags = np.empty(n, np.uint8)
    times: dict[str, list[float]] = {v: [] for v in variants}
    moved = {}
    for v, fn in variants.items():  # warm-up (compile or load the cache)
        reset(pflags)
        moved[v] = (fn(pflags), delta.tolist())
    assert len({repr(m) for m in moved.values()}) == 1, moved
    for _ in range(args.reps):
        for v, fn in variants.items():  # interleaved, so drift hits every variant alike
            reset(pflags)
            t0 = time.perf_counter()
            fn(pflags)
            times[v].append(time.perf_counter() - t0)
    base = statistics.median(times["args"])
    print(f"{n} PTEs, median of {args.reps} passes")
    for v, ts in times.items():
        med = statistics.median(ts)
        print(f"{v:18s} {med * 1e3:8.2f} ms  {n / med / 1e6:7.1f} M PTEs/s  x{med / base:5.2f}")
    _dispatch(pfns, fo, w)


@njit
def _noop(pfns, fo, w):
    return pfns.shape[0]


def _dispatch(pfns, fo, w, calls: int = 20000) -> None:
    """Time a call of a compiled no-op with named and with plain tuples."""
    for name, a in (("named tuples", (fo, w)), ("plain tuples", (tuple(fo), tuple(w)))):
        _noop(pfns, *a)
        t0 = time.perf_counter()
        for _ in range(calls):
            _noop(pfns, *a)
        print(f"call with {name:12s} {(time.perf_counter() - t0) / calls * 1e6:6.2f} us")


if __name__ == "__main__":
    main()
