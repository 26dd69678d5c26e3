"""Memory cgroup hierarchy discovery, through the `Kernel` protocol only.

As in tools/testing/selftests/kvm/access_tracking_perf_test.c (v6.16).

The selftest needs "the memory-controller cgroup root (v1 or v2)". Discovery
reads the mount table when the kernel has one (`/proc/self/mounts`):

- v2: a `cgroup2` mount whose `cgroup.controllers` lists `memory`;
- v1: a `cgroup` mount with the `memory` option.

A v2 hierarchy that has the memory controller wins; on a hybrid host (v1
memory, v2 `unified` without it) the v1 mount is used. Without a mount table
(the simulated kernel, or a bare directory tree in tests) the conventional
layout is probed instead: `/sys/fs/cgroup` for v2, `/sys/fs/cgroup/memory`
(holding `memory.limit_in_bytes`, a v1-only file) for v1.

Future optimizations:
1. read `/proc/self/cgroup` to place the caller's own cgroup if tools ever
   need to work inside a delegated subtree.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass

from mglru.abi.kernel import DEFAULT_CGROUP_ROOT, PROC_MOUNTS, FeatureUnavailable, Kernel

__all__ = ["CgroupHierarchy", "Mount", "parse_mounts", "read_mounts", "find_memory_cgroup",
           "memory_cgroup", "cgroup_root"]

_NO_MEMCG_HINT = ("mount cgroup2 with the memory controller, e.g. "
                  "'mount -t cgroup2 none /sys/fs/cgroup', or a v1 memory hierarchy with "
                  "'mount -t cgroup -o memory none /sys/fs/cgroup/memory'; "
                  "and do not boot with cgroup_disable=memory")


@dataclass(frozen=True, slots=True)
class CgroupHierarchy:
    """A mounted memory cgroup hierarchy.

    Attributes:
        version: 1 or 2.
        root: the mount point, a kernel-view path (e.g. "/sys/fs/cgroup").
    """

    version: int
    root: str

    def path(self, memcg: str) -> str:
        """The directory of a memcg given by its path relative to the root ("/a/b" or "a")."""
        rel = memcg.strip("/")
        return posixpath.join(self.root, rel) if rel else self.root


@dataclass(frozen=True, slots=True)
class Mount:
    """One line of /proc/self/mounts."""

    source: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    """Undo the kernel's octal escapes of space, tab, newline and backslash."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_mounts(text: str) -> list[Mount]:
    """Parse the mount table format (`source mountpoint fstype options dump pass`).

    Lines with fewer than four fields are ignored, as libmount does.
    """
    mounts = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mounts.append(Mount(_unescape(fields[0]), _unescape(fields[1]), fields[2],
                            tuple(fields[3].split(","))))
    return mounts


def read_mounts(kernel: Kernel) -> list[Mount] | None:
    """The kernel's mount table, or None if it has none we can read."""
    if not kernel.exists(PROC_MOUNTS):
        return None
    try:
        return parse_mounts(kernel.read(PROC_MOUNTS))
    except OSError:
        return None


def _v2_has_memory(kernel: Kernel, root: str) -> bool:
    try:
        return "memory" in kernel.read(posixpath.join(root, "cgroup.controllers")).split()
    except OSError:
        return False


def _is_v1_memory(kernel: Kernel, root: str) -> bool:
    return kernel.exists(posixpath.join(root, "memory.limit_in_bytes"))


def _detect_at(kernel: Kernel, root: str) -> CgroupHierarchy | None:
    if _v2_has_memory(kernel, root):
        return CgroupHierarchy(2, root)
    if _is_v1_memory(kernel, root):
        return CgroupHierarchy(1, root)
    return None


def find_memory_cgroup(kernel: Kernel, root: str | None = None) -> CgroupHierarchy:
    """Find the memory cgroup hierarchy (v2 preferred, else v1).

    Args:
        kernel: any kernel backend.
        root: a given hierarchy root (the selftest's `-r`); only it is checked.

    Raises:
        FeatureUnavailable: no memory cgroup hierarchy (at `root`, if given).
    """
    if root is not None:
        root = posixpath.normpath(root)
        found = _detect_at(kernel, root)
        if found is None:
            raise FeatureUnavailable(
                "memory cgroup",
                f"no memory cgroup hierarchy at {root}: expected cgroup.controllers listing "
                f"'memory' (v2) or memory.limit_in_bytes (v1)", _NO_MEMCG_HINT)
        return found
    mounts = read_mounts(kernel)
    if mounts is None:
        for candidate in (DEFAULT_CGROUP_ROOT, posixpath.join(DEFAULT_CGROUP_ROOT, "memory")):
            found = _detect_at(kernel, candidate)
            if found is not None:
                return found
        where = f"at {DEFAULT_CGROUP_ROOT} or {DEFAULT_CGROUP_ROOT}/memory (no {PROC_MOUNTS})"
    else:
        for m in mounts:
            if m.fstype == "cgroup2" and _v2_has_memory(kernel, m.mountpoint):
                return CgroupHierarchy(2, m.mountpoint)
        for m in mounts:
            if m.fstype == "cgroup" and "memory" in m.options:
                return CgroupHierarchy(1, m.mountpoint)
        v2 = [m.mountpoint for m in mounts if m.fstype == "cgroup2"]
        where = (f"in {PROC_MOUNTS}" + (f" (cgroup2 at {', '.join(v2)} lacks the memory "
                                        "controller)" if v2 else ""))
    raise FeatureUnavailable("memory cgroup", f"no memory cgroup hierarchy found {where}",
                             _NO_MEMCG_HINT)


def memory_cgroup(kernel: Kernel, root: str | None = None) -> CgroupHierarchy:
    """The memory cgroup hierarchy of any backend (its cached `cgroup` if it has one).

    Raises:
        FeatureUnavailable: see `find_memory_cgroup`.
    """
    if root is None:
        cached = getattr(kernel, "cgroup", None)
        if isinstance(cached, CgroupHierarchy):
            return cached
    return find_memory_cgroup(kernel, root)


def cgroup_root(kernel: Kernel, root: str | None = None) -> str:
    """The kernel-view root of the memory cgroup hierarchy of any backend.

    Raises:
        FeatureUnavailable: see `find_memory_cgroup`.
    """
    return memory_cgroup(kernel, root).root
