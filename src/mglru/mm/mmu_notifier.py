"""MMU notifiers: how the primary MMU asks secondary MMUs about accesses.

Kernel: include/linux/mmu_notifier.h, mm/mmu_notifier.c; v4 2/7.

Mechanism: an mm keeps a chain of subscriptions (`Mm.notifiers`). The aging
notifiers walk the chain: `clear_young` and `clear_flush_young` ask every
subscriber and OR the answers; `test_young` stops at the first subscriber that
saw an access. With no subscriber each is a no-op returning 0
(`mm_has_notifiers` is false), which is what lets the kernel skip them cheaply.

Two variants from the review thread are here as what-ifs (never merged):
the v5 fast-only call (`test_clear_young_fast_only`: a subscriber that
cannot answer without slow locks reports FAILED instead of answering) and the
v3 bitmap call (one call covers up to 64 pages; only lockless subscribers are
asked).

A subscription is any object with the methods of `MmuNotifierOps` (it knows
its mm, so the callbacks take only addresses); the KVM model (`mglru.kvm`) is
the one the project ships. The compiled aging walk does not call these
functions per PTE: it reads the subscriber's SPTE state through
`aging_segments()` and reports what it did through `account_aging()` (see
`mglru.lru_gen._walk_secondary`). Look-around's window does the same with the
subscribers that offer it (`clear_young_segments`, `account_clear_young`: one
logged call per page, see `mglru.lru_gen._look_around_notify`).

Future optimizations:
1. an SRCU-like snapshot of the chain if subscribers ever register mid-walk.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from mglru.mm.process import Mm

__all__ = [
    "MmuNotifierOps", "MMU_NOTIFIER_FAST_YOUNG", "MMU_NOTIFIER_FAST_FAILED", "BITMAP_PAGES",
    "mmu_notifier_register", "mmu_notifier_unregister", "mm_has_notifiers",
    "mm_has_fast_young_notifiers", "mmu_notifier_test_young", "mmu_notifier_clear_young",
    "mmu_notifier_clear_flush_young", "mmu_notifier_test_clear_young_fast_only",
    "mmu_notifier_test_clear_young_bitmap", "mmu_notifier_invalidate_range",
]

#: v5 fast-only return bits: some subscriber saw an access / some could not answer fast
MMU_NOTIFIER_FAST_YOUNG = 1 << 0
MMU_NOTIFIER_FAST_FAILED = 1 << 1
#: v3: pages covered by one bitmap call (MIN_LRU_BATCH)
BITMAP_PAGES = 64


class MmuNotifierOps(Protocol):
    """The callbacks a subscription provides (struct mmu_notifier_ops)."""

    def clear_flush_young(self, start: int, end: int) -> bool:
        """Clear accessed bits in [start, end) and flush what caches them; True if any was set."""

    def clear_young(self, start: int, end: int) -> bool:
        """Clear accessed bits in [start, end) without flushing; True if any was set."""

    def test_young(self, addr: int) -> bool:
        """Whether the page at `addr` was accessed; never clears."""

    def test_clear_young_fast_only(self, start: int, end: int, clear: bool) -> int:
        """v5 what-if: answer only if it can be done fast; MMU_NOTIFIER_FAST_* bits."""

    def test_clear_young_bitmap(self, start: int, bitmap: int, clear: bool) -> int:
        """v3 what-if: one call for the pages of `bitmap` from `start`; young bitmap."""

    def invalidate_range(self, start: int, end: int) -> None:
        """invalidate_range_start/end collapsed: drop mappings of [start, end)."""

    def fast_only_capable(self) -> bool:
        """Whether this subscriber ages without slow locks (v3/v5 what-ifs)."""

    def aging_segments(self) -> Iterable[tuple[int, int, int, Any]]:
        """(vpn0, vpn1, gfn0, sptes) runs the compiled aging walk reads directly."""

    def account_aging(self, stats_row: Any) -> None:
        """Per-walk call counts from the compiled walk (see `_walk_kernel`)."""


def mmu_notifier_register(mm: Mm, sub: MmuNotifierOps) -> None:
    """Subscribe to an mm's notifiers (added at the tail of the chain)."""
    if sub in mm.notifiers:
        raise ValueError(f"{sub!r} is already registered on {mm!r}")
    mm.notifiers.append(sub)


def mmu_notifier_unregister(mm: Mm, sub: MmuNotifierOps) -> None:
    """Remove a subscription (the VM is destroyed)."""
    mm.notifiers.remove(sub)


def mm_has_notifiers(mm: Mm) -> bool:
    """Any subscription on this mm: mm_has_notifiers()."""
    return bool(mm.notifiers)


def mm_has_fast_young_notifiers(mm: Mm) -> bool:
    """v5 what-if: any subscriber that can age without slow locks."""
    return any(s.fast_only_capable() for s in mm.notifiers)


def mmu_notifier_test_young(mm: Mm, addr: int) -> bool:
    """Whether any secondary MMU saw an access to `addr`; stops at the first young one."""
    for sub in mm.notifiers:
        if sub.test_young(addr):
            return True
    return False


def mmu_notifier_clear_young(mm: Mm, start: int, end: int, fast_only: bool = False) -> bool:
    """Clear secondary accessed bits in [start, end) (no flush); OR over subscribers.

    With `fast_only` (v3/v5 what-ifs) the call is the fast-only one: subscribers
    that cannot answer without slow locks are not consulted (they report FAILED).
    """
    if fast_only:
        return bool(mmu_notifier_test_clear_young_fast_only(mm, start, end, True)
                    & MMU_NOTIFIER_FAST_YOUNG)
    young = False
    for sub in mm.notifiers:
        young |= bool(sub.clear_young(start, end))
    return young


def mmu_notifier_clear_flush_young(mm: Mm, start: int, end: int) -> bool:
    """As `mmu_notifier_clear_young`, then each subscriber flushes per its rules."""
    young = False
    for sub in mm.notifiers:
        young |= bool(sub.clear_flush_young(start, end))
    return young


def mmu_notifier_test_clear_young_fast_only(mm: Mm, start: int, end: int, clear: bool) -> int:
    """v5 what-if: OR of the fast answers; FAILED if some subscriber could not answer fast.

    A test (clear=False) stops at the first young subscriber, as `test_young` does.
    """
    ret = 0
    for sub in mm.notifiers:
        ret |= int(sub.test_clear_young_fast_only(start, end, clear))
        if not clear and ret & MMU_NOTIFIER_FAST_YOUNG:
            break
    return ret


def mmu_notifier_test_clear_young_bitmap(mm: Mm, start: int, bitmap: int, clear: bool) -> int:
    """v3 what-if: one call per subscriber for up to 64 pages from `start`.

    Bit i of `bitmap` asks about the page at `start + i * 4096`; the result has
    bit i set if a secondary MMU saw an access there. Only subscribers that age
    locklessly are asked (v3: secondary MMUs are consulted only where that is
    cheap). The pages are answered one by one below; the accounting records a
    single call per subscriber.
    """
    young = 0
    if not bitmap:
        return 0
    for sub in mm.notifiers:
        if not sub.fast_only_capable():
            continue
        young |= sub.test_clear_young_bitmap(start, bitmap, clear)
    return young


def mmu_notifier_invalidate_range(mm: Mm, start: int, end: int) -> None:
    """invalidate_range_start/end: every subscriber drops its mappings of [start, end)."""
    for sub in mm.notifiers:
        sub.invalidate_range(start, end)

