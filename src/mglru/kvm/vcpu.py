"""vCPUs: guest accesses, the guest TLB, and faults through the host.

A guest access to gpa range [gpa, gpa+nbytes) by one vCPU, vectorised over
the pages:

1. pages without a usable SPTE (not present, or a write to a read-only one)
   take a KVM page fault: GUP through the host (`mm.fault.get_user_pages`:
   the host PTE becomes present and young *now*, and only now) and an SPTE is
   installed, accessed: a 2 MiB leaf when the host maps a THP there and the
   memslot keeps hva and gpa 2 MiB-congruent and the whole block inside it,
   else 4 KiB;
2. pages whose translation is in the vCPU's TLB use it: nothing is set
   (a stale entry suppresses the accessed bit, a false "idle");
3. the others are walked: the hardware sets the SPTE accessed bit (A/D bits,
   arm64 HAFDBS) or, without it, a fast page fault restores the access-tracked
   SPTE (counted in `Kvm.stat["fast_page_faults"]`); the translation is
   cached.

The guest TLB is a fully associative LRU of `tlb_entries` translations per
vCPU (default 1536, a Skylake-class STLB); a 2 MiB leaf uses one entry.
`kvm_flush_remote_tlbs` empties every vCPU's TLB. Guest page tables are not
modelled (the guest addresses its memory directly, as memstress does), and a
write through a cached clean translation does not set the dirty bit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.kvm.spte import (
    HPAGE_GFNS,
    SPTE_ACCESSED,
    SPTE_DIRTY,
    SPTE_HUGE,
    SPTE_PRESENT,
    SPTE_WRITABLE,
)
from mglru.mm.page import PAGE_SHIFT, PMD_SIZE
from mglru.paths.fault import get_user_pages
from mglru.paths.gup import get_user_page

if TYPE_CHECKING:
    from mglru.kvm.kvm_main import Kvm
    from mglru.kvm.memslot import Memslot

__all__ = ["Vcpu", "GuestTlb", "vcpu_access"]

_AS_SHIFT = 48
_CHUNK = 1 << 18


class GuestTlb:
    """One vCPU's TLB: an LRU of translation keys (as_id << 48 | head gfn)."""

    def __init__(self, entries: int) -> None:
        if entries < 0:
            raise ValueError(f"tlb_entries must be >= 0, got {entries}")
        self.entries = entries
        self.keys = np.empty(0, np.int64)  # oldest first

    def __len__(self) -> int:
        return len(self.keys)

    def lookup(self, keys: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Which keys hit if used in order, the LRU evicting as it goes (no state change).

        Only keys cached at the start can hit (repeats of a key already used in this
        sequence hit too). A cached entry survives until enough misses have pushed it
        out: misses first fill free entries, then evict the least recently used entry;
        entries hit earlier in the sequence became most recent and are evicted last.
        """
        n = len(keys)
        hit = np.zeros(n, bool)
        if not n or not self.entries:
            return hit
        uniq, first = np.unique(keys, return_index=True)
        repeat = np.ones(n, bool)
        repeat[first] = False
        hit[repeat] = True  # used earlier in this sequence: just cached
        if not len(self.keys):
            return hit
        cached = np.isin(uniq, self.keys)
        cand = np.sort(first[cached])  # first uses of cached keys, in order
        # each candidate's rank (0 = least recent); TLB keys are unique
        sorter = np.argsort(self.keys)
        ranks = sorter[np.searchsorted(self.keys, keys[cand], sorter=sorter)].tolist()
        free = self.entries - len(self.keys)
        evict_ptr = 0  # next cached entry (by rank) to evict
        refreshed = set()
        evicted = 0
        hits_before = 0
        order = self.keys
        firsts = np.sort(first)
        pos_in_firsts = np.searchsorted(firsts, cand)
        for i, pos, r in zip(cand.tolist(), pos_in_firsts.tolist(), ranks, strict=True):
            misses = pos - hits_before  # distinct keys used before i that missed
            need = max(0, misses - free)
            while evicted < need and evict_ptr < len(order):
                if evict_ptr not in refreshed:
                    evicted += 1
                evict_ptr += 1
            if r >= evict_ptr or r in refreshed:
                hit[i] = True
                refreshed.add(r)
                hits_before += 1
        return hit

    def hit_one(self, key: int) -> bool:
        """`lookup` of one key: whether it is cached."""
        return bool(self.entries) and bool((self.keys == key).any())

    def fill_one(self, key: int) -> None:
        """`fill` with one key: it becomes the most recently used entry."""
        keys = self.keys
        if not self.entries or (len(keys) and keys[-1] == key):
            return
        keys = keys[keys != key]
        if len(keys) >= self.entries:
            keys = keys[len(keys) - self.entries + 1:]
        self.keys = np.append(keys, np.int64(key))

    def fill(self, keys: npt.NDArray[np.int64]) -> None:
        """Use `keys` in order: each becomes the most recently used entry."""
        if not self.entries or not len(keys):
            return
        if len(keys) > 1:
            keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        seq = np.concatenate((self.keys, keys[-self.entries:]))[::-1]
        _, first = np.unique(seq, return_index=True)
        keep = np.sort(first)[: self.entries]
        self.keys = seq[keep][::-1].copy()

    def flush(self) -> None:
        """Drop every translation."""
        self.keys = np.empty(0, np.int64)


class Vcpu:
    """A vCPU: an id, the address space it runs in (1 = SMM on x86) and its TLB."""

    def __init__(self, kvm: Kvm, vcpu_id: int, tlb_entries: int) -> None:
        self.kvm = kvm
        self.id = vcpu_id
        self.as_id = 0
        self.tlb = GuestTlb(tlb_entries)

    def __repr__(self) -> str:
        return f"Vcpu({self.id}, as_id={self.as_id})"

    def access(self, gpa: int, nbytes: int, write: bool = False) -> None:
        """See `vcpu_access`."""
        vcpu_access(self.kvm, self, gpa, nbytes, write)


def vcpu_access(kvm: Kvm, vcpu: Vcpu, gpa: int, nbytes: int, write: bool = False) -> None:
    """The guest on `vcpu` touches [gpa, gpa+nbytes). See the module docstring.

    Raises:
        ValueError: part of the range is in no memslot (an MMIO exit).
    """
    if nbytes <= 0:
        return
    g, g_end = gpa >> PAGE_SHIFT, (gpa + nbytes + (1 << PAGE_SHIFT) - 1) >> PAGE_SHIFT
    if g_end == g + 1:  # one page, as guest streams fault: the same steps on Python ints
        slot = kvm.memslots.find_gfn(vcpu.as_id, g)
        if slot is not None:
            _access_one(kvm, vcpu, slot, g, write)
            return
    while g < g_end:
        slot = kvm.memslots.find_gfn(vcpu.as_id, g)
        if slot is None:
            raise ValueError(f"gpa {g << PAGE_SHIFT:#x} is in no memslot of address space "
                             f"{vcpu.as_id} (MMIO exit)")
        hi = min(g_end, slot.gfn_end)
        for lo in range(g, hi, _CHUNK):
            _access_slot(kvm, vcpu, slot, lo, min(hi, lo + _CHUNK), write)
        g = hi


def _heads(arr: npt.NDArray[np.uint8], g0: int, g1: int) -> npt.NDArray[np.int64]:
    gfns = np.arange(g0, g1, dtype=np.int64)
    return np.where(arr[g0:g1] & SPTE_HUGE, gfns & ~np.int64(HPAGE_GFNS - 1), gfns)


def _access_slot(kvm: Kvm, vcpu: Vcpu, slot: Memslot, g0: int, g1: int, write: bool) -> None:
    kvm.mmu.ensure(slot.as_id, kvm.memslots.gfn_limit(slot.as_id))
    arr = kvm.mmu.sptes[slot.as_id]
    heads = _heads(arr, g0, g1)
    st = arr[heads]
    need = (st & SPTE_PRESENT) == 0
    if write:
        need |= (st & SPTE_WRITABLE) == 0
    if need.any():
        _kvm_page_fault(kvm, slot, np.arange(g0, g1, dtype=np.int64)[need], write)
        heads = _heads(arr, g0, g1)
    keys = heads | np.int64(slot.as_id << _AS_SHIFT)
    walked = ~need & ~vcpu.tlb.lookup(keys)
    if walked.any():
        mh = np.unique(heads[walked])
        tracked = (arr[mh] & SPTE_ACCESSED) == 0
        if not kvm.ad_bits:
            kvm.stat["fast_page_faults"] += int(np.count_nonzero(tracked))
        arr[mh] |= np.uint8(SPTE_ACCESSED | (SPTE_DIRTY if write else 0))
    vcpu.tlb.fill(keys)


def _access_one(kvm: Kvm, vcpu: Vcpu, slot: Memslot, g: int, write: bool) -> None:
    """`_access_slot` of the one gfn `g`."""
    as_id = slot.as_id
    kvm.mmu.ensure(as_id, kvm.memslots.gfn_limit(as_id))
    arr = kvm.mmu.sptes[as_id]
    head = g & ~(HPAGE_GFNS - 1) if arr[g] & SPTE_HUGE else g
    st = int(arr[head])
    if not st & SPTE_PRESENT or (write and not st & SPTE_WRITABLE):
        _kvm_page_fault_one(kvm, slot, g, write)
        head = g & ~(HPAGE_GFNS - 1) if arr[g] & SPTE_HUGE else g
    elif not vcpu.tlb.hit_one(head | (as_id << _AS_SHIFT)):  # walked
        if not kvm.ad_bits:
            kvm.stat["fast_page_faults"] += int(not st & SPTE_ACCESSED)
        arr[head] = st | SPTE_ACCESSED | (SPTE_DIRTY if write else 0)
    vcpu.tlb.fill_one(head | (as_id << _AS_SHIFT))


def _kvm_page_fault_one(kvm: Kvm, slot: Memslot, g: int, write: bool) -> None:
    """`_kvm_page_fault` of the one gfn `g`."""
    arr = kvm.mmu.sptes[slot.as_id]
    if g < len(arr) and arr[g] & (SPTE_PRESENT | SPTE_HUGE):  # see _kvm_page_fault
        kvm.kvm_unmap_gfns(slot.as_id, np.array([g], np.int64))
    _pfn, host_huge, writable = get_user_page(kvm.k, kvm.process, slot.gfn_to_hva(g), write)
    kvm.stat["gup_pages"] += 1
    bits = SPTE_PRESENT | SPTE_ACCESSED | (SPTE_DIRTY if write else 0)
    b = g & ~(HPAGE_GFNS - 1)
    if (host_huge and (slot.userspace_addr - (slot.base_gfn << PAGE_SHIFT)) % PMD_SIZE == 0
            and b >= slot.base_gfn and b + HPAGE_GFNS <= slot.gfn_end):
        if (arr[b: b + HPAGE_GFNS] & SPTE_PRESENT).any():
            kvm.kvm_unmap_gfns(slot.as_id, np.arange(b, b + HPAGE_GFNS, dtype=np.int64))
        arr[b: b + HPAGE_GFNS] = SPTE_HUGE
        arr[b] = SPTE_HUGE | bits | (SPTE_WRITABLE if writable else 0)
        kvm.stat["faults"] += 1
        return
    arr[g] = bits | (SPTE_WRITABLE if writable else 0)
    kvm.stat["faults"] += 1


def _kvm_page_fault(kvm: Kvm, slot: Memslot, gfns: npt.NDArray[np.int64], write: bool) -> None:
    """GUP and install SPTEs for `gfns` (sorted, one memslot)."""
    arr = kvm.mmu.sptes[slot.as_id]
    # a write to a read-only translation: the host's COW / zero-page
    # replacement invalidates it (mmu notifier) before the new one is mapped
    kvm.kvm_unmap_gfns(slot.as_id, gfns)
    splits = np.flatnonzero(np.diff(gfns) != 1) + 1
    huge_ok = (slot.userspace_addr - (slot.base_gfn << PAGE_SHIFT)) % PMD_SIZE == 0
    for run in np.split(gfns, splits):
        hva = slot.gfn_to_hva(int(run[0]))
        _pfn, host_huge, writable = get_user_pages(kvm.k, kvm.process, hva, len(run) << PAGE_SHIFT,
                                                   write)
        kvm.stat["gup_pages"] += len(run)
        bits = SPTE_PRESENT | SPTE_ACCESSED | (SPTE_DIRTY if write else 0)
        blocks = run & ~np.int64(HPAGE_GFNS - 1)
        inside = (blocks >= slot.base_gfn) & (blocks + HPAGE_GFNS <= slot.gfn_end)
        huge = host_huge & huge_ok & inside
        small = run[~huge]
        arr[small] = np.uint8(bits) | np.where(writable[~huge], SPTE_WRITABLE, 0).astype(np.uint8)
        if huge.any():
            hb, first = np.unique(blocks[huge], return_index=True)
            hw = writable[huge][first]
            for b, w in zip(hb.tolist(), hw.tolist(), strict=True):
                if (arr[b: b + HPAGE_GFNS] & SPTE_PRESENT).any():
                    kvm.kvm_unmap_gfns(slot.as_id, np.arange(b, b + HPAGE_GFNS, dtype=np.int64))
                arr[b: b + HPAGE_GFNS] = SPTE_HUGE
                arr[b] = SPTE_HUGE | bits | (SPTE_WRITABLE if w else 0)
            kvm.stat["faults"] += len(hb)
        kvm.stat["faults"] += len(small)
