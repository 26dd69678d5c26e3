"""Helpers for the user-space tool tests: small simulated kernels and a write recorder.

A uniquely named module (not conftest) so test modules can import it safely.
"""

from __future__ import annotations

from pathlib import Path

from mglru import SimKernel

GOLDEN = Path(__file__).parent.parent / "golden_host"
MIB = 1 << 20


class RecordingKernel:
    """A Kernel that forwards to another and records every write (path, text)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.writes: list[tuple[str, str]] = []

    def read(self, path: str) -> str:
        return self.inner.read(path)

    def write(self, path: str, text: str) -> int:
        self.writes.append((path, text))
        return self.inner.write(path, text)

    def mkdir(self, path: str) -> None:
        self.inner.mkdir(path)

    def rmdir(self, path: str) -> None:
        self.inner.rmdir(path)

    def exists(self, path: str) -> bool:
        return self.inner.exists(path)


def two_node_kernel(config: str = "seed-v4", **overrides) -> SimKernel:
    """A kernel with two 256 MiB nodes, memcgs /a and /a/b, pages on both nodes.

    /a: 1 MiB written on node 0 and 2 MiB on node 1; /a/b: 512 KiB read-faulted
    into a file on node 0 (256 + 512 anon, 128 file pages).
    """
    k = SimKernel(config, node_bytes=(256 * MIB, 256 * MIB), **overrides)
    k.mkdir("/sys/fs/cgroup/a")
    k.mkdir("/sys/fs/cgroup/a/b")
    p0 = k.spawn(memcg="/a", node=0)
    p0.access(p0.mmap(MIB), MIB, write=True)
    p1 = k.spawn(memcg="/a", node=1)
    p1.access(p1.mmap(2 * MIB), 2 * MIB, write=True)
    p2 = k.spawn(memcg="/a/b", node=0)
    f = k.open_file("data", MIB // 2)
    p2.read(f, 0, MIB // 2)
    k.tick(250)
    return k
