"""A directory laid out like a real host's /sys, /proc and cgroup mounts (no root needed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent.parent / "golden_host"

#: mount table lines of the kinds of hosts we lay out
MOUNTS = {
    "sysfs": "sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0",
    "proc": "proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0",
    "debugfs": "debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0",
    "v2": "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0",
    # this shape is what the development machine has: a hybrid v1 host
    "v1-tmpfs": "tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0",
    "v1-cpu": "cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0",
    "v1-memory": "cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0",
    "v1-unified": "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0",
}


def _write(root: Path, path: str, text: str) -> None:
    f = root / path.lstrip("/")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(text)


def build_host_tree(root: Path, cgroup: str | None = "v2", debugfs: bool = True,
                    lru_gen: bool = True, mounts: bool = True, enabled: str = "0x0007\n",
                    lru_gen_text: str | None = None) -> Path:
    """Lay out a host under `root`.

    Args:
        root: an empty directory.
        cgroup: "v2" (memory in cgroup.controllers), "v2-nomem" (cgroup2
            without memory), "v1" (hybrid host with a v1 memory hierarchy) or None.
        debugfs: whether debugfs is mounted (and its lru_gen files exist).
        lru_gen: whether the kernel has CONFIG_LRU_GEN (sysfs directory).
        mounts: whether /proc/self/mounts exists.
        enabled: contents of /sys/kernel/mm/lru_gen/enabled.
        lru_gen_text: contents of /sys/kernel/debug/lru_gen (default: a golden sample).
    """
    lines = [MOUNTS["sysfs"], MOUNTS["proc"]]
    (root / "sys/kernel/debug").mkdir(parents=True)  # the mount point always exists
    if lru_gen:
        _write(root, "/sys/kernel/mm/lru_gen/enabled", enabled)
        _write(root, "/sys/kernel/mm/lru_gen/min_ttl_ms", "0\n")
    if debugfs:
        lines.append(MOUNTS["debugfs"])
        if lru_gen:
            text = lru_gen_text if lru_gen_text is not None else \
                (GOLDEN / "lru_gen_v6.8_2nodes.txt").read_text()
            _write(root, "/sys/kernel/debug/lru_gen", text)
            _write(root, "/sys/kernel/debug/lru_gen_full",
                   (GOLDEN / "lru_gen_full_v6.12.txt").read_text())
    if cgroup in ("v2", "v2-nomem"):
        lines.append(MOUNTS["v2"])
        controllers = "cpuset cpu io memory hugetlb pids" if cgroup == "v2" else "cpu io pids"
        _write(root, "/sys/fs/cgroup/cgroup.controllers", controllers + "\n")
        _write(root, "/sys/fs/cgroup/cgroup.procs", "1\n")
        _write(root, "/sys/fs/cgroup/cgroup.subtree_control", "memory pids\n")
    elif cgroup == "v1":
        lines += [MOUNTS["v1-tmpfs"], MOUNTS["v1-cpu"], MOUNTS["v1-memory"], MOUNTS["v1-unified"]]
        _write(root, "/sys/fs/cgroup/cpu/cgroup.procs", "1\n")
        _write(root, "/sys/fs/cgroup/memory/cgroup.procs", "1\n")
        _write(root, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
        _write(root, "/sys/fs/cgroup/unified/cgroup.controllers", "hugetlb\n")
    elif cgroup is not None:
        raise ValueError(f"cgroup must be v2, v2-nomem, v1 or None; got {cgroup!r}")
    if mounts:
        _write(root, "/proc/self/mounts", "\n".join(lines) + "\n")
    return root


@pytest.fixture
def host_tree(tmp_path: Path) -> Callable[..., Path]:
    """Factory: `host_tree(cgroup="v1", debugfs=False, ...)` -> the root of a fresh tree."""
    count = iter(range(1000))

    def make(**kwargs) -> Path:
        root = tmp_path / f"host{next(count)}"
        root.mkdir()
        return build_host_tree(root, **kwargs)

    return make
