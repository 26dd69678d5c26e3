"""The compiled aging walk's notifier work equals the same calls made one by one.

Aggregated mode (the walk reads SPTEs directly and reports counts) and exact
mode (one `mmu_notifier_*` call per PTE, in the order seed 2/7 and v6.12 make
them) must leave the same SPTEs and charge the same calls, ranges, visits,
atomics and locks. Each layout below steers the walk into another engine: the
one-loop path, the phased path (two subscribers; a memslot boundary inside a
PTE table), the per-PTE fallback (a 2 MiB SPTE under a 4 KiB host table) and
the THP path.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from kvm_helpers import LRU_GEN, MIB

from mglru import SimKernel
from mglru.kvm.spte import SPTE_ACCESSED, SPTE_HUGE, SPTE_PRESENT
from mglru.lru_gen.helpers import MM_LEAF_YOUNG
from mglru.mm.mmu_notifier import mmu_notifier_clear_young, mmu_notifier_test_young
from mglru.mm.page import PMD_LEAF, PMD_TABLE, PTE_PRESENT, PTE_SPECIAL, PTE_YOUNG

PAGE = 4096
FIELDS = ("calls", "slot_calls", "ranges", "young", "visited", "cleared", "atomics", "cmpxchg",
          "locks")


def build(preset: str, layout: str, seed: int):
    """A kernel whose VM(s) were populated, then had random host/SPTE accessed bits cleared."""
    k = SimKernel(preset, node_bytes=(1 << 30,), debug=True)
    k.mkdir("/sys/fs/cgroup/vm")
    p = k.spawn(memcg="/vm")
    vms = [k.create_vm(p, tlb_entries=0, ad_bits=layout != "no-ad")]
    if layout == "two-vms":
        vms.append(k.create_vm(p, tlb_entries=0))
    if layout == "split-slot":  # a memslot boundary in the middle of a PTE table
        hva = p.mmap(4 * MIB)
        vms[0].set_user_memory_region(0, 0, 0, 3 * MIB, hva)
        vms[0].set_user_memory_region(1, 0, 64 * MIB, MIB, hva + 3 * MIB)
        vms[0].vcpu_access(0, 0, 3 * MIB, write=True)
        vms[0].vcpu_access(0, 64 * MIB, MIB, write=True)
    else:
        for vm in vms:
            vm.add_memory(2 * MIB, thp=layout == "thp")
            vm.vcpu_access(0, 0, 2 * MIB, write=True)
    # before v6.14 a fault enters max_seq (lru_gen_add_folio()), where the walk's
    # promotion would not show: an aging that skips anon VMAs (swappiness 0) moves
    # max_seq on and leaves the guest's folios, PTEs and SPTEs as they are
    lv = k.lruvec("/vm")
    k.write(LRU_GEN, f"+ {lv.memcg.id} 0 {lv.max_seq} 0 1")
    if layout == "huge-under-4k":  # a 2 MiB SPTE whose host pages are 4 KiB PTEs
        arr = vms[0].mmu.sptes[0]
        arr[:512] = SPTE_HUGE
        arr[0] = SPTE_HUGE | SPTE_PRESENT | SPTE_ACCESSED
    rng = np.random.default_rng(seed)
    pt = p.mm.pt
    ff = pt.flat_flags()
    ff &= np.where(rng.random(len(ff)) < 0.5, ~np.uint8(PTE_YOUNG), np.uint8(0xFF)).astype(np.uint8)
    pt.pmd_flags[: pt.nr_rows] &= np.where(rng.random(pt.nr_rows) < 0.5, ~np.uint8(PTE_YOUNG),
                                           np.uint8(0xFF)).astype(np.uint8)
    for vm in vms:
        a = vm.mmu.sptes[0]
        old = (rng.random(len(a)) < 0.5) & ((a & SPTE_HUGE) == 0)
        a[old] &= ~np.uint8(SPTE_ACCESSED)
        vm.log.clear()
    return k, p, vms


def exact_calls(k: SimKernel, p, pte_mode: int) -> set[int]:
    """The walk's notifier calls one by one (every folio here passes get_pfn_folio).

    Returns the folios (head pfns) the walk must find young.
    """
    mm, pt = p.mm, p.mm.pt
    young: set[int] = set()
    for vma in sorted(mm.vmas, key=lambda v: v.start):
        for row in vma.rows.tolist():
            base = int(pt.pmd_addr[row])
            if pt.pmd_state[row] == PMD_LEAF:
                if mmu_notifier_clear_young(mm, base, base + (2 * MIB)) or (
                        pt.pmd_flags[row] & PTE_YOUNG):
                    young.add(int(pt.pmd_pfn[row]))
                continue
            if pt.pmd_state[row] != PMD_TABLE:
                continue
            for i in range(512):
                addr = base + i * PAGE
                f = int(pt.pte_flags[row, i])
                if not vma.start <= addr < vma.end or pt.pte_pfn[row, i] < 1024:
                    continue
                if (f & (PTE_PRESENT | PTE_SPECIAL)) != PTE_PRESENT:
                    continue
                if pte_mode == 1 and not f & PTE_YOUNG and not mmu_notifier_test_young(mm, addr):
                    continue
                sec = mmu_notifier_clear_young(mm, addr, addr + PAGE)
                if pte_mode == 1 or sec or f & PTE_YOUNG:
                    young.add(int(pt.pte_pfn[row, i]))
    return young


LAYOUTS = ["simple", "no-ad", "two-vms", "split-slot", "huge-under-4k", "thp"]
MODES = [("seed-v4", 1), ("v6.12", 2), ("v6.15", 2)]


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("preset,pte_mode", MODES)
def test_walk_equals_one_call_per_pte(preset: str, pte_mode: int, layout: str) -> None:
    """Same SPTEs and the same charged work, aggregated by the walk or call by call."""
    check_walk_equals_calls(preset, pte_mode, layout, seed=7)


@given(st.sampled_from(MODES), st.sampled_from(LAYOUTS), st.integers(0, 2**16))
def test_walk_equals_one_call_per_pte_any_state(mode, layout: str, seed: int) -> None:
    """The same, from random host and secondary accessed bits."""
    check_walk_equals_calls(mode[0], mode[1], layout, seed)


def check_walk_equals_calls(preset: str, pte_mode: int, layout: str, seed: int) -> None:
    """Age kernel A with the walk, replay kernel B call by call; compare."""
    ka, pa, vms_a = build(preset, layout, seed)
    kb, pb, vms_b = build(preset, layout, seed)
    ka.write(LRU_GEN, f"+ {ka.lruvec('/vm').memcg.id} 0 {ka.lruvec('/vm').max_seq} 1 1")
    young = exact_calls(kb, pb, pte_mode)
    # the same folios found young (moved, or marked PG_referenced on first sight)
    changed = (ka.mem.gen != kb.mem.gen) | (ka.mem.flags != kb.mem.flags)
    assert set(np.flatnonzero(changed).tolist()) == young
    assert ka.lruvec("/vm").mm_state.stats[0][MM_LEAF_YOUNG] == len(young)
    for va, vb in zip(vms_a, vms_b, strict=True):
        assert all(ev.source == "walk" for ev in va.log.events)
        for as_id in range(2):
            assert (va.mmu.sptes[as_id] == vb.mmu.sptes[as_id]).all()
        for notifier in ("test_young", "clear_young"):
            ta, tb = va.log.totals(notifier), vb.log.totals(notifier)
            for f in FIELDS:
                assert getattr(ta, f) == getattr(tb, f), (notifier, f)
        assert va.log.totals().calls > 0
