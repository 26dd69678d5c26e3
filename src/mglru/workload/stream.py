"""Access streams: arrays of page accesses by one host task or one guest vCPU.

A stream holds, per access, a page number (a virtual page number of the task
for a host stream, a guest frame number for a guest stream), a write flag and
the simulated time of the access in nanoseconds since boot. Times come from
the caller (a trace's own timestamps) or from a rate in accesses per second.

    s = host_stream(p, addr, pages, writes, rate=50e6)   # pages: offsets from addr
    g = guest_stream(vm, 0, gfns, writes, rate=20e6)
    Engine(k).run([s, g])
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mglru.mm.page import PAGE_SHIFT

if TYPE_CHECKING:
    from mglru.kvm.kvm_main import Kvm
    from mglru.mm.process import Process

__all__ = ["Stream", "host_stream", "guest_stream", "stream_times", "check_times"]


@dataclass(eq=False)
class Stream:
    """One task's (or vCPU's) accesses in time order, and how far they have run."""

    #: "host" (vpns of `task`) or "guest" (gfns of `vm`'s vCPU `vcpu`)
    kind: str
    pages: npt.NDArray[np.int64]
    writes: npt.NDArray[np.uint8]
    t_ns: npt.NDArray[np.int64]
    task: Process | None = None
    vm: Kvm | None = None
    vcpu: int = 0
    #: index of the next access to apply
    pos: int = 0
    #: accesses applied without a fault, and accesses that went through the fault path
    hits: int = 0
    faults: int = 0
    #: indices of the accesses that faulted, in order (kept when `record_faults`; an
    #: array of int64, which a fault loop extends by its buffer's bytes)
    fault_index: array = field(default_factory=lambda: array("q"))
    record_faults: bool = False
    #: the engine's buffers for this stream, kept from one slice to the next (an engine
    #: quantum may hold a few accesses: allocating them each time cost more than those)
    scratch: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.pages)

    @property
    def done(self) -> bool:
        """All accesses applied."""
        return self.pos >= len(self.pages)

    def next_ns(self) -> int:
        """Simulated time of the next access."""
        return int(self.t_ns[self.pos])


def stream_times(n: int, *, start_ns: int = 0, rate: float | None = None,
                 t_ns: npt.ArrayLike | None = None) -> npt.NDArray[np.int64]:
    """Access times: `t_ns` as given (non-decreasing), or `n` accesses at `rate` per second.

    Raises:
        ValueError: both or neither of rate and t_ns, a bad rate, decreasing or
            mis-sized times.
    """
    if (rate is None) == (t_ns is None):
        raise ValueError("give exactly one of rate (accesses/s) and t_ns (timestamps)")
    if rate is not None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        return start_ns + (np.arange(n, dtype=np.float64) * (1e9 / rate)).astype(np.int64)
    t = np.asarray(t_ns, dtype=np.int64)
    if t.shape != (n,):
        raise ValueError(f"t_ns must have one time per access ({n}), got shape {t.shape}")
    check_times(t)
    return start_ns + t


def check_times(t_ns: npt.NDArray[np.int64]) -> None:
    """Raises ValueError unless the times do not decrease."""
    back = np.flatnonzero(t_ns[1:] < t_ns[:-1])  # (np.diff would build an int64 temporary)
    if len(back):
        raise ValueError(f"t_ns must not decrease; access {int(back[0]) + 1} goes back in time")


def _writes(n: int, writes: npt.ArrayLike | bool | None) -> npt.NDArray[np.uint8]:
    if writes is None or isinstance(writes, bool | np.bool_):
        return np.full(n, 1 if writes else 0, np.uint8)
    w = np.asarray(writes).astype(np.uint8)
    if w.shape != (n,):
        raise ValueError(f"writes must have one flag per access ({n}), got shape {w.shape}")
    return w


def host_stream(task: Process, addr: int, pages: npt.ArrayLike,
                writes: npt.ArrayLike | bool | None = None, *, rate: float | None = None,
                t_ns: npt.ArrayLike | None = None, start_ns: int | None = None,
                record_faults: bool = False) -> Stream:
    """Accesses by `task` to the pages `addr + PAGE_SIZE * pages[i]`.

    Args:
        task: the accessing process.
        addr: page-aligned base address (usually an mmap'd region).
        pages: page offsets from `addr`.
        writes: per-access write flags, or one bool for all (default reads).
        rate: accesses per second (times start at `start_ns`).
        t_ns: per-access times in ns, relative to `start_ns`.
        start_ns: default the kernel's clock now.
        record_faults: keep the indices of faulting accesses in `fault_index`.
    """
    if addr % (1 << PAGE_SHIFT):
        raise ValueError(f"addr {addr:#x} must be page aligned")
    pg = np.asarray(pages, dtype=np.int64)
    start = task.kernel.clock_ns if start_ns is None else start_ns
    return Stream("host", pg + (addr >> PAGE_SHIFT), _writes(len(pg), writes),
                  stream_times(len(pg), start_ns=start, rate=rate, t_ns=t_ns), task=task,
                  record_faults=record_faults)


def guest_stream(vm: Kvm, vcpu: int, gfns: npt.ArrayLike,
                 writes: npt.ArrayLike | bool | None = None, *, rate: float | None = None,
                 t_ns: npt.ArrayLike | None = None, start_ns: int | None = None,
                 record_faults: bool = False) -> Stream:
    """Accesses by vCPU `vcpu` of `vm` to guest frames `gfns` (arguments as `host_stream`)."""
    if not 0 <= vcpu < len(vm.vcpus):
        raise ValueError(f"vcpu must be in [0, {len(vm.vcpus)}), got {vcpu}")
    g = np.asarray(gfns, dtype=np.int64)
    start = vm.k.clock_ns if start_ns is None else start_ns
    return Stream("guest", g, _writes(len(g), writes),
                  stream_times(len(g), start_ns=start, rate=rate, t_ns=t_ns), vm=vm, vcpu=vcpu,
                  record_faults=record_faults)
