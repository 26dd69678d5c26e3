"""HostKernel: the Kernel protocol over a directory tree laid out like a real host."""

from __future__ import annotations

import errno
import os

import pytest

from mglru import SimKernel
from mglru.abi import (
    LRU_GEN,
    LRU_GEN_ENABLED,
    CgroupHierarchy,
    FeatureUnavailable,
    HostKernel,
    Kernel,
    cgroup_root,
    find_memory_cgroup,
    parse_mounts,
)


def test_both_backends_satisfy_the_kernel_protocol(tmp_path):
    """SimKernel and HostKernel are both `Kernel`s; tools need nothing else."""
    assert isinstance(SimKernel("v6.10"), Kernel)
    assert isinstance(HostKernel(tmp_path), Kernel)


def test_read_maps_kernel_paths_under_root(host_tree):
    """read() returns the file under the root; errors carry the kernel-view path."""
    k = HostKernel(host_tree(enabled="0x0007\n"))
    assert k.read(LRU_GEN_ENABLED) == "0x0007\n"
    assert k.exists("/sys/kernel/mm/lru_gen")
    with pytest.raises(OSError) as info:
        k.read("/sys/kernel/mm/lru_gen/nope")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "/sys/kernel/mm/lru_gen/nope"


def test_paths_cannot_escape_the_root(host_tree, tmp_path):
    """'..' is resolved in the kernel's namespace, so it stops at the root."""
    root = host_tree()
    k = HostKernel(root)
    assert k.host_path("/../../sys/kernel/mm/lru_gen/enabled") == \
        str(root / "sys/kernel/mm/lru_gen/enabled")
    assert k.host_path("/") == str(root)


def test_write_is_one_truncating_write_and_never_creates(host_tree):
    """write() replaces the contents like `echo cmd > file` and returns the bytes written."""
    root = host_tree()
    k = HostKernel(root)
    assert k.write(LRU_GEN, "+ 42 0 8 1 1\n") == 13
    assert (root / "sys/kernel/debug/lru_gen").read_text() == "+ 42 0 8 1 1\n"
    with pytest.raises(OSError) as info:
        k.write("/sys/kernel/mm/lru_gen/new_knob", "1")
    assert info.value.errno == errno.ENOENT
    assert info.value.filename == "/sys/kernel/mm/lru_gen/new_knob"
    assert not (root / "sys/kernel/mm/lru_gen/new_knob").exists()


def test_access_checks_open_modes(host_tree):
    """access() answers whether open(2) would succeed, as the selftest probes debugfs."""
    k = HostKernel(host_tree())
    assert k.access(LRU_GEN, write=True)
    assert not k.access("/sys/kernel/debug/missing")


def test_v2_detected_from_the_mount_table(host_tree):
    """cgroup2 whose cgroup.controllers lists memory is the hierarchy."""
    k = HostKernel(host_tree(cgroup="v2"))
    assert k.cgroup == CgroupHierarchy(2, "/sys/fs/cgroup")
    assert k.cgroup_root == "/sys/fs/cgroup"


def test_v1_detected_on_a_hybrid_host(host_tree):
    """A v1 memory mount wins over a cgroup2 'unified' mount without memory."""
    k = HostKernel(host_tree(cgroup="v1"))
    assert k.cgroup == CgroupHierarchy(1, "/sys/fs/cgroup/memory")


@pytest.mark.parametrize(("cgroup", "expected"), [
    ("v2", CgroupHierarchy(2, "/sys/fs/cgroup")),
    ("v1", CgroupHierarchy(1, "/sys/fs/cgroup/memory")),
])
def test_detected_from_layout_without_a_mount_table(host_tree, cgroup, expected):
    """Without /proc/self/mounts the conventional layout is probed."""
    assert HostKernel(host_tree(cgroup=cgroup, mounts=False)).cgroup == expected


@pytest.mark.parametrize(("cgroup", "mounts", "fragment"), [
    ("v2-nomem", True, "cgroup2 at /sys/fs/cgroup lacks the memory controller"),
    (None, True, "no memory cgroup hierarchy found in /proc/self/mounts"),
    (None, False, "at /sys/fs/cgroup or /sys/fs/cgroup/memory"),
])
def test_missing_memory_cgroup_says_what_and_how(host_tree, cgroup, mounts, fragment):
    """No memory hierarchy: FeatureUnavailable naming where we looked and how to mount one."""
    k = HostKernel(host_tree(cgroup=cgroup, mounts=mounts))
    with pytest.raises(FeatureUnavailable) as info:
        k.cgroup  # noqa: B018 (the property detects)
    assert info.value.feature == "memory cgroup"
    assert fragment in str(info.value)
    assert "mount -t cgroup2" in info.value.hint


def test_given_cgroup_root_is_checked(host_tree):
    """`-r`: the given root is used if it is a memory hierarchy, else reported."""
    root = host_tree(cgroup="v1")
    assert HostKernel(root, cgroup_root="/sys/fs/cgroup/memory/").cgroup == \
        CgroupHierarchy(1, "/sys/fs/cgroup/memory")
    with pytest.raises(FeatureUnavailable, match="hierarchy at /sys/fs/cgroup/cpu: expected"):
        HostKernel(root, cgroup_root="/sys/fs/cgroup/cpu").cgroup  # noqa: B018


def test_mkdir_rmdir_inside_the_hierarchy_only(host_tree):
    """mkdir/rmdir act below the memory cgroup root; elsewhere EPERM, as SimKernel."""
    root = host_tree(cgroup="v1")
    k = HostKernel(root)
    k.mkdir("/sys/fs/cgroup/memory/access_tracking_perf_test")
    assert (root / "sys/fs/cgroup/memory/access_tracking_perf_test").is_dir()
    with pytest.raises(OSError) as info:
        k.mkdir("/sys/fs/cgroup/memory/access_tracking_perf_test")
    assert info.value.errno == errno.EEXIST
    k.rmdir("/sys/fs/cgroup/memory/access_tracking_perf_test")
    assert not (root / "sys/fs/cgroup/memory/access_tracking_perf_test").exists()
    for bad in ("/sys/fs/cgroup/cpu/x", "/tmp/x"):
        with pytest.raises(OSError) as info:
            k.mkdir(bad)
        assert info.value.errno == errno.EPERM
    with pytest.raises(OSError) as info:
        k.rmdir("/sys/fs/cgroup/memory")
    assert info.value.errno == errno.EPERM


def test_mount_table_unescapes_octal():
    """Mount points with spaces are escaped as \\040 in /proc/self/mounts."""
    (m,) = parse_mounts("cgroup2 /mnt/my\\040cg cgroup2 rw,relatime 0 0\nshort line\n")
    assert (m.mountpoint, m.fstype, m.options) == ("/mnt/my cg", "cgroup2", ("rw", "relatime"))


def test_cgroup_root_of_the_simulated_kernel():
    """The same discovery works on SimKernel: v2 at /sys/fs/cgroup."""
    k = SimKernel("v6.10")
    assert find_memory_cgroup(k) == CgroupHierarchy(2, "/sys/fs/cgroup")
    assert cgroup_root(k) == "/sys/fs/cgroup"


def test_the_real_host_is_readable_or_reports_a_feature():
    """On this machine, discovery either finds a hierarchy or says what is missing."""
    host = HostKernel()
    assert host.exists("/proc/self/mounts") == os.path.exists("/proc/self/mounts")
    try:
        found = host.cgroup
    except FeatureUnavailable as e:
        assert e.feature == "memory cgroup"
    else:
        assert found.version in (1, 2) and host.exists(found.root)
