"""Apply a guest vCPU's stream: compiled TLB, SPTE and simple fault work, the rest per page.

As for host streams, faults that cannot reclaim stay in the compiled loop
(`_guest_fault`: a small SPTE over a 4 KiB anonymous host page, within the
budget of `host.fault_context`); their effects on Python objects are applied
right after the loop (`host.apply_faults`, the VM's counters). Every other
access the loop cannot finish goes through `kvm.vcpu.vcpu_access` for its one
page (KVM page fault, GUP through the host fault path with its charge and
reclaim), with the clock at its time; the TLB is handed back to the `GuestTlb`
before that, so the result is the per-page one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.kvm.vcpu import vcpu_access
from mglru.lru_gen.walk import vma_has_recency
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_SHIFT
from mglru.workload._guest_fault import KIND_RECENCY, O_FAULTS, O_USED
from mglru.workload._guest_kernel import guest_hits, tlb_forget, tlb_load, tlb_store
from mglru.workload.host import (
    FaultBufs,
    access_ms,
    apply_faults,
    fault_context,
    set_clock,
    vma_key,
)
from mglru.workload.host_reclaim import fault_budget, no_pool

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.kvm.kvm_main import Kvm
    from mglru.kvm.memslot import Memslot
    from mglru.workload.stream import Stream

__all__ = ["run_guest"]

_AS_SHIFT = 48
_EMPTY_U32 = np.zeros(0, np.uint32)
_NO_FAULTS = np.zeros(0, np.int64)  # a fault buffer with no room: the loop takes no fault

#: faults one call of the compiled loop may take (bounds `fidx` and the pages prepared)

#: the compiled loop prefetches the lines of later accesses: measured faster at every
#: guest size from 0.25 GiB (benchmarks/prefetch_ab.py)
PREFETCH = True


def _grow(a: npt.NDArray, n: int) -> npt.NDArray:
    if len(a) >= n:
        return a
    out = np.zeros(n, a.dtype)
    out[: len(a)] = a
    return out


class _Scratch:
    """run_guest's buffers for one stream: the TLB as the loop keeps it (its lists and
    gfn index, still valid while the vCPU's keys are the array stored last: GuestTlb
    replaces its keys on every change) and the fault buffers."""

    def __init__(self, entries: int) -> None:
        self.entries = entries
        self.keys = np.zeros(max(entries, 1), np.int64)
        self.prv = np.zeros(max(entries, 1), np.int32)
        self.nxt = np.zeros(max(entries, 1), np.int32)
        self.lst = np.zeros(3, np.int64)
        # the TLB's slot (+ 1) per gfn: 16-bit for TLBs that fit, half the cache lines of
        # a 32-bit index at 16 GiB of guest memory
        self.where = np.zeros(0, np.int16 if entries < 1 << 15 else np.int32)
        self.bufs = FaultBufs()  # its fidx takes the indices of the guest's faults
        self.out = np.zeros(2, np.int64)
        self.slots_key: tuple | None = None
        self.slots: tuple = ()
        self.stored: npt.NDArray[np.int64] | None = None  # the keys last stored
        self.as_bits = np.int64(0)  # the address space the gfn index is of
        #: the last `host` argument after its memslot tables, with no room for faults:
        #: `guest_hits` with it takes hits only, and builds no fault context
        self.hits_only: tuple | None = None


def _slot_tables(kvm: Kvm, slots: list[Memslot], sc: _Scratch) -> tuple:
    """(base, end, vpn0, r0, kind, rows) of `slots` for `guest_hits`: their gfn ranges
    and where their pages are in the VMM's page table. Kept in `sc` while the memslots
    and the VMM's VMAs stay the same (an engine quantum may hold a few accesses).

    A memslot gets the kind -1 (its faults go to Python) unless one 4 KiB anonymous
    VMA holds all of it.
    """
    p = kvm.process
    mm = p.mm
    key = (p.alive, tuple(slots), vma_key(mm))  # Memslot is frozen: compared by value
    if sc.slots_key == key:
        return sc.slots
    n = len(slots)
    vpn0 = np.zeros(n, np.int64)
    r0 = np.zeros(n, np.int64)
    kind = np.full(n, -1, np.int64)
    rows = [np.zeros(0, np.int64)]
    off = 0
    for i, sl in enumerate(slots):
        vma = mm.find_vma(sl.userspace_addr) if p.alive else None
        if vma is None or vma.thp or vma.file is not None or vma.end < sl.hva_end:
            continue
        vpn0[i] = (sl.userspace_addr >> PAGE_SHIFT) - sl.base_gfn
        r0[i] = off - (vma.start >> PMD_SHIFT)
        kind[i] = KIND_RECENCY if vma_has_recency(vma) else 0
        rows.append(vma.rows.astype(np.int64))
        off += len(vma.rows)
    sc.slots_key = key
    sc.slots = (np.array([sl.base_gfn for sl in slots], np.int64),
                np.array([sl.gfn_end for sl in slots], np.int64), vpn0, r0, kind,
                np.concatenate(rows))
    return sc.slots


def _host_of(k: SimKernel, kvm: Kvm, tables: tuple, sc: _Scratch, most: int) -> tuple:
    """The `host` argument of `guest_hits`: the memslots' tables (`_slot_tables`), the
    VMM's page table, and the budget of faults that cannot reclaim
    (`host.fault_context`), with pages prepared for `most` of them (the accesses
    left: one host fault each)."""
    p = kvm.process
    pt = p.mm.pt
    sc.out[:] = 0
    lim, npfns = fault_budget(k, p)
    host = (*tables[2:], pt.pmd_state, pt.pmd_flags, pt.flat_flags(), pt.flat_pfn(),
            k.mem.flags, fault_context(k, p, sc.bufs, min(npfns, most)), sc.bufs.fidx, sc.out,
            lim, no_pool())
    sc.hits_only = host[4:10] + (_NO_FAULTS,) + host[11:]
    return host


def _hits(k: SimKernel, s: Stream, stop: int, args: tuple, host: tuple, faults: bool) -> int:
    """`guest_hits` over accesses [s.pos, stop) with `host`; applies what its faults did
    (`faults`: `host` has room for some) and counts the hits; returns where it stopped."""
    i = s.pos
    j, fast = guest_hits(s.pages, s.writes, s.t_ns, i, stop, *args, host)
    if fast:
        s.vm.stat["fast_page_faults"] += int(fast)
    s.hits += j - i - (_apply_host(k, s, host) if faults else 0)
    s.pos = j
    return j


def _apply_host(k: SimKernel, s: Stream, host: tuple) -> int:
    """Apply what the compiled faults did to Python objects; returns how many there were."""
    kvm = s.vm
    out = host[11]
    nf = int(out[O_FAULTS])
    if out[O_USED]:
        kvm.process.mm.use()
    apply_faults(k, kvm.process, host[9], None, host[12])
    if nf:
        kvm.stat["gup_pages"] += nf
        kvm.stat["faults"] += nf
        s.faults += nf
        if s.record_faults:
            s.fault_index.frombytes(host[10][:nf].tobytes())
    return nf


def run_guest(k: SimKernel, s: Stream, stop: int,
              last_ms: npt.NDArray[np.uint32] | None) -> npt.NDArray[np.uint32] | None:
    """Apply accesses [s.pos, stop) of guest stream `s`; the clock ends at the last one's time.

    `last_ms` is indexed by gfn and grown as needed; the (possibly new) array
    is returned.

    Raises:
        ValueError: an access in no memslot (an MMIO exit), as `vcpu_access`.
    """
    kvm, vcpu = s.vm, s.vm.vcpus[s.vcpu]
    entries = vcpu.tlb.entries
    sc = s.scratch.get("guest")
    if sc is None or sc.entries != entries:
        sc = s.scratch["guest"] = _Scratch(entries)
    keys, prv, nxt, lst = sc.keys, sc.prv, sc.nxt, sc.lst
    i = s.pos
    while i < stop:
        as_id = vcpu.as_id
        tables = _slot_tables(kvm, kvm.memslots.by_as[as_id], sc)
        base, end = tables[:2]
        if kvm.memslots.find_gfn(as_id, int(s.pages[i])) is not None:
            kvm.mmu.ensure(as_id, kvm.memslots.gfn_limit(as_id))
        sptes = kvm.mmu.sptes[as_id]
        where = sc.where = _grow(sc.where, len(sptes))
        if last_ms is not None and len(last_ms) < len(sptes):
            last_ms = _grow(last_ms, len(sptes))
        truth = last_ms if last_ms is not None else _EMPTY_U32
        as_bits = np.int64(as_id << _AS_SHIFT)
        if vcpu.tlb.keys is not sc.stored or as_bits != sc.as_bits:
            if sc.stored is not None:  # the index holds the last slice's translations
                tlb_forget(keys, nxt, lst, where, sc.as_bits)
            tlb_load(vcpu.tlb.keys, keys, prv, nxt, lst, where, as_bits)
            sc.as_bits = as_bits
        args = (base, end, sptes, kvm.ad_bits, as_bits, (keys, prv, nxt, lst, where, entries),
                truth, PREFETCH)
        # hits first, with no fault context: a slice of an engine quantum often holds a
        # few accesses and no fault, and building the context cost more than they did;
        # they change nothing the context is built from (the host's pages and lists)
        j = i
        if sc.hits_only is not None:
            j = _hits(k, s, stop, args, (*tables[2:], *sc.hits_only), False)
        if j < stop:
            j = _hits(k, s, stop, args, _host_of(k, kvm, tables, sc, stop - j), True)
        vcpu.tlb.keys = sc.stored = tlb_store(keys, nxt, lst)
        if j == stop:
            break
        set_clock(k, int(s.t_ns[j]))
        g = int(s.pages[j])
        vcpu_access(kvm, vcpu, g << PAGE_SHIFT, PAGE_SIZE, bool(s.writes[j]))
        s.faults += 1
        if s.record_faults:
            s.fault_index.append(j)
        if last_ms is not None and g < len(last_ms):
            last_ms[g] = access_ms(s.t_ns[j])
        i = s.pos = j + 1
    if stop > 0:
        set_clock(k, int(s.t_ns[stop - 1]))
    return last_ms
