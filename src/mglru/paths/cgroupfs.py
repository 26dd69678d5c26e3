"""cgroupfs (v2) for the memory controller: directories, cgroup.procs, memory.*.

Paths are relative to the cgroup root (`/sys/fs/cgroup`). errno follows the
kernel: EEXIST for an existing directory, ENOENT for a missing parent, EBUSY for
rmdir of a cgroup with tasks or children (or the root), ESRCH for an unknown
pid, EINVAL for a malformed number.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

from mglru.lru_gen.helpers import SWAPPINESS_ANON_ONLY
from mglru.lru_gen.kstrto import kstrtouint
from mglru.mm.memcg import MAX_SWAPPINESS
from mglru.mm.page import PAGE_SHIFT, PAGE_SIZE
from mglru.mm.vmstat import memory_stat_show
from mglru.paths.reclaim import MAX_RECLAIM_RETRIES, try_to_free_mem_cgroup_pages
from mglru.paths.reparent import reparent_memcg

if TYPE_CHECKING:
    from mglru.kernel import SimKernel
    from mglru.mm.memcg import MemCgroup

__all__ = ["read", "write", "mkdir", "rmdir", "exists", "FILES"]

#: files in every memcg directory
FILES = ("cgroup.procs", "cgroup.controllers", "cgroup.subtree_control", "memory.current",
         "memory.max", "memory.min", "memory.reclaim", "memory.events", "memory.stat")
_ROOT_ONLY_ABSENT = ("memory.current", "memory.max", "memory.min", "memory.events")


def _split(k: SimKernel, rel: str) -> tuple[MemCgroup | None, str]:
    """(memcg of the directory, file name or "") for a path below the root."""
    parts = [p for p in rel.split("/") if p]
    if parts and parts[-1] in FILES:
        memcg = k.memcgs.lookup_path("/".join(parts[:-1]))
        return memcg, parts[-1]
    return k.memcgs.lookup_path("/".join(parts)), ""


def exists(k: SimKernel, rel: str) -> bool:
    """Whether the directory or file exists."""
    memcg, name = _split(k, rel)
    return memcg is not None and not (memcg.parent is None and name in _ROOT_ONLY_ABSENT)


def read(k: SimKernel, rel: str) -> str:
    """Read a cgroup file."""
    memcg, name = _split(k, rel)
    if memcg is None or (memcg.parent is None and name in _ROOT_ONLY_ABSENT):
        raise OSError(errno.ENOENT, "No such file or directory")
    if not name:
        raise OSError(errno.EISDIR, "Is a directory")
    if name == "cgroup.procs":
        return "".join(f"{p.pid}\n" for p in sorted(memcg.procs, key=lambda p: p.pid))
    if name in ("cgroup.controllers", "cgroup.subtree_control"):
        return "memory\n"
    if name == "memory.current":
        return f"{memcg.nr_charged * PAGE_SIZE}\n"
    if name == "memory.stat":
        return memory_stat_show(k, memcg)
    if name == "memory.min":
        return f"{memcg.memory_min * PAGE_SIZE}\n"
    if name == "memory.events":
        return (f"low 0\nhigh 0\nmax {memcg.nr_max_events}\noom {memcg.nr_oom_events}\n"
                f"oom_kill {memcg.nr_oom_kills}\noom_group_kill 0\n")
    if name == "memory.reclaim":
        raise OSError(errno.EINVAL, "Invalid argument")  # write-only
    assert name == "memory.max"
    return "max\n" if memcg.memory_max is None else f"{memcg.memory_max * PAGE_SIZE}\n"


def write(k: SimKernel, rel: str, data: str) -> int:
    """Write a cgroup file; returns the bytes accepted."""
    memcg, name = _split(k, rel)
    if memcg is None or not name or (memcg.parent is None and name in _ROOT_ONLY_ABSENT):
        raise OSError(errno.ENOENT, "No such file or directory")
    text = data.strip()
    if name == "cgroup.procs":
        try:
            pid = kstrtouint(text, 0, bits=31)
        except OSError:
            raise OSError(errno.EINVAL, "Invalid argument") from None
        p = k.procs.get(pid)
        if p is None:
            raise OSError(errno.ESRCH, "No such process")
        k.move_task(p, memcg)
    elif name == "memory.max":
        if text == "max":
            memcg.memory_max = None
        else:
            try:
                memcg.memory_max = memparse_all(text) >> PAGE_SHIFT
            except OSError:
                raise OSError(errno.EINVAL, "Invalid argument") from None
            # memory_max_write(): reclaim down to the new limit, allowing
            # MAX_RECLAIM_RETRIES fruitless passes, then OOM-kill until under it

            nr_reclaims = MAX_RECLAIM_RETRIES
            while memcg.nr_charged > memcg.memory_max:
                if nr_reclaims:
                    if not try_to_free_mem_cgroup_pages(k, memcg,
                                                        memcg.nr_charged - memcg.memory_max):
                        nr_reclaims -= 1
                    continue
                memcg.nr_oom_events += 1
                if k.oom_kill("memory.max", memcg) is None:
                    break
    elif name == "memory.min":
        try:
            memcg.memory_min = memparse_all(text) >> PAGE_SHIFT
        except OSError:
            raise OSError(errno.EINVAL, "Invalid argument") from None
    elif name == "memory.reclaim":
        memory_reclaim(k, memcg, data)
    elif name == "cgroup.subtree_control":
        if text not in ("", "+memory", "-memory"):
            raise OSError(errno.EINVAL, "Invalid argument")
    else:
        raise OSError(errno.EACCES, "Permission denied")
    return len(data.encode())


_SUFFIX = {"k": 10, "m": 20, "g": 30, "t": 40, "p": 50, "e": 60}


def memparse(text: str) -> tuple[int, str]:
    """memparse(): a number (base 0) with an optional K/M/G/T/P/E suffix; returns the rest."""
    import re

    m = re.match(r"(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", text)
    if not m:
        return 0, text
    digits = m.group(1)
    value = int(digits, 16) if digits[:2].lower() == "0x" else int(digits, 8 if digits[0] == "0" else 10)
    rest = text[m.end():]
    if rest[:1].lower() in _SUFFIX:
        value <<= _SUFFIX[rest[0].lower()]
        rest = rest[1:]
    return value, rest


def memparse_all(text: str) -> int:
    """A whole memparse()d value (page_counter_memparse for memory.max/min)."""
    value, rest = memparse(text)
    if rest or text == rest:
        raise OSError(errno.EINVAL, "Invalid argument")
    return value


def memory_reclaim(k: SimKernel, memcg: MemCgroup, data: str) -> None:
    """memory.reclaim: "<bytes> [swappiness=N|max]", proactive reclaim in batches.

    Raises:
        OSError: EINVAL for bad input (nothing reclaimed), EAGAIN if the amount
            could not be reclaimed after MAX_RECLAIM_RETRIES fruitless tries.
    """

    buf = data.strip()
    nbytes, rest = memparse(buf)
    if rest == buf:
        raise OSError(errno.EINVAL, "Invalid argument")
    swappiness = None
    for tok in rest.strip().split(" "):
        if not tok:
            continue
        if tok == "swappiness=max" and k.cfg.swappiness_max_token:
            swappiness = SWAPPINESS_ANON_ONLY
        elif tok.startswith("swappiness="):
            try:
                swappiness = int(tok[len("swappiness="):])
            except ValueError:
                raise OSError(errno.EINVAL, "Invalid argument") from None
            if not 0 <= swappiness <= MAX_SWAPPINESS:
                raise OSError(errno.EINVAL, "Invalid argument")
        else:
            raise OSError(errno.EINVAL, "Invalid argument")
    nr_to_reclaim = nbytes >> PAGE_SHIFT
    nr_reclaimed = 0
    retries = MAX_RECLAIM_RETRIES
    while nr_reclaimed < nr_to_reclaim:
        batch = (nr_to_reclaim - nr_reclaimed) // 4
        reclaimed = try_to_free_mem_cgroup_pages(k, memcg, batch, swappiness, proactive=True)
        if not reclaimed:
            if not retries:
                raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
            retries -= 1
        nr_reclaimed += reclaimed


def _dir_parts(path: str, root: str) -> list[str]:
    if path != root and not path.startswith(root + "/"):
        raise OSError(errno.EPERM, "Operation not permitted", path)
    return [p for p in path[len(root):].split("/") if p]


def mkdir(k: SimKernel, path: str, root: str) -> None:
    """mkdir(2) below the cgroup root."""
    parts = _dir_parts(path, root)
    if not parts:
        raise OSError(errno.EEXIST, "File exists", path)
    parent = k.memcgs.lookup_path("/".join(parts[:-1]))
    if parent is None:
        raise OSError(errno.ENOENT, "No such file or directory", path)
    name = parts[-1]
    if name in FILES or any(c.name == name for c in parent.children):
        raise OSError(errno.EEXIST, "File exists", path)
    if k.memcgs.alloc_id() < 0:
        raise OSError(errno.ENOSPC, "No space left on device", path)
    k.create_memcg(parent, name)


def rmdir(k: SimKernel, path: str, root: str) -> None:
    """rmdir(2) below the cgroup root; charged pages go to the parent (see memcg)."""
    parts = _dir_parts(path, root)
    if not parts:
        raise OSError(errno.EBUSY, "Device or resource busy", path)
    memcg = k.memcgs.lookup_path("/".join(parts))
    if memcg is None:
        raise OSError(errno.ENOENT, "No such file or directory", path)
    if memcg.procs or memcg.children:
        raise OSError(errno.EBUSY, "Device or resource busy", path)

    reparent_memcg(k, memcg)
    k.memcgs.remove(memcg)
