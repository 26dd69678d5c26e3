"""cgroupfs for the memory controller: directories, cgroup.procs, errno (issue item 2).

Paths and errno are the kernel's: EEXIST, ENOENT, EBUSY, ESRCH, EINVAL. Memcgs
appear in lru_gen under their id and path as soon as they exist and vanish with
rmdir; failed operations change nothing.
"""

from __future__ import annotations

import errno

import pytest
from kernel_checks import CGROOT, LRU_GEN, parse_lru_gen, snapshot

from mglru import SimKernel


@pytest.fixture
def k() -> SimKernel:
    k = SimKernel("v6.14", node_bytes=(64 << 20,), debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/a/b")
    return k


def fails(k: SimKernel, err: int, fn, *args) -> None:
    snap = snapshot(k)
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == err, (fn, args, e.value)
    assert snapshot(k) == snap


def memcgs(k: SimKernel) -> dict[int, str]:
    return {m.id: m.path for m in parse_lru_gen(k.read(LRU_GEN)).values()}


def test_mkdir_and_rmdir_errno(k: SimKernel) -> None:
    """mkdir of an existing directory (or the root) is EEXIST, below a missing parent
    ENOENT; rmdir of a missing directory is ENOENT, of the root or a cgroup with tasks
    or children EBUSY."""
    fails(k, errno.EEXIST, k.mkdir, CGROOT + "/a")
    fails(k, errno.EEXIST, k.mkdir, CGROOT + "/a/b")
    fails(k, errno.EEXIST, k.mkdir, CGROOT)
    fails(k, errno.ENOENT, k.mkdir, CGROOT + "/x/y")
    fails(k, errno.ENOENT, k.rmdir, CGROOT + "/x")
    fails(k, errno.EBUSY, k.rmdir, CGROOT)
    fails(k, errno.EBUSY, k.rmdir, CGROOT + "/a")  # has a child
    p = k.spawn(memcg="/a/b")
    fails(k, errno.EBUSY, k.rmdir, CGROOT + "/a/b")  # has a task
    k.write(CGROOT + "/cgroup.procs", str(p.pid))
    k.rmdir(CGROOT + "/a/b")
    k.rmdir(CGROOT + "/a")
    assert memcgs(k) == {1: "/"}


def test_cgroup_procs_errno(k: SimKernel) -> None:
    """Writing a pid: unknown or exited pid ESRCH, not a number EINVAL, missing cgroup
    ENOENT; surrounding white space is accepted; cgroup.procs lists pids one per line."""
    p = k.spawn(memcg="/a")
    q = k.spawn(memcg="/a")
    assert k.read(CGROOT + "/a/cgroup.procs") == f"{p.pid}\n{q.pid}\n"
    procs = CGROOT + "/a/b/cgroup.procs"
    fails(k, errno.ESRCH, k.write, procs, "99999")
    for text in ("abc", "-1", "\n", "1 2", "0x"):
        fails(k, errno.EINVAL, k.write, procs, text)
    # a zero-byte write returns 0 before any parsing (cgroup_file_write)
    snap = snapshot(k)
    assert k.write(procs, "") == 0 and snapshot(k) == snap
    fails(k, errno.ENOENT, k.write, CGROOT + "/zz/cgroup.procs", str(p.pid))
    fails(k, errno.ENOENT, k.read, CGROOT + "/zz/cgroup.procs")
    assert k.write(procs, f" {p.pid}\n") == len(f" {p.pid}\n")
    assert k.read(procs) == f"{p.pid}\n"
    assert k.read(CGROOT + "/a/cgroup.procs") == f"{q.pid}\n"
    k.exit_task(q)
    fails(k, errno.ESRCH, k.write, procs, str(q.pid))
    assert k.read(CGROOT + "/a/cgroup.procs") == ""


def test_memcg_ids_and_paths_in_lru_gen(k: SimKernel) -> None:
    """Ids are allocated lowest-free from 2 (root = 1) and reused after rmdir
    (docs/architecture.md); lru_gen lists memcgs in pre-order with their paths; a
    removed memcg's id is rejected by lru_gen writes (EINVAL)."""
    k.mkdir(CGROOT + "/c")
    assert memcgs(k) == {1: "/", 2: "/a", 3: "/a/b", 4: "/c"}
    assert list(parse_lru_gen(k.read(LRU_GEN))) == [1, 2, 3, 4]
    k.rmdir(CGROOT + "/a/b")
    fails(k, errno.EINVAL, k.write, LRU_GEN, "+ 3 0 3")
    k.mkdir(CGROOT + "/c/d")
    assert memcgs(k) == {1: "/", 2: "/a", 3: "/c/d", 4: "/c"}
    assert list(parse_lru_gen(k.read(LRU_GEN))) == [1, 2, 4, 3]  # pre-order: /c before /c/d
