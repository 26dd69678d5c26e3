"""The kernel backend interface of user space: the `Kernel` protocol. DESIGN "One ABI".

User-space code (the lru_gen client, the selftest port, agents) talks to a
kernel only through paths and commands, exactly as a program on a real machine
would, so the same tool code runs on the embedded `SimKernel` and on the real
host (`HostKernel`):

    kernel.read("/sys/kernel/debug/lru_gen")             # whole file, as `cat`
    kernel.write("/sys/kernel/debug/lru_gen", "+ 1 0 3\\n")  # one write(2)
    kernel.mkdir("/sys/fs/cgroup/a"); kernel.rmdir(...)  # cgroup directories
    kernel.exists(path)

`read`/`write`/`mkdir`/`rmdir` raise `OSError` with the kernel's errno and the
kernel-view path as `filename`. A host that lacks a feature the tools need is
reported with `FeatureUnavailable`, whose message names the feature and how to
get it (see `mglru.abi.features`).

Future optimizations:
1. a `pread`-style partial read if tools ever need to poll large files.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = [
    "Kernel",
    "FeatureUnavailable",
    "BackendError",
    "kernel_kind",
    "LRU_GEN",
    "LRU_GEN_FULL",
    "LRU_GEN_ENABLED",
    "LRU_GEN_MIN_TTL_MS",
    "DEBUGFS",
    "PROC_MOUNTS",
    "DEFAULT_CGROUP_ROOT",
]

#: debugfs files of MGLRU (mm/vmscan.c: lru_gen_seq_show(); mm/vmscan.c: lru_gen_seq_write())
LRU_GEN = "/sys/kernel/debug/lru_gen"
LRU_GEN_FULL = "/sys/kernel/debug/lru_gen_full"
#: sysfs files of MGLRU (mm/vmscan.c: enabled_store(); mm/vmscan.c: min_ttl_ms_store())
LRU_GEN_ENABLED = "/sys/kernel/mm/lru_gen/enabled"
LRU_GEN_MIN_TTL_MS = "/sys/kernel/mm/lru_gen/min_ttl_ms"
#: where debugfs is conventionally mounted
DEBUGFS = "/sys/kernel/debug"
#: the mount table (absent on the simulated kernel, which has fixed mounts)
PROC_MOUNTS = "/proc/self/mounts"
#: the selftest's default cgroup root (`-r`), and the simulated kernel's
DEFAULT_CGROUP_ROOT = "/sys/fs/cgroup"


@runtime_checkable
class Kernel(Protocol):
    """The file and cgroup interface every kernel backend provides.

    `SimKernel` satisfies it as is; `HostKernel` maps it onto a filesystem.
    Optional extras a backend may add (tools look them up with `getattr`):
    `access(path, write) -> bool` (whether `open(2)` would succeed),
    `cgroup` (the detected `CgroupHierarchy`) and `kind` (see `kernel_kind`).
    """

    def read(self, path: str) -> str:
        """Read a whole kernel file.

        Raises:
            OSError: with the kernel's errno (ENOENT, EACCES, EISDIR...).
        """
        ...

    def write(self, path: str, text: str) -> int:
        """Write `text` with one write(2); returns the bytes accepted.

        Raises:
            OSError: with the kernel's errno (EINVAL for a bad command...).
        """
        ...

    def mkdir(self, path: str) -> None:
        """Create a cgroup directory."""
        ...

    def rmdir(self, path: str) -> None:
        """Remove a cgroup directory."""
        ...

    def exists(self, path: str) -> bool:
        """Whether a file or directory exists."""
        ...

    def pread(self, path: str, size: int, offset: int) -> bytes:
        """pread(2) of a binary file (page_idle/bitmap, /proc/<pid>/pagemap).

        Raises:
            OSError: with the kernel's errno (EINVAL for misaligned access...).
        """
        ...

    def pwrite(self, path: str, data: bytes, offset: int) -> int:
        """pwrite(2) to a binary file; returns the bytes accepted."""
        ...


class FeatureUnavailable(RuntimeError):
    """The kernel lacks a feature a tool needs (lru_gen, debugfs, memcg, a cap bit).

    Attributes:
        feature: short name of what is missing, e.g. "lru_gen", "debugfs",
            "memory cgroup", "SECONDARY_MMU_WALK".
        reason: what was found, in the words a selftest would print
            (e.g. "lru_gen does not support SECONDARY_MMU_WALK").
        hint: how to get the feature, or "" if there is no simple way.
    """

    def __init__(self, feature: str, reason: str, hint: str = "") -> None:
        self.feature = feature
        self.reason = reason
        self.hint = hint
        super().__init__(f"{reason}; {hint}" if hint else reason)


class BackendError(RuntimeError):
    """A kernel backend could not be started or stopped answering (QEMU missing, no boot)."""


def kernel_kind(kernel: object) -> str:
    """What a backend is: "sim" (the model), "host" (a filesystem) or "qemu" (a booted guest).

    Backends say so with a `kind` attribute; one without it is a host-like
    filesystem view, as the tools treated every non-simulated kernel so far.
    """
    return getattr(kernel, "kind", "host")
