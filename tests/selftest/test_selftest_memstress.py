"""memstress on the simulated KVM: regions, backing sources, iterations, completion tracking."""

from __future__ import annotations

import pytest

from mglru import SimKernel
from mglru.kvm.spte import SPTE_ACCESSED, SPTE_DIRTY, SPTE_HUGE, SPTE_PRESENT
from mglru.tools.lru_gen import read_memcg_stats
from mglru.tools.memstress import (
    BACKING_SRC_TYPES,
    GUEST_MODES,
    SUPPORTED_BACKING_SRCS,
    MemstressError,
    UnknownBackingSrc,
    UnsupportedBackingSrc,
    VcpuThreads,
    addr_gpa2hva,
    guest_mode_string,
    memstress_create_vm,
    memstress_set_write_percent,
    parse_backing_src_type,
)

MIB = 1 << 20


def _create(nr_vcpus: int = 2, nbytes: int = 4 * MIB, **kw):  # noqa: ANN003, ANN202
    k = SimKernel("seed-v4")
    p = k.spawn()
    lines: list[str] = []
    args = memstress_create_vm(k, p, mode=9, nr_vcpus=nr_vcpus, vcpu_memory_bytes=nbytes,
                               log=lines.append, **kw)
    return k, p, args, lines


def test_partitioned_regions_and_pr_info_lines() -> None:
    """Each vCPU gets its own consecutive region; the library prints the C lines."""
    _, _, args, lines = _create(3, 4 * MIB)
    assert [(v.vcpu_idx, v.gpa, v.pages, v.page_size) for v in args.vcpu_args] == [
        (0, 0, 1024, 4096), (1, 4 * MIB, 1024, 4096), (2, 8 * MIB, 1024, 4096)]
    assert lines == ["Testing guest mode: PA-bits:ANY, VA-bits:48,  4K pages",
                     "guest physical test memory: [0x0, 0xc00000)"]


def test_overlap_shares_all_memory() -> None:
    """partition=False (-o): every vCPU sweeps the whole test memory."""
    _, _, args, _ = _create(3, 4 * MIB, partition=False)
    assert {(v.gpa, v.pages) for v in args.vcpu_args} == {(0, 3 * 1024)}


def test_slots_split_memory_and_translate() -> None:
    """The memory is split into memslots; gpa -> hva uses the slots the library created."""
    import numpy as np

    _, p, args, _ = _create(2, 4 * MIB, slots=4)
    assert len(args.memslots) == 4 and len(args.vm.memslots.by_as[0]) == 4
    gpas = np.array([0, 2 * MIB + 8, 8 * MIB - 4096], np.int64)
    expect = [args.vm.gpa_to_hva(int(g)) for g in gpas]
    assert addr_gpa2hva(args, gpas).tolist() == expect
    with pytest.raises(MemstressError, match="No vm physical memory"):
        addr_gpa2hva(args, np.array([8 * MIB], np.int64))


def test_iteration_populates_every_page_with_one_call_per_vcpu(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An iteration at 0 % or 100 % writes is one vectorised vcpu_access per vCPU region."""
    _, _, args, _ = _create(2, 4 * MIB)
    calls: list[tuple[int, int, int, bool]] = []
    real = args.vm.vcpu_access

    def spy(vcpu, gpa, nbytes, write=False):  # noqa: ANN001, ANN202
        calls.append((vcpu, gpa, nbytes, write))
        return real(vcpu, gpa, nbytes, write)

    monkeypatch.setattr(args.vm, "vcpu_access", spy)
    threads = VcpuThreads(args)
    memstress_set_write_percent(args, 100)
    assert threads.run_iteration(threads.guest_code) == 1
    assert calls == [(0, 0, 4 * MIB, True), (1, 4 * MIB, 4 * MIB, True)]
    sptes = args.vm.mmu.sptes[0][: 2048]
    assert (sptes & (SPTE_PRESENT | SPTE_ACCESSED | SPTE_DIRTY) ==
            SPTE_PRESENT | SPTE_ACCESSED | SPTE_DIRTY).all()
    memstress_set_write_percent(args, 0)
    threads.run_iteration(threads.guest_code)
    assert calls[2:] == [(0, 0, 4 * MIB, False), (1, 4 * MIB, 4 * MIB, False)]


def test_mixed_write_percent_writes_about_that_share() -> None:
    """A write percentage between 0 and 100 draws each page's access kind (seeded)."""
    _, _, args, _ = _create(1, 4 * MIB, seed=7)
    memstress_set_write_percent(args, 0)
    threads = VcpuThreads(args)
    threads.run_iteration(threads.guest_code)  # read faults map the zero page
    memstress_set_write_percent(args, 30)
    threads.run_iteration(threads.guest_code)
    dirty = int(((args.vm.mmu.sptes[0][:1024] & SPTE_DIRTY) != 0).sum())
    assert 250 < dirty < 370  # ~30 % of 1024
    with pytest.raises(MemstressError):
        memstress_set_write_percent(args, 101)


def test_completion_tracking_per_iteration() -> None:
    """Each vCPU records the iteration it completed and when (monotonic)."""
    _, _, args, _ = _create(3, 1 * MIB)
    threads = VcpuThreads(args)
    seen: list[tuple[int, list[int]]] = []

    def work(va):  # noqa: ANN001, ANN202
        seen.append((va.vcpu_idx, list(threads.last_completed_iteration)))

    assert threads.all_vcpus_done(0)
    threads.run_iteration(work)
    # vCPU i starts iteration 1 when vCPUs < i have completed it
    assert seen == [(0, [0, 0, 0]), (1, [1, 0, 0]), (2, [1, 1, 0])]
    assert threads.all_vcpus_done(1) and not threads.all_vcpus_done(2)
    t = threads.last_completed_ns
    assert t[0] <= t[1] <= t[2]


def test_thp_backing_maps_2m_sptes_and_host_thps() -> None:
    """anonymous_thp: guest memory in 2 MiB host folios, mapped by 2 MiB SPTEs."""
    k, _, args, _ = _create(1, 4 * MIB, backing_src="anonymous_thp")
    threads = VcpuThreads(args)
    threads.run_iteration(threads.guest_code)
    sptes = args.vm.mmu.sptes[0][:1024]
    assert (sptes[::512] & SPTE_HUGE).all() and args.vm.stat["faults"] == 2
    assert read_memcg_stats(k, "/").nr_pages() == 1024  # two THPs, counted in base pages


def test_backing_src_types() -> None:
    """The C library's aliases are known; only anonymous and THP are modelled."""
    assert SUPPORTED_BACKING_SRCS == ("anonymous", "anonymous_thp")
    assert {"anonymous_hugetlb", "anonymous_hugetlb_1gb", "shmem", "shared_hugetlb",
            "shared_hmem"} <= set(BACKING_SRC_TYPES)
    assert parse_backing_src_type("anonymous_thp").thp
    with pytest.raises(UnsupportedBackingSrc, match="shmem is not supported.*supported: "
                                                    "anonymous, anonymous_thp"):
        parse_backing_src_type("shmem")
    with pytest.raises(UnknownBackingSrc, match="Unknown backing src type: bogus"):
        parse_backing_src_type("bogus")


def test_guest_modes_and_size_checks() -> None:
    """Mode strings as vm_guest_mode_string(); unsupported modes and bad sizes are refused."""
    assert guest_mode_string(9) == "PA-bits:ANY, VA-bits:48,  4K pages"
    assert guest_mode_string(2) == "PA-bits:52,  VA-bits:48, 64K pages"
    assert len(GUEST_MODES) == 16
    k = SimKernel("seed-v4")
    p = k.spawn()
    with pytest.raises(MemstressError, match=r"Guest mode ID 6 \(PA-bits:40,  VA-bits:48,  4K "
                                             r"pages\) not supported."):
        memstress_create_vm(k, p, mode=6, nr_vcpus=1, vcpu_memory_bytes=MIB)  # x86 host
    with pytest.raises(MemstressError, match="Guest mode ID 16 too big"):
        memstress_create_vm(k, p, mode=16, nr_vcpus=1, vcpu_memory_bytes=MIB)
    with pytest.raises(MemstressError, match="not host page size aligned"):
        memstress_create_vm(k, p, mode=9, nr_vcpus=1, vcpu_memory_bytes=MIB + 1)
    with pytest.raises(MemstressError, match="evenly divided into 3 slots"):
        memstress_create_vm(k, p, mode=9, nr_vcpus=1, vcpu_memory_bytes=MIB, slots=3)
    with pytest.raises(MemstressError, match="between 1 and 512"):
        memstress_create_vm(k, p, mode=9, nr_vcpus=0, vcpu_memory_bytes=MIB)
    args = memstress_create_vm(k, p, mode=6, nr_vcpus=1, vcpu_memory_bytes=MIB, arch="arm64")
    assert args.vm.mmu.name == "arm64"


@pytest.mark.parametrize("slots", [1, 2])
def test_memslots_live_in_address_space_0_only(slots: int) -> None:
    """memstress maps test memory into address space 0 only (lib/memstress.c), even on
    x86 where the VM has an SMM address space, so each aging notifier call covers one
    range, not two."""
    k, _, args, _ = _create(2, 4 * MIB, slots=slots)
    vm = args.vm
    assert vm.memslots.nr_address_spaces == 2  # x86 with SMM built in
    assert len(vm.memslots.by_as[0]) == slots
    assert vm.memslots.by_as[1] == []
    # an aging call over the test memory finds exactly one range per memslot
    ranges = list(vm.memslots.ranges(vm.process.mm.vmas[-1].start, vm.process.mm.vmas[-1].end))
    assert len(ranges) == 1
