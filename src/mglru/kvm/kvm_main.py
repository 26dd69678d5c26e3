"""A VM: memslots, vCPUs, a secondary MMU and its MMU-notifier subscription. virt/kvm/kvm_main.c.

`Kvm` is what `virt/kvm/kvm_main.c` keeps per VM, and it is the notifier
subscription on its host process's mm: `test_young`, `clear_young` and
`clear_flush_young` run `kvm_handle_hva_range` (hva -> gfn per memslot, the
common lock when the walk is not lockless, the arch handler per range, a
remote TLB flush for clear_flush_young unless elided), and each call is
recorded as an `AgingEvent` in `Kvm.log`. The compiled aging walk reads the
SPTE arrays directly (`aging_segments`) and reports its counts per mm walk
(`account_aging`), which are charged with the same lock rules.

    vm = create_vm(k, p, arch="x86", nr_vcpus=2, mem_bytes=1 << 30)
    vm.vcpu_access(0, 0, 1 << 30, write=True)      # vCPU 0 populates all memory
    vm.log.totals("clear_young").locks             # after an aging pass

Future optimizations:
1. a gfn -> memslot index array if VMs with thousands of slots show up.
"""

from __future__ import annotations

import errno
from collections import Counter
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from mglru.kvm.accounting import (
    CLEAR_FLUSH_YOUNG,
    CLEAR_YOUNG,
    FAST_ONLY,
    TEST_YOUNG,
    AgingEvent,
    AgingLog,
)
from mglru.kvm.arm64 import Arm64
from mglru.kvm.generic import Generic
from mglru.kvm.memslot import KvmGfnRange, Memslot, Memslots
from mglru.kvm.mmu import SecondaryMmuBase
from mglru.kvm.vcpu import Vcpu, vcpu_access
from mglru.kvm.x86_shadow import X86Shadow
from mglru.kvm.x86_tdp import X86Tdp
from mglru.lru_gen._walk_kernel import (
    SEC_CLEAR_CALLS,
    SEC_CLEAR_RANGES,
    SEC_CLEAR_SLOT,
    SEC_CLEARED,
    SEC_CLEARED_WC,
    SEC_TEST_CALLS,
    SEC_TEST_RANGES,
    SEC_TEST_SLOT,
    SEC_TEST_VISITED,
    SEC_TEST_YOUNG,
    SEC_VISITED,
    SEC_YOUNG,
)
from mglru.mm.mmu_notifier import (
    BITMAP_PAGES,
    MMU_NOTIFIER_FAST_FAILED,
    MMU_NOTIFIER_FAST_YOUNG,
    mmu_notifier_register,
)
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE, PMD_SIZE
from mglru.presets import ARCHES

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.process import Process

__all__ = ["Kvm", "create_vm", "RaceHook"]

#: race_hook(kvm, as_id, head_gfn, attempt) -> None | "touch" | "zap"
RaceHook = Callable[["Kvm", int, int, int], "str | None"]


class Kvm:
    """One VM on a host process. Create with `create_vm`."""

    def __init__(self, k: SimKernel, process: Process, mmu_cls: type[SecondaryMmuBase], arch: str,
                 nr_vcpus: int, ad_bits: bool, tlb_entries: int, nr_address_spaces: int,
                 log_calls: bool = True) -> None:
        if nr_vcpus < 1:
            raise ValueError(f"nr_vcpus must be >= 1, got {nr_vcpus}")
        self.k = k
        self.process = process
        self.mm = process.mm
        self.arch = arch
        #: the hardware keeps secondary accessed bits (x86 EPT A/D, arm64 HAFDBS)
        self.ad_bits = ad_bits
        self.memslots = Memslots(nr_address_spaces)
        self.mmu: SecondaryMmuBase = mmu_cls(self, arch, nr_address_spaces)
        self.vcpus = [Vcpu(self, i, tlb_entries) for i in range(nr_vcpus)]
        #: every aging notifier call (and aging-walk aggregate), in order, or their sums
        self.log = AgingLog(per_call=log_calls)
        self._segments: tuple | None = None  # clear_young_segments(), while still valid
        self._call_locks: dict = {}  # (lock plan, ranges, visited) -> one call's locks
        #: faults, fast_page_faults, gup_pages, remote_tlb_flush, zapped
        self.stat: Counter = Counter()
        #: race injection for compare-exchanges (see mglru.kvm.mmu): called as
        #: hook(kvm, as_id, head_gfn, attempt) before each one, returns None
        #: (no race), "touch" (a concurrent writer changed the SPTE, still a
        #: present leaf) or "zap" (it was zapped concurrently)
        self.race_hook: RaceHook | None = None
        mmu_notifier_register(self.mm, self)

    def __repr__(self) -> str:
        return (f"Kvm({self.mmu.name}, arch={self.arch}, vcpus={len(self.vcpus)}, "
                f"slots={len(self.memslots.all())})")

    # -- memory ----------------------------------------------------------------------
    def set_user_memory_region(self, slot_id: int, as_id: int, gpa: int, size: int,
                               hva: int) -> Memslot:
        """KVM_SET_USER_MEMORY_REGION (create). Raises OSError like the ioctl."""
        if gpa % PAGE_SIZE or size % PAGE_SIZE:
            raise OSError(errno.EINVAL, f"gpa {gpa:#x} and size {size:#x} must be page aligned")
        slot = Memslot(as_id, slot_id, gpa >> PAGE_SHIFT, size >> PAGE_SHIFT, hva)
        self.memslots.add(slot)
        if len(self.mmu.sptes[as_id]):  # see SecondaryMmuBase.ensure
            self.mmu.ensure(as_id, self.memslots.gfn_limit(as_id))
        return slot

    def add_memory(self, nbytes: int, *, gpa: int | None = None, thp: bool = False,
                   as_ids: tuple[int, ...] | None = None) -> int:
        """mmap `nbytes` in the VMM process and map it at `gpa` in address spaces `as_ids`.

        By default every address space: the SMM address space of x86 aliases the
        same host memory, as QEMU does. The KVM selftests' memstress maps address
        space 0 only (tools/testing/selftests/kvm/lib/memstress.c). Returns the gpa
        (by default the first free 2 MiB-aligned one).
        """
        size = -(-nbytes // PAGE_SIZE) * PAGE_SIZE
        if gpa is None:
            gpa = -(-(self.memslots.gfn_limit(0) << PAGE_SHIFT) // PMD_SIZE) * PMD_SIZE
        hva = self.process.mmap(size, thp=thp)
        slot_id = len(self.memslots.by_as[0])
        for as_id in range(self.memslots.nr_address_spaces) if as_ids is None else as_ids:
            self.set_user_memory_region(slot_id, as_id, gpa, size, hva)
        return gpa

    def gpa_to_hva(self, gpa: int, as_id: int = 0) -> int:
        """The host virtual address backing a guest physical address."""
        slot = self.memslots.find_gfn(as_id, gpa >> PAGE_SHIFT)
        if slot is None:
            raise ValueError(f"gpa {gpa:#x} is in no memslot of address space {as_id}")
        return slot.gfn_to_hva(gpa >> PAGE_SHIFT) + gpa % PAGE_SIZE

    # -- the guest ---------------------------------------------------------------------
    def vcpu_access(self, vcpu: int | Vcpu, gpa: int, nbytes: int, write: bool = False) -> None:
        """The guest touches [gpa, gpa+nbytes) on a vCPU (see `mglru.kvm.vcpu`)."""
        v = self.vcpus[vcpu] if isinstance(vcpu, int) else vcpu
        vcpu_access(self, v, gpa, nbytes, write)

    def kvm_flush_remote_tlbs(self) -> None:
        """Empty every vCPU's TLB."""
        for v in self.vcpus:
            v.tlb.flush()
        self.stat["remote_tlb_flush"] += 1

    def kvm_unmap_gfns(self, as_id: int, gfns: npt.NDArray[np.int64]) -> int:
        """kvm_unmap_gfn_range() for a set of gfns: zap the leaves, flush if any went."""
        n = self.mmu.zap(as_id, gfns)
        if n:
            self.stat["zapped"] += n
            self.kvm_flush_remote_tlbs()
        return n

    def kvm_unmap_gfn_range(self, as_id: int, g0: int, g1: int) -> int:
        """Zap the leaves covering gfns [g0, g1) and flush remote TLBs if any went."""
        if g1 - g0 != 1:
            return self.kvm_unmap_gfns(as_id, np.arange(g0, g1, dtype=np.int64))
        n = self.mmu.zap_one(as_id, g0)  # one page (reclaim's unmap): on ints
        if n:
            self.stat["zapped"] += n
            self.kvm_flush_remote_tlbs()
        return n

    # -- kvm_handle_hva_range (virt/kvm/kvm_main.c) ----------------------------------------
    def kvm_handle_hva_range(self, notifier: str, start: int, end: int, test_only: bool,
                             flush_on_ret: bool) -> bool:
        """Run the arch handler on every memslot range of hva [start, end); one event.

        Raises:
            KernelDeadlock: the handler would take mmu_lock, which this walk holds
                (seed v4 4/7 with clear_flush_young: `takes_mmu_lock_twice`).
        """
        ev = AgingEvent(notifier, calls=1)
        mmu = self.mmu
        plan = mmu.lock_plan(notifier)
        lockless = plan[0] is None  # no common lock: the memslot walk is lockless
        handler = mmu.kvm_test_age_gfn if test_only else mmu.kvm_age_gfn
        twice = mmu.takes_mmu_lock_twice(notifier, plan)
        young = False
        # one page of a range SecondaryMmuBase.kvm_age_gfn() ages (look-around): on ints
        one = (not test_only and self.race_hook is None
               and type(mmu).kvm_age_gfn is SecondaryMmuBase.kvm_age_gfn)
        for slot, g0, g1 in self.memslots.ranges(start, end):
            if twice:
                common, arch = plan
                self.k.deadlock(
                    f"{notifier}: kvm_handle_hva_range() holds kvm->mmu_lock ({common}) and "
                    f"the {self.mmu.name} handler takes it again ({', '.join(arch)}): "
                    "self-deadlock (seed v4 4/7 moved the lock into the arch handlers, "
                    "clear_flush_young kept the common one)")
            ev.ranges += 1
            if one and g1 - g0 == 1:
                young |= mmu.age_one(mmu.sptes[slot.as_id], g0, ev)
            else:
                young |= handler(KvmGfnRange(slot, g0, g1, lockless), ev)
        self._finish(ev, young, flush_on_ret, plan)
        return young

    def _finish(self, ev: AgingEvent, young: bool, flush_on_ret: bool,
                plan: tuple[str | None, tuple[str, ...]] | None = None) -> None:
        """Charge the locks of one call (`plan`: its lock plan), flush if asked and young,
        log it."""
        ev.slot_calls = int(ev.ranges > 0)
        ev.young = int(young)
        self.mmu.charge_locks(ev, ev.slot_calls, ev.ranges, ev.visited, plan)
        if flush_on_ret and young:
            self.kvm_flush_remote_tlbs()
            ev.flushes += 1
        self.log.append(ev)

    # -- the notifier subscription (include/linux/mmu_notifier.h) --------------------------
    def test_young(self, addr: int) -> bool:
        """kvm_mmu_notifier_test_young: kvm_test_age_gfn over [addr, addr+1)."""
        return self.kvm_handle_hva_range(TEST_YOUNG, addr, addr + 1, True, False)

    def clear_young(self, start: int, end: int) -> bool:
        """kvm_mmu_notifier_clear_young: kvm_age_gfn, never flushes."""
        return self.kvm_handle_hva_range(CLEAR_YOUNG, start, end, False, False)

    def clear_flush_young(self, start: int, end: int) -> bool:
        """kvm_mmu_notifier_clear_flush_young: kvm_age_gfn, then a flush unless elided."""
        return self.kvm_handle_hva_range(CLEAR_FLUSH_YOUNG, start, end, False,
                                         self.mmu.flush_on_young())

    def test_clear_young_fast_only(self, start: int, end: int, clear: bool) -> int:
        """v5 what-if: answer locklessly or report FAILED (never takes mmu_lock)."""
        if not self.mmu.fast_only_capable():
            self.log.append(AgingEvent(FAST_ONLY, calls=1))
            return MMU_NOTIFIER_FAST_FAILED
        young = self.kvm_handle_hva_range(FAST_ONLY, start, end, not clear, False)
        return MMU_NOTIFIER_FAST_YOUNG if young else 0

    def test_clear_young_bitmap(self, start: int, bitmap: int, clear: bool) -> int:
        """v3 what-if: one call for the pages of `bitmap` from `start`; young bitmap."""
        ev = AgingEvent(CLEAR_YOUNG if clear else TEST_YOUNG, calls=1)
        handler = self.mmu.kvm_age_gfn if clear else self.mmu.kvm_test_age_gfn
        out = 0
        for slot, g0, g1 in self.memslots.ranges(start, start + BITMAP_PAGES * PAGE_SIZE):
            ev.ranges += 1
            first = (start - slot.userspace_addr) >> PAGE_SHIFT  # gfn offset of bit 0
            for i in range(BITMAP_PAGES):
                g = slot.base_gfn + first + i
                if bitmap >> i & 1 and g0 <= g < g1:
                    if handler(KvmGfnRange(slot, g, g + 1, True), ev):
                        out |= 1 << i
        self._finish(ev, bool(out), False)
        return out

    def invalidate_range(self, start: int, end: int) -> None:
        """invalidate_range_start: kvm_unmap_gfn_range on every memslot range."""
        for slot, g0, g1 in self.memslots.ranges(start, end):
            self.kvm_unmap_gfn_range(slot.as_id, g0, g1)

    def fast_only_capable(self) -> bool:
        """Whether aging takes no mmu_lock here (v3/v5 what-ifs)."""
        return self.mmu.fast_only_capable()

    def clear_young_segments(self) -> list[tuple[int, int, int, npt.NDArray[np.uint8]]] | None:
        """`aging_segments` for a compiled caller of one-page `clear_young` calls, or None
        when they must run here: a race hook, an arch with a kvm_age_gfn() of its own, or
        a handler that would take mmu_lock twice. The caller logs them with
        `account_clear_young`."""
        mmu = self.mmu
        plan = mmu.lock_plan(CLEAR_YOUNG)
        # asked for each folio look-around starts from: kept while the memslots (their
        # list is replaced on every change), the SPTE arrays, the race hook and the plan stay
        flat, arrays = self.memslots._flat, tuple(mmu.sptes)  # noqa: SLF001
        c = self._segments
        if (c is not None and c[0] is flat and c[2] is self.race_hook and c[3] == plan
                and len(c[1]) == len(arrays)
                and all(a is b for a, b in zip(c[1], arrays, strict=True))):
            return c[4]
        if (self.race_hook is not None or type(mmu).kvm_age_gfn is not SecondaryMmuBase.kvm_age_gfn
                or mmu.takes_mmu_lock_twice(CLEAR_YOUNG, plan)):
            segs = None
        else:
            segs = list(self.aging_segments())
        self._segments = (flat, arrays, self.race_hook, plan, segs)
        return segs

    def account_clear_young(self, rows: npt.NDArray[np.int64]) -> None:
        """Log one-page `clear_young` calls made by compiled code, one row per call:
        (memslot ranges, leaves visited, cleared, cleared writable and clean, young)."""
        mmu = self.mmu
        plan = mmu.lock_plan(CLEAR_YOUNG)
        # atomics_for() is linear in its counts: one policy lookup for every call
        (a_c, x_c), (a_w, x_w) = mmu.atomics_for(1, 0), mmu.atomics_for(0, 1)
        if not self.log.per_call:
            self._account_clear_young_summed(rows, plan, (a_c, x_c, a_w, x_w))
            return
        append = self.log.append
        for ranges, visited, cleared, wc, young in rows.tolist():
            locks = self._one_call_locks(plan, ranges, visited)[0]
            # _finish() of a call that never flushes
            ev = AgingEvent(CLEAR_YOUNG, calls=1, slot_calls=int(ranges > 0), ranges=ranges,
                            young=int(bool(young)), visited=visited, cleared=cleared,
                            atomics=a_c * cleared + a_w * wc, cmpxchg=x_c * cleared + x_w * wc)
            dict.update(ev.locks, locks)  # Counter.update's Mapping test costs more than this
            append(ev)

    def _one_call_locks(self, plan: tuple, ranges: int,
                        visited: int) -> tuple[dict[str, int], frozenset]:
        """The locks one `clear_young` call with these counts takes under `plan`
        (`charge_locks`), and the modes among them: kept per (plan, ranges, visited)."""
        key = (plan, ranges, visited)
        locks = self._call_locks.get(key)
        if locks is None:
            ev = AgingEvent(CLEAR_YOUNG)
            self.mmu.charge_locks(ev, int(ranges > 0), ranges, visited, plan)
            locks = self._call_locks[key] = (dict(ev.locks),
                                             frozenset(m for m, c in ev.locks.items() if c))
        return locks

    def _account_clear_young_summed(self, rows: npt.NDArray[np.int64], plan: tuple,
                                    per_page: tuple[int, int, int, int]) -> None:
        """`account_clear_young` into a summed log: the calls grouped by their (memslot
        ranges, leaves visited), which decide the locks a call takes, and added into the
        sum of their kind at once (`charge_locks` is linear in the calls)."""
        groups: dict[tuple[int, int], list[int]] = {}  # -> [calls, cleared, wc, young]
        for ranges, visited, cleared, wc, young in rows.tolist():
            g = groups.get((ranges, visited))
            if g is None:
                g = groups[ranges, visited] = [0, 0, 0, 0]
            g[0] += 1
            g[1] += cleared
            g[2] += wc
            g[3] += young != 0
        a_c, x_c, a_w, x_w = per_page
        for (r, v), (n, ncl, nwc, ny) in groups.items():
            locks = self._one_call_locks(plan, r, v)
            total = self.log.sum_for(CLEAR_YOUNG, "call", locks[1])
            total.calls += n
            total.slot_calls += n * (r > 0)
            total.ranges += r * n
            total.young += ny
            total.visited += v * n
            total.cleared += ncl
            total.atomics += a_c * ncl + a_w * nwc
            total.cmpxchg += x_c * ncl + x_w * nwc
            tl = total.locks
            for m, c in locks[0].items():
                tl[m] = tl.get(m, 0) + c * n

    def aging_segments(self) -> Iterator[tuple[int, int, int, npt.NDArray[np.uint8]]]:
        """(vpn0, vpn1, gfn0, sptes) per memslot, for the compiled walk."""
        for slot in self.memslots.all():
            yield (slot.userspace_addr >> PAGE_SHIFT, slot.hva_end >> PAGE_SHIFT, slot.base_gfn,
                   self.mmu.sptes[slot.as_id])

    def account_aging(self, row: npt.NDArray[np.int64]) -> None:
        """Charge one aging walk's calls on this VM (columns of `_walk_kernel`)."""
        r = [int(x) for x in row]
        clear_kind = FAST_ONLY if self.k.rules.walk_fast_only else CLEAR_YOUNG
        for kind, calls, slots, ranges, visited, young, cleared in (
                (TEST_YOUNG, r[SEC_TEST_CALLS], r[SEC_TEST_SLOT], r[SEC_TEST_RANGES],
                 r[SEC_TEST_VISITED], r[SEC_TEST_YOUNG], 0),
                (clear_kind, r[SEC_CLEAR_CALLS], r[SEC_CLEAR_SLOT], r[SEC_CLEAR_RANGES],
                 r[SEC_VISITED] - r[SEC_TEST_VISITED], r[SEC_YOUNG] - r[SEC_TEST_YOUNG],
                 r[SEC_CLEARED])):
            if not calls:
                continue
            atomics, cmpxchg = self.mmu.atomics_for(cleared, r[SEC_CLEARED_WC])
            ev = AgingEvent(kind, "walk", calls=calls, slot_calls=slots, ranges=ranges,
                            young=young, visited=visited, cleared=cleared, atomics=atomics,
                            cmpxchg=cmpxchg)
            self.mmu.charge_locks(ev, slots, ranges, visited)
            self.log.append(ev)


_MODELS: dict[str, type[SecondaryMmuBase]] = {
    "x86": X86Tdp, "arm64": Arm64, "riscv": Generic, "loongarch": Generic, "mips": Generic,
    "powerpc": Generic,
}


def create_vm(k: SimKernel, process: Process, *, arch: str | None = None, nr_vcpus: int = 1,
              tdp_mmu: bool = True, ad_bits: bool = True, tlb_entries: int = 1536,
              nr_address_spaces: int | None = None, mem_bytes: int = 0,
              thp: bool = False, nested: bool = False, shadow_sptes: bool = False,
              log_calls: bool = True) -> Kvm:
    """KVM_CREATE_VM on `process`: registers the VM's MMU notifier on its mm.

    Args:
        k: the kernel.
        process: the VMM process whose memory backs the guest.
        arch: x86, arm64, riscv, loongarch, mips or powerpc; default the
            kernel's `cfg.arch`. Only the secondary MMU model depends on it.
        nr_vcpus: vCPUs, each with its own guest TLB.
        tdp_mmu: x86 only: the TDP MMU (kvm.tdp_mmu=Y) or, if False, the
            shadow MMU with rmaps.
        ad_bits: the hardware sets secondary accessed bits (x86 EPT A/D,
            arm64 HAFDBS); without them aging access-tracks SPTEs and the next
            guest access takes a fast page fault.
        tlb_entries: guest TLB entries per vCPU.
        nr_address_spaces: memslot address spaces; default 2 on x86 with SMM
            (`cfg.kvm_nr_address_spaces`), else 1.
        mem_bytes: if non-zero, `add_memory(mem_bytes, thp=thp)` at gpa 0.
        thp: back `mem_bytes` with transparent huge pages.
        nested: x86 TDP only: a nested guest has run, so shadow pages exist
            and aging walks rmaps too (`kvm_memslots_have_rmaps`, v4 5/7).
        shadow_sptes: with `nested`: shadow-MMU SPTEs are mapped now, so the
            v5 fast-only call declines (it answers from the TDP MMU otherwise).
        log_calls: `vm.log` keeps every notifier call; False: sums only
            (`AgingLog(per_call=False)`, for long runs that read totals).

    Raises:
        ValueError: unknown arch, `tdp_mmu=False` off x86, `nested` without
            the TDP MMU, `shadow_sptes` without `nested`.
    """
    arch = arch or k.cfg.arch
    if arch not in _MODELS:
        raise ValueError(f"arch must be one of {', '.join(ARCHES)}; got {arch!r}")
    model = _MODELS[arch]
    if not tdp_mmu:
        if arch != "x86":
            raise ValueError(f"tdp_mmu=False selects the x86 shadow MMU; arch is {arch}")
        model = X86Shadow
    if nr_address_spaces is None:
        nr_address_spaces = k.cfg.kvm_nr_address_spaces if arch == "x86" else 1
    if nested and model is not X86Tdp:
        raise ValueError("nested=True models shadow pages next to the x86 TDP MMU")
    if shadow_sptes and not nested:
        raise ValueError("shadow_sptes=True needs nested=True")
    vm = Kvm(k, process, model, arch, nr_vcpus, ad_bits, tlb_entries, nr_address_spaces,
             log_calls)
    if nested:
        vm.mmu.nested = True
        vm.mmu.shadow_sptes = shadow_sptes
    if mem_bytes:
        vm.add_memory(mem_bytes, thp=thp)
    return vm
