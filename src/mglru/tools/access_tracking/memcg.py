"""The test's memory cgroup: create it, move the test into it, remove it at exit. v4 7/7.

As the v4 test does (`create_memcg`, `move_to_memcg`): `mkdir <root>/
access_tracking_perf_test`; if it exists, `rmdir` the stale one and retry;
then write the test's pid to its `cgroup.procs`. Unlike the C test, which
leaves the memcg behind for the next run to remove, the port removes it at
exit — after moving the test back to the root's `cgroup.procs`, since a
cgroup with tasks cannot be removed (EBUSY) — on success, failure and Ctrl-C.
Only paths are used, through the `Kernel` protocol.
"""

from __future__ import annotations

import errno
import posixpath
from collections.abc import Iterator
from contextlib import contextmanager

from mglru.abi.kernel import Kernel
from mglru.tools.access_tracking.ksft import Log, test_assert

__all__ = ["CGROUP_PROCS", "memcg_path", "create_memcg", "move_to_memcg", "remove_memcg",
           "test_memcg"]

CGROUP_PROCS = "cgroup.procs"


def memcg_path(cgroup_root: str, memcg: str) -> str:
    """path_join(cgroup_root, memcg)."""
    return posixpath.join(cgroup_root, memcg)


def create_memcg(kernel: Kernel, cgroup_root: str, memcg: str, log: Log) -> str:
    """mkdir the memcg, removing a stale one first; returns its path.

    Raises:
        TestFailure: rmdir of the stale memcg or the mkdir failed.
    """
    path = memcg_path(cgroup_root, memcg)
    while True:
        try:
            kernel.mkdir(path)
            break
        except OSError as e:
            if e.errno != errno.EEXIST:
                test_assert(False, f"Creating the memcg failed: mkdir({path}) failed "
                                   f"({e.strerror})", "!ret")
        try:
            kernel.rmdir(path)
        except OSError as e:
            test_assert(False, f"Found existing memcg at {path}, but rmdir failed "
                               f"({e.strerror})", "!rmdir(full_memcg_path)")
    log.pr_info(f"Created memcg at {path}")
    return path


def _write_pid(kernel: Kernel, directory: str, pid: int) -> None:
    """write_file_long(<directory>/cgroup.procs, pid)."""
    procs = memcg_path(directory, CGROUP_PROCS)
    try:
        kernel.write(procs, f"{pid}\n")
    except OSError as e:
        test_assert(False, f"fprintf to {procs} failed ({e.strerror})", "fprintf(f, ...) > 0")


def move_to_memcg(kernel: Kernel, path: str, pid: int) -> None:
    """Write `pid` to the memcg's cgroup.procs.

    Raises:
        TestFailure: the write failed.
    """
    _write_pid(kernel, path, pid)


def remove_memcg(kernel: Kernel, cgroup_root: str, path: str, pid: int, log: Log) -> bool:
    """Move `pid` back to `cgroup_root` and rmdir the memcg; returns whether it is gone.

    Never raises: a failure is reported on stderr (the run's result stands).
    """
    try:
        if kernel.exists(path):
            kernel.write(memcg_path(cgroup_root, CGROUP_PROCS), f"{pid}\n")
            kernel.rmdir(path)
    except OSError as e:
        print(f"WARNING: could not remove memcg {path}: {e.strerror or e}", file=log.err)
        return False
    return True


@contextmanager
def test_memcg(kernel: Kernel, cgroup_root: str, memcg: str, pid: int,
               log: Log) -> Iterator[str]:
    """The test's memcg with the test inside, removed on the way out (whatever happens).

    Yields:
        The memcg's path.
    """
    path = create_memcg(kernel, cgroup_root, memcg, log)
    try:
        move_to_memcg(kernel, path, pid)
        yield path
    finally:
        removed = remove_memcg(kernel, cgroup_root, path, pid, log)
        log.record["memcg_removed"] = removed


test_memcg.__test__ = False  # type: ignore[attr-defined]
