"""HostKernel: the `Kernel` protocol over a real filesystem (`/sys`, debugfs, cgroupfs).

    from mglru.abi import HostKernel
    host = HostKernel()                     # the running kernel
    host.read("/sys/kernel/mm/lru_gen/enabled")
    host.cgroup                             # CgroupHierarchy(version=2, root="/sys/fs/cgroup")

Kernel-view paths ("/sys/kernel/debug/lru_gen") are resolved under `root`, so a
temporary directory laid out like a real `/sys` stands in for the host in
tests (no root privileges needed). Each `write` is one open/write(2)/close, as
`echo cmd > file` does: the kernel parses a whole buffer per write
(mm/vmscan.c: lru_gen_seq_write()). Errors are re-raised with the kernel-view
path, so messages read the
same on every backend.

Future optimizations:
1. keep debugfs open across aging passes when benchmarking (`-p`); the C test
   reopens the file per command, so we do too.
"""

from __future__ import annotations

import errno
import os
import posixpath

from mglru.abi.cgroup import CgroupHierarchy, find_memory_cgroup

__all__ = ["HostKernel"]


class HostKernel:
    """The real kernel (or a directory tree laid out like one) behind the `Kernel` protocol.

    Args:
        root: the filesystem root under which kernel paths resolve ("/" for the host).
        cgroup_root: a kernel-view memory cgroup root to use instead of detecting
            one (the selftest's `-r`).
    """

    #: the backend kind (see `mglru.abi.kernel.kernel_kind`)
    kind = "host"

    def __init__(self, root: str | os.PathLike[str] = "/", cgroup_root: str | None = None) -> None:
        self.root = os.fspath(root)
        self._cgroup_root_hint = cgroup_root
        self._cgroup: CgroupHierarchy | None = None

    def __repr__(self) -> str:
        return f"HostKernel(root={self.root!r})"

    def host_path(self, path: str) -> str:
        """The filesystem path of a kernel-view path."""
        rel = posixpath.normpath("/" + path.lstrip("/")).lstrip("/")
        return os.path.join(self.root, rel) if rel else self.root

    # -- the Kernel protocol ---------------------------------------------------------
    def read(self, path: str) -> str:
        """Read a whole file.

        Raises:
            OSError: the host's errno, with `path` as the filename.
        """
        try:
            with open(self.host_path(path), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None

    def write(self, path: str, text: str | bytes) -> int:
        """One open(O_WRONLY|O_TRUNC) + write(2) + close; returns the bytes accepted.

        The file is never created: a missing kernel file is ENOENT, as on sysfs.

        Raises:
            OSError: the host's errno (EINVAL, EEXIST... from the kernel), with
                `path` as the filename.
        """
        data = text.encode() if isinstance(text, str) else text
        return self._on_fd(path, os.O_WRONLY | os.O_TRUNC, lambda fd: os.write(fd, data))

    def pread(self, path: str, size: int, offset: int) -> bytes:
        """pread(2) of a binary kernel file.

        Raises:
            OSError: the host's errno, with `path` as the filename.
        """
        return self._on_fd(path, os.O_RDONLY, lambda fd: os.pread(fd, size, offset))

    def pwrite(self, path: str, data: bytes, offset: int) -> int:
        """pwrite(2) to a binary kernel file; returns the bytes accepted."""
        return self._on_fd(path, os.O_WRONLY, lambda fd: os.pwrite(fd, data, offset))

    def _on_fd(self, path: str, flags: int, op):
        """open(2) a kernel file (never creating it), run `op(fd)`, close; errors name `path`."""
        try:
            fd = os.open(self.host_path(path), flags)
            try:
                return op(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None

    def mkdir(self, path: str) -> None:
        """mkdir(2) of a directory inside the memory cgroup hierarchy.

        Raises:
            OSError: EPERM outside the hierarchy, else the host's errno.
            FeatureUnavailable: no memory cgroup hierarchy.
        """
        self._check_in_cgroup(path)
        try:
            os.mkdir(self.host_path(path), 0o755)
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None

    def rmdir(self, path: str) -> None:
        """rmdir(2) of a directory inside the memory cgroup hierarchy.

        Raises:
            OSError: EPERM outside the hierarchy (or of its root), else the host's errno.
            FeatureUnavailable: no memory cgroup hierarchy.
        """
        self._check_in_cgroup(path, allow_root=False)
        try:
            os.rmdir(self.host_path(path))
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None

    def exists(self, path: str) -> bool:
        """Whether the path exists."""
        return os.path.exists(self.host_path(path))

    # -- extras ------------------------------------------------------------------------
    def access(self, path: str, write: bool = False) -> bool:
        """Whether open(2) for reading (and writing) succeeds, as the selftest checks."""
        try:
            fd = os.open(self.host_path(path), os.O_RDWR if write else os.O_RDONLY)
        except OSError:
            return False
        os.close(fd)
        return True

    @property
    def cgroup(self) -> CgroupHierarchy:
        """The memory cgroup hierarchy (detected once; see `find_memory_cgroup`).

        Raises:
            FeatureUnavailable: there is none.
        """
        if self._cgroup is None:
            self._cgroup = find_memory_cgroup(self, self._cgroup_root_hint)
        return self._cgroup

    @property
    def cgroup_root(self) -> str:
        """The kernel-view root of the memory cgroup hierarchy."""
        return self.cgroup.root

    def _check_in_cgroup(self, path: str, allow_root: bool = True) -> None:
        root = self.cgroup_root
        path = posixpath.normpath("/" + path.lstrip("/"))
        inside = path.startswith(root.rstrip("/") + "/") or (allow_root and path == root)
        if not inside:
            raise OSError(errno.EPERM, f"not below the memory cgroup root {root}", path)
