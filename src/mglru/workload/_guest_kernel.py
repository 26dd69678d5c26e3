"""Compiled loop over a vCPU's guest-frame accesses: the guest TLB and SPTE accessed bits.

Per access, as `kvm.vcpu.vcpu_access` does for one page: the translation is the
SPTE of the gfn (or of its 2 MiB leaf's head); an access that needs a KVM page
fault (no SPTE, or a write to a read-only one) is taken by `_guest_fault` when
it can be (its new translation is then cached, no walk), else it stops the
loop, as does an access in no memslot. Otherwise a translation cached in the
vCPU's TLB is used as is; a TLB miss walks the SPTE, which sets its accessed
(and, on a write, dirty) bit or, without A/D bits, takes a fast page fault that
un-tracks it; the translation becomes the most recently used TLB entry,
evicting the least recently used one.

The TLB is an exact LRU: a doubly linked list over `entries` slots (`prv`,
`nxt`, `lst = [oldest, newest, count]`) and, for translations of the running
address space, a slot index per head gfn (`where`, slot + 1; 0 = not cached).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mglru.kvm.spte import (
    SPTE_ACCESSED as _ACC,
    SPTE_DIRTY as _DIRTY,
    SPTE_HUGE as _HUGE,
    SPTE_PRESENT as _PRESENT,
    SPTE_WRITABLE as _WRITABLE,
)
from mglru.lru_gen._jit_cache import invalidate_stale
from mglru.mm._prefetch import prefetch
from mglru.workload._guest_fault import O_FAULTS, guest_fault
from mglru.workload._stamp_kernel import stamp_at

# numba keys the cache on this file only; these are compiled into it
invalidate_stale(__file__, "../mm/_prefetch.py", "_guest_fault.py", "_host_fault.py",
                 "../lru_gen/_list_kernel.py", "../lru_gen/_evict_layout.py", "_stamp_kernel.py")

__all__ = ["guest_hits", "tlb_load", "tlb_store", "tlb_forget", "KEY_GFN_MASK"]

#: a TLB key is as_id << 48 | head gfn (kvm.vcpu)
KEY_GFN_MASK = (1 << 48) - 1
_HEAD_MASK = ~np.int64(511)
#: how many accesses ahead the SPTE, TLB index and stamp lines are asked for
_AHEAD = 16


@njit(cache=True, nogil=True, _nrt=False)
def tlb_load(old, keys, prv, nxt, lst, where, as_bits):
    """Load a GuestTlb's keys (oldest first) into the linked list and the gfn index."""
    c = len(old)
    for i in range(c):
        keys[i] = old[i]
        prv[i] = i - 1
        nxt[i] = i + 1 if i + 1 < c else -1
        if old[i] & ~np.int64(KEY_GFN_MASK) == as_bits:
            where[old[i] & KEY_GFN_MASK] = i + 1
    lst[0] = 0 if c else -1
    lst[1] = c - 1
    lst[2] = c


@njit(cache=True, nogil=True)
def tlb_store(keys, nxt, lst):
    """The TLB's keys oldest first (the list and the gfn index stay as they are)."""
    out = np.empty(lst[2], np.int64)
    s = lst[0]
    i = 0
    while s >= 0:
        out[i] = keys[s]
        i += 1
        s = nxt[s]
    return out


@njit(cache=True, nogil=True, _nrt=False)
def tlb_forget(keys, nxt, lst, where, as_bits):
    """Clear the gfn index of the list's translations (before another load)."""
    s = lst[0]
    while s >= 0:
        if keys[s] & ~np.int64(KEY_GFN_MASK) == as_bits:
            where[keys[s] & KEY_GFN_MASK] = 0
        s = nxt[s]


@njit(cache=True, nogil=True, _nrt=False)
def _unlink(s, prv, nxt, lst):
    p, n = prv[s], nxt[s]
    if p >= 0:
        nxt[p] = n
    else:
        lst[0] = n
    if n >= 0:
        prv[n] = p
    else:
        lst[1] = p


@njit(cache=True, nogil=True, _nrt=False)
def _push_newest(s, prv, nxt, lst):
    t = lst[1]
    prv[s] = t
    nxt[s] = -1
    if t >= 0:
        nxt[t] = s
    else:
        lst[0] = s
    lst[1] = s


@njit(cache=True, nogil=True, _nrt=False)
def _slot_index(base, end, g):
    """The memslot holding gfn `g` (slots sorted by base gfn), or -1."""
    lo, hi = 0, len(base)
    while lo < hi:
        mid = (lo + hi) >> 1
        if base[mid] <= g:
            lo = mid + 1
        else:
            hi = mid
    i = lo - 1
    return i if i >= 0 and g < end[i] else -1


@njit(cache=True, nogil=True, _nrt=False)
def guest_hits(gfns, writes, t_ns, lo, hi, slot_base, slot_end, sptes, ad_bits, as_bits, tlb,
               last_ms, ahead, host):
    """Apply accesses [lo, hi) until one needs KVM's fault path in Python.

    `tlb` is the vCPU's TLB as `tlb_load` lays it out (keys, prv, nxt, lst, where)
    and its number of entries. `ahead`: prefetch the lines of later accesses.
    `host`: what `_guest_fault.guest_fault` needs to take faults here (their
    indices go to its `fidx`). Returns (index of that access or hi, fast page
    faults taken).
    """
    keys, prv, nxt, lst, where, entries = tlb
    fidx, out = host[10], host[11]
    truth = len(last_ms) > 0
    fast = 0
    nr_sptes = len(sptes)
    sb = se = np.int64(0)  # the memslot of the last access (most stay in one)
    k = -1
    ms = np.int64(0)
    next_i = lo  # the first access whose stamp is not `ms`
    for i in range(lo, hi):
        if ahead and i + _AHEAD < hi:  # a later access's lines: a hint, nothing is read
            ga = gfns[i + _AHEAD]
            if 0 <= ga < len(sptes):
                prefetch(sptes, ga)
                prefetch(where, ga)
                if truth and ga < len(last_ms):
                    prefetch(last_ms, ga)
        g = gfns[i]
        w = writes[i] != 0
        if g < sb or g >= se:
            k = _slot_index(slot_base, slot_end, g)
            if k < 0:
                return i, fast
            sb, se = slot_base[k], slot_end[k]
        if g >= nr_sptes:
            return i, fast
        head = g & _HEAD_MASK if sptes[g] & _HUGE else g
        st = sptes[head]
        faulted = False
        if st & _PRESENT == 0 or (w and st & _WRITABLE == 0):
            if not guest_fault(g, k, w, sptes, host):
                return i, fast
            fidx[out[O_FAULTS]] = i
            out[O_FAULTS] += 1
            head = g  # a small SPTE, installed accessed (and dirty for a write)
            faulted = True
        s = where[head] - 1 if entries else -1
        if s >= 0:  # cached translation: no walk, no bits
            if lst[1] != s:  # already the most recently used: nothing moves
                _unlink(s, prv, nxt, lst)
                _push_newest(s, prv, nxt, lst)
        else:
            if not faulted:  # walked: the hardware sets the bits, or a fast page fault
                if st & _ACC == 0 and not ad_bits:
                    fast += 1
                nst = st | np.uint8(_ACC | (_DIRTY if w else 0))
                if nst != st:  # a line left clean when the bits are there
                    sptes[head] = nst
            if entries:
                if lst[2] < entries:
                    s = lst[2]
                    lst[2] += 1
                else:  # evict the least recently used translation
                    s = lst[0]
                    _unlink(s, prv, nxt, lst)
                    if keys[s] & ~np.int64(KEY_GFN_MASK) == as_bits:
                        where[keys[s] & KEY_GFN_MASK] = 0
                keys[s] = as_bits | head
                where[head] = s + 1
                _push_newest(s, prv, nxt, lst)
        if truth:
            ms, next_i = stamp_at(last_ms, None, g, (t_ns, i, hi), (ms, next_i))
    return hi, fast
