"""The cover letter's claim, eviction half (seed 2/7 changelog, spec §8.3).

Without secondary-MMU aging (cap 0x8 off, or v6.10), pages the guest keeps using
drift to the oldest generation; only eviction consults the secondary MMU, through
look-around / rmap (clear_young or clear_flush_young), and rescues them. With
secondary aging (v6.14 here), aging already tells used from idle pages.
"""

from __future__ import annotations

import numpy as np
import pytest
from kvm_helpers import ENABLED, LRU_GEN, MIB, make_vm

from mglru.mm.page import PTE_PRESENT, PTE_SWAP

N = MIB >> 12


def _drift(s, rounds: int = 3) -> None:
    for _ in range(rounds):
        s.vm.vcpu_access(0, 0, MIB // 2)      # the guest uses the first half only
        s.age()


def _evict_oldest(s) -> None:
    lv = s.lv
    s.k.write(LRU_GEN, f"- {lv.memcg.id} 0 {lv.min_seq[0]} 200")


def _host_ptes(s) -> np.ndarray:
    hva = s.vm.gpa_to_hva(0)
    vma = s.p.mm.find_vma(hva)
    return s.p.mm.pt.flat_flags()[vma.pte_index(np.arange(hva >> 12, (hva >> 12) + N))]


@pytest.mark.parametrize("preset,cap_off", [("seed-v4", True), ("v6.10", False)])
def test_without_secondary_aging_only_eviction_tells_used_from_idle(preset, cap_off) -> None:
    """All pages drift to the oldest gen; the first eviction pass rescues all of them
    (their SPTEs were young since they were faulted in) and clears the secondary
    accessed bits; after another drift, eviction keeps the guest's half and swaps out
    the idle half."""
    s = make_vm(preset, mem=MIB, kernel_kw={"swap_pages": 1 << 16})
    if cap_off:
        s.k.write(ENABLED, "0x7")
    s.vm.vcpu_access(0, 0, MIB, write=True)
    s.age()
    _drift(s)
    assert s.lv.nr_pages_of_seq(s.lv.min_seq[0], 0) == N  # aging could not tell them apart
    _evict_oldest(s)
    assert s.k.stats["pswpout"] == 0                      # rmap saw every SPTE young
    assert (_host_ptes(s) & PTE_PRESENT).all()
    _drift(s, rounds=4)
    assert s.lv.nr_pages_of_seq(s.lv.min_seq[0], 0) == N
    _evict_oldest(s)
    flags = _host_ptes(s)
    assert (flags[: N // 2] & PTE_PRESENT).all(), "a page the guest used was evicted"
    assert (flags[N // 2:] & PTE_SWAP).all(), "an idle page was kept"
    assert s.k.stats["pswpout"] == N // 2


def test_with_secondary_aging_the_idle_half_is_the_oldest() -> None:
    """v6.14 clears secondary accessed bits while aging: the idle half alone ends up in
    the oldest generation and is evicted on the first try."""
    s = make_vm("v6.14", mem=MIB, kernel_kw={"swap_pages": 1 << 16})
    s.vm.vcpu_access(0, 0, MIB, write=True)
    s.age()
    _drift(s)
    assert s.lv.nr_pages_of_seq(s.lv.min_seq[0], 0) == N // 2
    _evict_oldest(s)
    flags = _host_ptes(s)
    assert (flags[: N // 2] & PTE_PRESENT).all()
    assert (flags[N // 2:] & PTE_SWAP).all()
    assert s.k.stats["pswpout"] == N // 2
