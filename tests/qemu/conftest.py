"""Real-kernel tests: run when QEMU and the cached kernels are present, else skip saying why."""

from __future__ import annotations

import os

import pytest

from mglru.abi.qemu import QemuKernel, qemu_binary
from mglru.abi.qemu_images import build_initramfs, cache_dir, cached_kernel


def qemu_skip_reason(name: str) -> str | None:
    """Why the tests of kernel `name` cannot run here, or None."""
    if qemu_binary() is None:
        return "qemu-system-x86_64 not installed (scripts/ci-qemu.sh installs it)"
    if cached_kernel(name) is None:
        return (f"kernel {name} not cached in {cache_dir()} (scripts/ci-qemu.sh fetches it)")
    if not os.path.isfile("/bin/busybox"):
        return "busybox-static not installed (scripts/ci-qemu.sh installs it)"
    try:
        build_initramfs(cached_kernel(name))
    except Exception as e:  # noqa: BLE001 - any reason becomes the skip message
        return f"cannot build the initramfs: {e}"
    return None


def require_kernel(name: str) -> None:
    """Skip the calling test unless kernel `name` can boot here."""
    reason = qemu_skip_reason(name)
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def guest612():
    """One 6.12 guest shared by a module's tests."""
    require_kernel("6.12")
    with QemuKernel("6.12") as k:
        yield k


def qemu_children(pid: int | None = None) -> list[int]:
    """Pids of qemu-system processes whose parent is `pid` (default: this process)."""
    pid = os.getpid() if pid is None else pid
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid and comm.startswith("qemu-system"):
            out.append(int(entry))
    return out
