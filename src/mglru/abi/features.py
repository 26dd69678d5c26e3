"""Which kernel feature a failed file access points at, and how to get it.

Tools read `/sys/kernel/mm/lru_gen/*` and `/sys/kernel/debug/lru_gen*`; when
such an access fails with ENOENT/EACCES/EPERM the cause is a missing feature
(CONFIG_LRU_GEN, debugfs not mounted, not root), not a bug. `explain_os_error`
turns those errors into a `FeatureUnavailable` that says which feature and how
to get it, as damo does; other errors are left to the caller.

The diagnosis uses the protocol only: the mount table tells whether debugfs is
mounted (when the backend has one), the lru_gen sysfs directory tells whether
the kernel has MGLRU at all.
"""

from __future__ import annotations

import errno

from mglru.abi.cgroup import read_mounts
from mglru.abi.kernel import DEBUGFS, LRU_GEN_ENABLED, FeatureUnavailable, Kernel

__all__ = ["explain_os_error", "require_lru_gen"]

_LRU_GEN_SYSFS = "/sys/kernel/mm/lru_gen"
_NO_LRU_GEN_HINT = ("boot a kernel built with CONFIG_LRU_GEN=y (Linux 6.1 or later), "
                    "check with: grep CONFIG_LRU_GEN /boot/config-$(uname -r)")
_MOUNT_DEBUGFS_HINT = f"mount it with: mount -t debugfs none {DEBUGFS}"
_ROOT_HINT = "run as root"


def _debugfs_mounted(kernel: Kernel) -> bool | None:
    """True/False from the mount table, None if there is none."""
    mounts = read_mounts(kernel)
    if mounts is None:
        return None
    return any(m.fstype == "debugfs" and m.mountpoint == DEBUGFS for m in mounts)


def _no_lru_gen() -> FeatureUnavailable:
    return FeatureUnavailable("lru_gen", f"lru_gen is not available: {_LRU_GEN_SYSFS} does "
                              "not exist", _NO_LRU_GEN_HINT)


def explain_os_error(kernel: Kernel, path: str, err: OSError) -> FeatureUnavailable | None:
    """Map a failed access to an lru_gen file to the missing feature, if that is the cause.

    Args:
        kernel: the backend the access went to.
        path: the kernel-view path that failed.
        err: the error raised.

    Returns:
        A `FeatureUnavailable` to raise instead, or None if `err` is not about
        a missing feature (e.g. EINVAL from a bad command).
    """
    denied = err.errno in (errno.EACCES, errno.EPERM)
    if err.errno != errno.ENOENT and not denied:
        return None
    if path.startswith(_LRU_GEN_SYSFS + "/") or path == _LRU_GEN_SYSFS:
        if denied:
            return FeatureUnavailable("permission", f"permission denied on {path}", _ROOT_HINT)
        return _no_lru_gen()
    if not path.startswith(DEBUGFS + "/"):
        return None
    if not kernel.exists(LRU_GEN_ENABLED):
        return _no_lru_gen()
    mounted = _debugfs_mounted(kernel)
    if mounted is False:
        return FeatureUnavailable("debugfs", f"debugfs is not mounted at {DEBUGFS}",
                                  _MOUNT_DEBUGFS_HINT)
    if denied:
        return FeatureUnavailable("debugfs", f"{path} is not accessible: permission denied "
                                  f"(debugfs at {DEBUGFS} is usually mode 0700)", _ROOT_HINT)
    if mounted is None:
        return FeatureUnavailable("debugfs", f"{path} does not exist; is debugfs mounted at "
                                  f"{DEBUGFS}?", _MOUNT_DEBUGFS_HINT)
    return FeatureUnavailable("lru_gen debugfs", f"{path} does not exist although debugfs is "
                              "mounted", "the kernel needs CONFIG_LRU_GEN=y and CONFIG_DEBUG_FS=y")


def require_lru_gen(kernel: Kernel, path: str) -> None:
    """Raise `FeatureUnavailable` unless `path` (an lru_gen file) exists.

    Raises:
        FeatureUnavailable: the feature behind `path` is missing.
    """
    if kernel.exists(path):
        return
    err = OSError(errno.ENOENT, "No such file or directory", path)
    raise explain_os_error(kernel, path, err) or FeatureUnavailable(
        "lru_gen", f"{path} does not exist")
