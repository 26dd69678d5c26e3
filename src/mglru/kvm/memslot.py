"""Memslots and the hva -> gfn conversion of the notifier path.

Kernel: include/linux/kvm_host.h: hva_to_gfn_memslot().

A memslot maps guest frames [base_gfn, base_gfn + npages) of one address
space onto host virtual memory from `userspace_addr`. A notifier range of
host virtual addresses [start, end) becomes, per overlapping memslot, the gfn
range [gfn_start, gfn_end) where the end is rounded *up*, so a page touched
by even one byte of the range is included (`hva_to_gfn_memslot(hva_end +
PAGE_SIZE - 1)`). x86 with SMM has two address spaces whose memslots usually
alias the same host memory (QEMU mirrors RAM into the SMM address space).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE

__all__ = ["Memslot", "KvmGfnRange", "Memslots", "hva_to_gfn_memslot"]


@dataclass(frozen=True, slots=True)
class Memslot:
    """struct kvm_memory_slot: {as_id, id, base_gfn, npages, userspace_addr}."""

    as_id: int
    id: int
    base_gfn: int
    npages: int
    userspace_addr: int

    @property
    def hva_end(self) -> int:
        """One past the last host virtual address of the slot."""
        return self.userspace_addr + self.npages * PAGE_SIZE

    @property
    def gfn_end(self) -> int:
        """One past the last guest frame of the slot."""
        return self.base_gfn + self.npages

    def gfn_to_hva(self, gfn: int) -> int:
        """__gfn_to_hva_memslot()."""
        return self.userspace_addr + ((gfn - self.base_gfn) << PAGE_SHIFT)


@dataclass(frozen=True, slots=True)
class KvmGfnRange:
    """struct kvm_gfn_range (include/linux/kvm_host.h): what an arch handler is given."""

    slot: Memslot
    start: int
    end: int
    lockless: bool


def hva_to_gfn_memslot(hva: int, slot: Memslot) -> int:
    """The gfn whose page holds `hva` in `slot` (hva may be one past the slot)."""
    return slot.base_gfn + ((hva - slot.userspace_addr) >> PAGE_SHIFT)


class Memslots:
    """The memslots of one VM, per address space (struct kvm_memslots[as_id])."""

    def __init__(self, nr_address_spaces: int) -> None:
        self.by_as: list[list[Memslot]] = [[] for _ in range(nr_address_spaces)]
        #: (slot, userspace_addr, hva_end, base_gfn) in the order `ranges` visits them
        self._flat: list[tuple[Memslot, int, int, int]] = []

    @property
    def nr_address_spaces(self) -> int:
        """kvm_arch_nr_memslot_as_ids()."""
        return len(self.by_as)

    def add(self, slot: Memslot) -> None:
        """KVM_SET_USER_MEMORY_REGION (create only).

        Raises:
            OSError: EINVAL for a bad address space or misalignment, EEXIST if
                the gfn range or slot id collides within the address space.
        """
        if not 0 <= slot.as_id < len(self.by_as):
            raise OSError(errno.EINVAL,
                          f"as_id must be in [0, {len(self.by_as)}), got {slot.as_id}")
        if slot.npages <= 0 or slot.userspace_addr % PAGE_SIZE:
            raise OSError(errno.EINVAL, f"bad memslot {slot}")
        for s in self.by_as[slot.as_id]:
            if s.id == slot.id or (s.base_gfn < slot.gfn_end and slot.base_gfn < s.gfn_end):
                raise OSError(errno.EEXIST, f"memslot {slot} overlaps {s}")
        self.by_as[slot.as_id].append(slot)
        self.by_as[slot.as_id].sort(key=lambda s: s.base_gfn)
        self._flat = [(s, s.userspace_addr, s.hva_end, s.base_gfn) for s in self.all()]

    def all(self) -> list[Memslot]:
        """Every memslot, address space by address space."""
        return [s for slots in self.by_as for s in slots]

    def ranges(self, start: int, end: int) -> list[tuple[Memslot, int, int]]:
        """(slot, gfn_start, gfn_end) for every slot intersecting hva [start, end).

        As virt/kvm/kvm_main.c: kvm_handle_hva_range() does with hva_to_gfn_memslot().

        Address spaces in order, then slots by gfn, as kvm_handle_hva_range
        visits them.
        """
        out = []
        if end <= start:
            return out
        for s, hva0, hva1, base in self._flat:  # hva_to_gfn_memslot() of both ends, inlined
            if hva0 >= end or hva1 <= start:
                continue
            out.append((s, base + ((max(start, hva0) - hva0) >> PAGE_SHIFT),
                        base + ((min(end, hva1) + PAGE_SIZE - 1 - hva0) >> PAGE_SHIFT)))
        return out

    def find_gfn(self, as_id: int, gfn: int) -> Memslot | None:
        """The slot holding `gfn` in an address space (gfn_to_memslot)."""
        for s in self.by_as[as_id]:
            if s.base_gfn <= gfn < s.gfn_end:
                return s
        return None

    def gfn_limit(self, as_id: int) -> int:
        """One past the highest gfn of any slot of the address space."""
        return max((s.gfn_end for s in self.by_as[as_id]), default=0)
