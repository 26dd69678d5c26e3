"""Guest accesses: faults through the host, SPTE installation, the guest TLB; mglru.bench.vm."""

from __future__ import annotations

import numpy as np
import pytest
from kvm_helpers import MIB, make_vm

from mglru.bench.vm import populate_vm
from mglru.kvm.spte import SPTE_ACCESSED, SPTE_DIRTY, SPTE_HUGE, SPTE_PRESENT, SPTE_WRITABLE
from mglru.kvm.vcpu import GuestTlb
from mglru.mm.page import PTE_YOUNG

PAGE = 4096


def host_young(s, gpa: int, n: int) -> np.ndarray:
    """Host PTE accessed bits of the pages backing [gpa, gpa + n pages)."""
    vma = s.p.mm.vmas[0]
    hva = s.vm.gpa_to_hva(gpa)
    vpns = np.arange(hva >> 12, (hva >> 12) + n)
    return (s.p.mm.pt.flat_flags()[vma.pte_index(vpns)] & PTE_YOUNG) != 0


def test_guest_fault_makes_host_pte_young_only_then() -> None:
    """A KVM fault goes through the host (GUP): the host PTE is present and young at that
    moment; later guest accesses set only the SPTE accessed bit."""
    s = make_vm(mem=MIB)
    s.vm.vcpu_access(0, 0, 8 * PAGE, write=True)
    assert host_young(s, 0, 8).all() and not host_young(s, 8 * PAGE, 8).any()
    assert s.gens()[2] == 8  # faulted in: max_seq - 1 (spec §2.5)
    s.age()
    assert not host_young(s, 0, 8).any()
    s.vm.vcpu_access(0, 0, 8 * PAGE)
    assert not host_young(s, 0, 8).any()
    assert (s.vm.mmu.sptes[0][:8] & SPTE_ACCESSED).all()
    assert s.vm.stat["gup_pages"] == 8 and s.vm.stat["faults"] == 8


def test_spte_bits_of_reads_and_writes() -> None:
    """A read of untouched anon memory maps the zero page read-only; a write then breaks it
    (the old translation is zapped and flushed) and maps a writable, dirty SPTE."""
    s = make_vm(mem=MIB, tlb_entries=16)
    s.vm.vcpu_access(0, 0, PAGE)
    arr = s.vm.mmu.sptes[0]
    assert arr[0] == SPTE_PRESENT | SPTE_ACCESSED
    assert s.lv.total_pages() == 0  # the zero page is no LRU folio
    s.vm.vcpu_access(0, 0, PAGE, write=True)
    assert arr[0] == SPTE_PRESENT | SPTE_ACCESSED | SPTE_WRITABLE | SPTE_DIRTY
    assert s.vm.stat["zapped"] == 1 and s.vm.stat["remote_tlb_flush"] == 1
    assert s.lv.total_pages() == 1


def test_huge_sptes_need_host_thp_and_congruent_memslot() -> None:
    """2 MiB SPTEs map host THPs when the memslot keeps hva and gpa 2 MiB-congruent."""
    s = make_vm(mem=4 * MIB, thp=True)
    s.vm.vcpu_access(0, PAGE, 1, write=True)
    arr = s.vm.mmu.sptes[0]
    assert (arr[:512] & SPTE_HUGE).all() and arr[0] & SPTE_PRESENT and not arr[1] & SPTE_PRESENT
    assert s.vm.stat["faults"] == 1 and s.lv.total_pages() == 512
    # the same host THP behind a gpa offset by 4 KiB: 4 KiB SPTEs only
    hva = s.vm.gpa_to_hva(0)
    s.vm.set_user_memory_region(1, 0, 64 * MIB + PAGE, 2 * MIB, hva)
    s.vm.vcpu_access(0, 64 * MIB + PAGE, 2 * PAGE)
    g = (64 * MIB + PAGE) >> 12
    assert not (arr[g:g + 2] & SPTE_HUGE).any() and (arr[g:g + 2] & SPTE_PRESENT).all()


def test_smm_address_space_has_its_own_sptes() -> None:
    """x86 with SMM: a vCPU in SMM faults into address space 1, which aliases the memory."""
    s = make_vm(mem=MIB)
    assert s.vm.memslots.nr_address_spaces == 2
    s.vm.vcpus[0].as_id = 1
    s.vm.vcpu_access(0, 0, PAGE, write=True)
    assert s.vm.mmu.sptes[1][0] & SPTE_PRESENT and not s.vm.mmu.sptes[0][:1].any()
    assert make_vm(model="arm64").vm.memslots.nr_address_spaces == 1


def test_access_outside_memslots_is_an_mmio_exit() -> None:
    """A gpa in no memslot raises (the vCPU would exit to the VMM)."""
    s = make_vm(mem=MIB)
    with pytest.raises(ValueError, match="MMIO"):
        s.vm.vcpu_access(0, MIB, PAGE)


def test_guest_tlb_is_lru() -> None:
    """The guest TLB keeps the most recently used translations."""
    tlb = GuestTlb(3)
    tlb.fill(np.array([1, 2, 3, 4], np.int64))
    assert list(tlb.lookup(np.array([2, 3, 4]))) == [True, True, True]
    # used in order, a cyclic sweep larger than the TLB misses everywhere (LRU)
    assert list(tlb.lookup(np.array([1, 2, 3, 4]))) == [False, False, False, False]
    # a miss takes the least recently used entry: 4 survives one miss, 2 does not
    assert list(tlb.lookup(np.array([9, 4]))) == [False, True]
    assert list(tlb.lookup(np.array([9, 2]))) == [False, False]
    tlb.fill(np.array([2, 5], np.int64))
    assert sorted(tlb.keys.tolist()) == [2, 4, 5]
    tlb.flush()
    assert len(tlb) == 0 and GuestTlb(0).lookup(np.array([1])).tolist() == [False]


def test_create_vm_rejects_bad_arguments() -> None:
    """Unknown arches and a shadow MMU off x86 are refused."""
    s = make_vm()
    with pytest.raises(ValueError, match="arch must be one of"):
        s.k.create_vm(s.p, arch="sparc")
    with pytest.raises(ValueError, match="tdp_mmu=False"):
        s.k.create_vm(s.p, arch="arm64", tdp_mmu=False)


def test_populate_vm_for_the_benchmark() -> None:
    """populate_vm: a seed-v4 x86 TDP VM whose guest wrote all of its memory."""
    s = make_vm()
    s.k.mkdir("/sys/fs/cgroup/bench")
    memcg = s.k.memcg("/bench")
    vm = populate_vm(s.k, memcg, 4 * MIB)
    assert vm.mmu.name == "x86_tdp" and s.k.lruvec(memcg).total_pages() == 1024
    assert (vm.mmu.sptes[0][:1024] & SPTE_ACCESSED).all()
    s.k.write("/sys/kernel/debug/lru_gen", f"+ {memcg.id} 0 3 1 1")
    assert vm.log.totals("clear_young").calls == 1024
