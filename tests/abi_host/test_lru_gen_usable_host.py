"""lru_gen_usable on host trees: a missing enabled file, short reads, debugfs access."""

from __future__ import annotations

import pytest

from mglru.abi import LRU_GEN_ENABLED, FeatureUnavailable, HostKernel
from mglru.tools.lru_gen import check_lru_gen_usable, lru_gen_usable


def test_missing_enabled_file(host_tree):
    """No lru_gen: v4 says CONFIG_LRU_GEN is not enabled, upstream could not open the file."""
    k = HostKernel(host_tree(lru_gen=False))
    for rules, reason in (("v4", "CONFIG_LRU_GEN is not enabled"),
                          ("upstream", f"lru_gen: Could not open {LRU_GEN_ENABLED}")):
        with pytest.raises(FeatureUnavailable) as info:
            check_lru_gen_usable(k, rules)
        assert info.value.reason == reason
        assert "CONFIG_LRU_GEN=y" in info.value.hint
        assert not lru_gen_usable(k, rules)


def test_short_read_is_unusable_upstream_only(host_tree):
    """Upstream wants 7 bytes ("0x0007\\n"); v4 accepts any non-empty read."""
    k = HostKernel(host_tree(enabled="0xb\n"))
    assert check_lru_gen_usable(k, "v4") == 0xB
    with pytest.raises(FeatureUnavailable, match="lru_gen: Could not read from"):
        check_lru_gen_usable(k, "upstream")


def test_debugfs_must_open_read_write(host_tree):
    """Caps fine but no debugfs: both rules refuse, with the reason and how to mount it."""
    k = HostKernel(host_tree(debugfs=False, enabled="0x000f\n"))
    with pytest.raises(FeatureUnavailable) as info:
        check_lru_gen_usable(k, "v4")
    assert info.value.reason == "Cannot access /sys/kernel/debug/lru_gen"
    assert "debugfs is not mounted at /sys/kernel/debug; mount it with" in info.value.hint
    with pytest.raises(FeatureUnavailable, match="so cannot use page_idle"):
        check_lru_gen_usable(k, "upstream")


def test_non_root_on_debugfs_is_told_to_run_as_root(host_tree):
    """debugfs is 0700: for a non-root user stat() and open() fail with EACCES."""
    import errno

    class NonRootHost(HostKernel):
        def read(self, path):
            if path.startswith("/sys/kernel/debug/"):
                raise OSError(errno.EACCES, "Permission denied", path)
            return super().read(path)

        def exists(self, path):
            return not path.startswith("/sys/kernel/debug/") and super().exists(path)

        def access(self, path, write=False):
            return not path.startswith("/sys/kernel/debug/") and super().access(path, write)

    k = NonRootHost(host_tree(enabled="0x0007\n"))
    with pytest.raises(FeatureUnavailable) as info:
        check_lru_gen_usable(k, "upstream")
    assert "permission denied" in info.value.hint and info.value.hint.endswith("run as root")
