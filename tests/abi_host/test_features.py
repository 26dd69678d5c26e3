"""Missing host features are named, with how to get them (lru_gen, debugfs, permissions)."""

from __future__ import annotations

import errno

import pytest

from mglru.abi import LRU_GEN, LRU_GEN_ENABLED, FeatureUnavailable, HostKernel, explain_os_error
from mglru.tools.lru_gen import read_caps, read_lru_gen, run_command


def test_no_lru_gen_in_the_kernel(host_tree):
    """No /sys/kernel/mm/lru_gen: the feature is lru_gen, the hint is CONFIG_LRU_GEN."""
    k = HostKernel(host_tree(lru_gen=False))
    for action in (lambda: read_lru_gen(k), lambda: read_caps(k)):
        with pytest.raises(FeatureUnavailable) as info:
            action()
        assert info.value.feature == "lru_gen"
        assert "/sys/kernel/mm/lru_gen does not exist" in info.value.reason
        assert "CONFIG_LRU_GEN=y" in info.value.hint


def test_debugfs_not_mounted(host_tree):
    """lru_gen present, debugfs not in the mount table: say so and how to mount it."""
    k = HostKernel(host_tree(debugfs=False))
    with pytest.raises(FeatureUnavailable) as info:
        read_lru_gen(k)
    e = info.value
    assert e.feature == "debugfs"
    assert e.reason == "debugfs is not mounted at /sys/kernel/debug"
    assert e.hint == "mount it with: mount -t debugfs none /sys/kernel/debug"
    assert str(e) == f"{e.reason}; {e.hint}"


def test_debugfs_missing_without_a_mount_table(host_tree):
    """Without a mount table we cannot tell, so we ask whether debugfs is mounted."""
    k = HostKernel(host_tree(debugfs=False, mounts=False))
    with pytest.raises(FeatureUnavailable, match="is debugfs mounted at /sys/kernel/debug"):
        read_lru_gen(k, full=True)


def test_debugfs_mounted_but_no_lru_gen_file(host_tree):
    """debugfs mounted yet no lru_gen: the kernel lacks CONFIG_LRU_GEN or CONFIG_DEBUG_FS."""
    root = host_tree()
    (root / "sys/kernel/debug/lru_gen").unlink()
    with pytest.raises(FeatureUnavailable) as info:
        read_lru_gen(HostKernel(root))
    assert info.value.feature == "lru_gen debugfs"
    assert "CONFIG_DEBUG_FS=y" in info.value.hint


def test_permission_denied_means_run_as_root(host_tree):
    """EACCES on debugfs (mode 0700 for non-root) is a feature error with a root hint."""
    k = HostKernel(host_tree())
    found = explain_os_error(k, LRU_GEN, OSError(errno.EACCES, "Permission denied", LRU_GEN))
    assert found is not None and found.feature == "debugfs"
    assert "permission denied" in found.reason and found.hint == "run as root"
    found = explain_os_error(k, LRU_GEN_ENABLED,
                             OSError(errno.EPERM, "Operation not permitted", LRU_GEN_ENABLED))
    assert found is not None and found.hint == "run as root"


def test_command_errors_are_not_feature_errors(host_tree):
    """EINVAL from a command is the command's fault, not a missing feature."""
    k = HostKernel(host_tree())
    assert explain_os_error(k, LRU_GEN, OSError(errno.EINVAL, "Invalid argument")) is None
    assert explain_os_error(k, "/sys/fs/cgroup/x", OSError(errno.ENOENT, "")) is None


def test_writing_without_debugfs_is_a_feature_error(host_tree):
    """run_command on a host without debugfs raises FeatureUnavailable, not OSError."""
    k = HostKernel(host_tree(debugfs=False))
    with pytest.raises(FeatureUnavailable, match="debugfs is not mounted"):
        run_command(k, "+ 1 0 3 1 1\n")
