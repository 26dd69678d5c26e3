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
from mglru.lru_gen.kstrto import kstrtoint, memparse, simple_strntoull, strstrip
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
        return _tunable(memcg.memory_min)
    if name == "memory.events":
        return (f"low 0\nhigh 0\nmax {memcg.nr_max_events}\noom {memcg.nr_oom_events}\n"
                f"oom_kill {memcg.nr_oom_kills}\noom_group_kill 0\n")
    if name == "memory.reclaim":
        raise OSError(errno.EINVAL, "Invalid argument")  # write-only
    assert name == "memory.max"
    return _tunable(PAGE_COUNTER_MAX if memcg.memory_max is None else memcg.memory_max)


def _tunable(pages: int) -> str:
    """seq_puts_memcg_tunable(): "max" for PAGE_COUNTER_MAX, else bytes."""
    return "max\n" if pages == PAGE_COUNTER_MAX else f"{pages * PAGE_SIZE}\n"


#: cgroup_kf_ops.atomic_write_len (kernel/cgroup/cgroup.c): a longer write is E2BIG
CGROUP_WRITE_MAX = PAGE_SIZE
#: PAGE_COUNTER_MAX on 64-bit (include/linux/page_counter.h): LONG_MAX / PAGE_SIZE pages
PAGE_COUNTER_MAX = ((1 << 63) - 1) // PAGE_SIZE
_WRITABLE = ("cgroup.procs", "memory.max", "memory.min", "memory.reclaim",
             "cgroup.subtree_control")


def write(k: SimKernel, rel: str, data: str) -> int:
    """Write a cgroup file; returns the bytes accepted.

    `data` holds the written bytes as Latin-1 characters. The kernfs rules
    come first (fs/kernfs/file.c): read-only files refuse the open (EACCES),
    a write over atomic_write_len (4 KiB) is E2BIG, a zero-byte write is 0
    (cgroup_file_write); the handler then sees a C string (a NUL ends it).
    """
    memcg, name = _split(k, rel)
    if memcg is None or not name or (memcg.parent is None and name in _ROOT_ONLY_ABSENT):
        raise OSError(errno.ENOENT, "No such file or directory")
    if name not in _WRITABLE:
        raise OSError(errno.EACCES, "Permission denied")
    if len(data) > CGROUP_WRITE_MAX:
        raise OSError(errno.E2BIG, "Argument list too long")
    if not data:
        return 0
    text = strstrip(data.split("\0", 1)[0])
    if name == "cgroup.procs":
        _procs_write(k, memcg, text)
    elif name == "memory.max":
        memory_max_write(k, memcg, page_counter_memparse(text, "max"))
    elif name == "memory.min":
        memcg.memory_min = page_counter_memparse(text, "max")
    elif name == "memory.reclaim":
        memory_reclaim(k, memcg, text)
    else:
        for tok in text.split(" "):  # cgroup_subtree_control_write()
            if tok and tok not in ("+memory", "-memory"):
                raise OSError(errno.EINVAL, "Invalid argument")
    return len(data)


def _procs_write(k: SimKernel, memcg: MemCgroup, text: str) -> None:
    """cgroup_procs_write_start(): kstrtoint(base 0), negative is EINVAL."""
    try:
        pid = kstrtoint(text, 0)
    except OSError:
        raise OSError(errno.EINVAL, "Invalid argument") from None
    if pid < 0:
        raise OSError(errno.EINVAL, "Invalid argument")
    p = k.procs.get(pid)
    if p is None:
        raise OSError(errno.ESRCH, "No such process")
    k.move_task(p, memcg)


def memory_max_write(k: SimKernel, memcg: MemCgroup, max_pages: int) -> None:
    """memory_max_write(): set the limit, reclaim down to it, then OOM-kill.

    MAX_RECLAIM_RETRIES fruitless reclaim passes are allowed before the OOM
    killer runs, until usage is under the limit or nothing is left to kill.
    """

    if max_pages >= PAGE_COUNTER_MAX:
        memcg.memory_max = None
        return
    memcg.memory_max = max_pages
    nr_reclaims = MAX_RECLAIM_RETRIES
    while memcg.nr_charged > memcg.memory_max:
        if nr_reclaims:
            if not try_to_free_mem_cgroup_pages(k, memcg, memcg.nr_charged - memcg.memory_max):
                nr_reclaims -= 1
            continue
        memcg.nr_oom_events += 1
        if k.oom_kill("memory.max", memcg) is None:
            break


def page_counter_memparse(buf: str, max_token: str) -> int:
    """page_counter_memparse() (mm/page_counter.c): pages, capped at PAGE_COUNTER_MAX.

    `max_token` is PAGE_COUNTER_MAX; otherwise memparse() must consume the whole
    string: an empty one is 0 (memparse parses nothing and the end is the NUL),
    values wrap modulo 2**64 as memparse's do.

    Raises:
        OSError: EINVAL if anything follows the number.
    """
    if buf == max_token:
        return PAGE_COUNTER_MAX
    nbytes, end = memparse(buf)
    if end != len(buf):
        raise OSError(errno.EINVAL, "Invalid argument")
    return min(nbytes // PAGE_SIZE, PAGE_COUNTER_MAX)


#: match_number()'s NUMBER_BUF_LEN (lib/parser.c): longer arguments are ERANGE
_NUMBER_BUF_LEN = 24


def _match_swappiness(tok: str) -> int:
    """match_token(tok, "swappiness=%d") then match_int() (lib/parser.c).

    %d is simple_strtol() (an optional '-', then simple_strtoull base 0) and
    must end the token; match_number() then rejects arguments of 24 bytes or
    more and values outside int.

    Raises:
        OSError: EINVAL for no match or a bad number.
    """
    arg = tok[len("swappiness="):]
    neg = arg[:1] == "-"
    value, end = simple_strntoull(arg, 1 if neg else 0, 0)
    if not tok.startswith("swappiness=") or end == 0 or end != len(arg) \
            or len(arg) >= _NUMBER_BUF_LEN:
        raise OSError(errno.EINVAL, "Invalid argument")
    value = (-value if neg else value) & ((1 << 64) - 1)
    value = value - (1 << 64) if value >= 1 << 63 else value
    if not -(1 << 31) <= value < 1 << 31:
        raise OSError(errno.EINVAL, "Invalid argument")
    return value


def memory_reclaim(k: SimKernel, memcg: MemCgroup, buf: str) -> None:
    """memory.reclaim: "<bytes> [swappiness=N|max]", proactive reclaim in batches.

    memory_reclaim() (mm/memcontrol.c): memparse() the stripped buffer (no
    digits: EINVAL), then space-separated tokens, each "swappiness=%d" with
    0 <= N <= MAX_SWAPPINESS (v6.16 adds "swappiness=max").

    Raises:
        OSError: EINVAL for bad input (nothing reclaimed), EAGAIN if the amount
            could not be reclaimed after MAX_RECLAIM_RETRIES fruitless tries.
    """

    nbytes, end = memparse(buf)
    if end == 0:
        raise OSError(errno.EINVAL, "Invalid argument")
    swappiness = None
    if k.cfg.reclaim_rules_6_1 and strstrip(buf[end:]):
        # 6.1: page_counter_memparse() of the whole buffer, no tokens (mm/memcontrol.c)
        raise OSError(errno.EINVAL, "Invalid argument")
    for tok in strstrip(buf[end:]).split(" "):
        if not tok:
            continue
        if tok == "swappiness=max" and k.cfg.swappiness_max_token:
            swappiness = SWAPPINESS_ANON_ONLY
            continue
        swappiness = _match_swappiness(tok)
        if not 0 <= swappiness <= MAX_SWAPPINESS:
            raise OSError(errno.EINVAL, "Invalid argument")
    nr_to_reclaim = nbytes >> PAGE_SHIFT
    nr_reclaimed = 0
    retries = MAX_RECLAIM_RETRIES
    while nr_reclaimed < nr_to_reclaim:
        # 6.1 asks for all that is left at once; later kernels for a quarter of it
        # (memory_reclaim(), mm/memcontrol.c 6.1 and 6.12)
        batch = nr_to_reclaim - nr_reclaimed
        if not k.cfg.reclaim_rules_6_1:
            batch //= 4
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


#: PATH_MAX (include/uapi/linux/limits.h): getname() refuses a path this long or longer
PATH_MAX = 4096


def mkdir(k: SimKernel, path: str, root: str) -> None:
    """mkdir(2) below the cgroup root.

    The path is a C string (a NUL ends it); getname() (fs/namei.c) refuses
    one of PATH_MAX bytes or more (ENAMETOOLONG). cgroup_mkdir()
    (kernel/cgroup/cgroup.c) refuses a name with a newline (EINVAL), which
    would make /proc/<pid>/cgroup and lru_gen unparsable. v6.12 kernfs has
    no NAME_MAX check of its own (kernfs_iop_lookup, kernfs_new_node), so
    long names are accepted as the kernel accepts them.
    """
    path = path.split("\0", 1)[0]
    if len(path.encode("utf-8", "surrogatepass")) + 1 > PATH_MAX:
        raise OSError(errno.ENAMETOOLONG, "File name too long", path)
    parts = _dir_parts(path, root)
    if not parts:
        raise OSError(errno.EEXIST, "File exists", path)
    parent = k.memcgs.lookup_path("/".join(parts[:-1]))
    if parent is None:
        raise OSError(errno.ENOENT, "No such file or directory", path)
    name = parts[-1]
    if name in FILES or parent.child(name) is not None:
        raise OSError(errno.EEXIST, "File exists", path)
    if "\n" in name:
        raise OSError(errno.EINVAL, "Invalid argument", path)
    if k.memcgs.alloc_id() < 0:  # xa_alloc() in mem_cgroup_alloc(): no free id
        raise OSError(errno.EBUSY, "Device or resource busy", path)
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
    walk = k.last_walk  # the walk is per call in the kernel: it must not keep a dead lruvec
    if walk is not None and any(walk.lruvec is lv for lv in memcg.lruvecs):
        k.last_walk = None
