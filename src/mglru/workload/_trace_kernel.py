"""Compiled passes that turn a trace's requests into a page stream.

A trace of ten million requests went through `np.unique` (a sort, with its
inverse and first indices) twice, and through several temporaries of its full
length; each pass here reads the requests once and writes one array. Objects
are numbered in order of first appearance through an open-addressing hash
table (Fibonacci hashing, linear probing, doubled when half full).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["dense_objects", "expand_pages", "first_touch_writes", "distinct_runs", "next_uses"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True, _nrt=False)
def _slot(key, shift):
    return np.int64((key * _GOLDEN) >> shift)


@njit(cache=True, nogil=True)
def _grow(keys, vals, bits):
    """The table rehashed into twice the slots."""
    bits += 1
    shift = np.uint64(64 - bits)
    mask = (np.int64(1) << bits) - 1
    nkeys = np.zeros(np.int64(1) << bits, np.uint64)
    nvals = np.full(np.int64(1) << bits, -1, np.int64)
    for s in range(len(keys)):
        if vals[s] >= 0:
            j = _slot(keys[s], shift)
            while nvals[j] >= 0:
                j = (j + 1) & mask
            nkeys[j], nvals[j] = keys[s], vals[s]
    return nkeys, nvals, bits


@njit(cache=True, nogil=True, _nrt=False)
def _number(obj_id, size, first, table, out, u):
    """Number requests from `first` on, `table` = (keys, vals, bits), `out` = (obj, size_of),
    `u` objects so far; stops before a new object that would fill the table past half
    (or `size_of`). Returns (the request it stopped at, objects numbered)."""
    keys, vals, bits = table
    obj, size_of = out
    shift = np.uint64(64 - bits)
    mask = (np.int64(1) << bits) - 1
    room = min(len(vals) // 2, len(size_of))
    for r in range(first, len(obj_id)):
        key = np.uint64(obj_id[r])
        j = _slot(key, shift)
        while vals[j] >= 0 and keys[j] != key:
            j = (j + 1) & mask
        o = vals[j]
        if o < 0:  # a new object
            if u == room:
                return r, u
            keys[j], vals[j] = key, u
            o = u
            u += 1
        obj[r] = o
        size_of[o] = size[r]
    return len(obj_id), u


@njit(cache=True, nogil=True)
def dense_objects(obj_id, size):
    """Number the objects of requests `obj_id` in order of first appearance.

    Returns (obj, size_of): each request's object number, and per object the size
    its last request gave.
    """
    n = len(obj_id)
    obj = np.empty(n, np.int64)
    bits = 10
    keys = np.zeros(np.int64(1) << bits, np.uint64)
    vals = np.full(np.int64(1) << bits, -1, np.int64)
    size_of = np.empty(len(vals) // 2, np.int64)
    r, u = 0, 0
    while True:
        r, u = _number(obj_id, size, r, (keys, vals, bits), (obj, size_of), u)
        if r == n:
            return obj, size_of[:u].copy()
        keys, vals, bits = _grow(keys, vals, bits)
        more = np.empty(len(vals) // 2, np.int64)
        more[:u] = size_of[:u]
        size_of = more


@njit(cache=True, nogil=True)
def expand_pages(obj, start, npages):
    """Every page access of the requests: object `o = obj[r]` spans pages
    `start[o] .. start[o] + npages[o] - 1`.

    Returns (pages, req): the page and the request of each access, in request order.
    """
    total = 0
    for r in range(len(obj)):
        total += npages[obj[r]]
    pages = np.empty(total, np.int64)
    req = np.empty(total, np.int64)
    k = 0
    for r in range(len(obj)):
        o = obj[r]
        first = start[o]
        for p in range(npages[o]):
            pages[k] = first + p
            req[k] = r
            k += 1
    return pages, req


@njit(cache=True, nogil=True)
def first_touch_writes(pages, req, write, span):
    """Per access, whether it writes: its request's write flag (`write[req[i]]`, or
    `write[i]` when `req` is None), or the first touch of its page (among `span` pages).
    """
    seen = np.zeros(span, np.bool_)
    out = np.empty(len(pages), np.uint8)
    for i in range(len(pages)):
        p = pages[i]
        w = write[i] if req is None else write[req[i]]
        out[i] = 1 if w or not seen[p] else 0
        seen[p] = True
    return out


@njit(cache=True, nogil=True)
def distinct_runs(values):
    """How many runs of equal values a non-decreasing array has (its distinct values)."""
    n = len(values)
    if n == 0:
        return 0
    runs = 1
    for i in range(1, n):
        if values[i] != values[i - 1]:
            runs += 1
    return runs


@njit(cache=True, nogil=True)
def next_uses(obj, objects):
    """Per request, the index of the next request for the same object (-1: none), from
    the requests' object numbers (`dense_objects`, `objects` of them)."""
    after = np.full(objects, -1, np.int64)
    out = np.empty(len(obj), np.int64)
    for r in range(len(obj) - 1, -1, -1):
        o = obj[r]
        out[r] = after[o]
        after[o] = r
    return out
