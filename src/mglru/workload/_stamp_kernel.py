"""Ground-truth stamps of a stream's accesses, for the compiled hit loops.

An access's stamp is its time in ms since boot, plus one (0: never accessed),
as `host.access_ms` computes it in Python.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["stamp_of", "stamp_run", "stamp_at"]


@njit(cache=True, nogil=True, _nrt=False)
def stamp_of(t_ns):
    """The stamp of an access at `t_ns`."""
    return t_ns // 1_000_000 + 1


@njit(cache=True, nogil=True, _nrt=False)
def stamp_run(t_ns, i, hi):
    """The ground-truth stamp of access i (ms since boot plus one) and the first access
    after it, below hi, whose stamp differs (hi if none).

    A stream at millions of accesses per second keeps one stamp for thousands of
    accesses: the hit loop reads the times only where the stamp changes (a gallop,
    then a bisection over the non-decreasing times).
    """
    ms = stamp_of(t_ns[i])
    bound = ms * 1_000_000  # the first time with the next stamp
    below, k, step = i, i + 1, np.int64(1)
    while k < hi and t_ns[k] < bound:
        below = k
        k += step
        step <<= 1
    top = min(k, hi)
    lo = below + 1
    while lo < top:  # the first access in (below, top) at or past bound
        mid = (lo + top) >> 1
        if t_ns[mid] < bound:
            lo = mid + 1
        else:
            top = mid
    return ms, lo


@njit(cache=True, nogil=True, _nrt=False)
def stamp_at(last_ms, pfn_of, idx, at, run):
    """Store the stamp of access i of `at` = (t_ns, i, hi) at `idx` in `last_ms`, or at
    `pfn_of[idx]` when `pfn_of` is an array (None: at `idx`; `last_ms` None: nowhere).
    `run` = (ms, next_i): the stamp of the accesses before `next_i` (`stamp_run`);
    returns it, moved on when access i is past them."""
    ms, next_i = run
    if last_ms is None:
        return ms, next_i
    t_ns, i, hi = at
    if i >= next_i:
        ms, next_i = stamp_run(t_ns, i, hi)
    if pfn_of is None:
        last_ms[idx] = ms
    else:
        last_ms[np.int64(pfn_of[idx])] = ms
    return ms, next_i
