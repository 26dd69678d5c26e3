"""Memory cgroups: the hierarchy, ids, paths and per-node lruvecs. Spec §2.1.

Memcg ids are allocated like the kernel's (lowest free id, root = 1). A memcg
owns an `mm_list` (FIFO of mm_structs whose owner task is in it, shared by all
nodes) and one lruvec per node.

Decision: `rmdir` of a memcg that still has charged pages reparents them to the
parent's lruvec (the pre-objcg behaviour) instead of keeping an offline memcg
visible; the kernel refuses rmdir only while tasks or children remain (EBUSY).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mglru.lru_gen.lruvec import Lruvec
    from mglru.mm.process import Mm, Process

__all__ = ["MemCgroup", "MemcgTree", "MEM_CGROUP_ID_MAX"]

MEM_CGROUP_ID_MAX = 0xFFFF


#: swappiness bounds and default (include/linux/swap.h; mm/vmscan.c: vm_swappiness)
MIN_SWAPPINESS = 0
MAX_SWAPPINESS = 200
DEF_SWAPPINESS = 60

class MemCgroup:
    """One memory cgroup."""

    def __init__(self, id_: int, name: str, parent: MemCgroup | None) -> None:
        self.id = id_
        self.name = name
        self.parent = parent
        self.children: list[MemCgroup] = []
        self.online = True
        self.swappiness = DEF_SWAPPINESS
        self.procs: list[Process] = []
        #: mm_list: FIFO of mms owned by tasks of this memcg (spec §3.3)
        self.mm_list: list[Mm] = []
        self.lruvecs: list[Lruvec] = []
        #: memory.max in pages (None = "max")
        self.memory_max: int | None = None
        #: pages charged (memory.current / PAGE_SIZE)
        #: pages charged to this memcg and its descendants (the page_counter's
        #: usage: memory.current; a charge goes up the hierarchy, see `charge`)
        self.nr_charged = 0
        #: memory.min in pages (reclaim protection)
        self.memory_min = 0
        #: memory.events counters: "max" (charges that hit memory.max), "oom", "oom_kill"
        self.nr_max_events = 0
        self.nr_oom_events = 0
        self.nr_oom_kills = 0
        #: memcg events counted on this memcg itself (memory.stat sums the subtree)
        self.events: Counter[str] = Counter()

    @property
    def path(self) -> str:
        """cgroup path as lru_gen prints it: `/` for root, `/a/b` below."""
        if self.parent is None:
            return "/"
        parent = self.parent.path
        return f"{parent}{self.name}" if parent == "/" else f"{parent}/{self.name}"

    def __repr__(self) -> str:
        return f"MemCgroup(id={self.id}, path={self.path!r})"

    def charge(self, nr: int) -> None:
        """page_counter_charge (nr < 0: uncharge): this memcg and every ancestor."""
        m: MemCgroup | None = self
        while m is not None:
            m.nr_charged += nr
            m = m.parent

    def iter_preorder(self):
        """mem_cgroup_iter order: this memcg, then each child subtree in creation order."""
        yield self
        for child in self.children:
            yield from child.iter_preorder()


class MemcgTree:
    """All memcgs, by id and by path."""

    def __init__(self) -> None:
        self.root = MemCgroup(1, "", None)
        self.by_id: dict[int, MemCgroup] = {1: self.root}

    def lookup_path(self, rel: str) -> MemCgroup | None:
        """Find a memcg by its path relative to the cgroup root (`""` = root)."""
        memcg = self.root
        for part in [p for p in rel.split("/") if p]:
            for child in memcg.children:
                if child.name == part:
                    memcg = child
                    break
            else:
                return None
        return memcg

    def alloc_id(self) -> int:
        """Lowest free id >= 1; -1 when all are taken."""
        for i in range(1, MEM_CGROUP_ID_MAX + 1):
            if i not in self.by_id:
                return i
        return -1

    def create(self, parent: MemCgroup, name: str) -> MemCgroup:
        """Add a child memcg (the caller checked the name is free)."""
        memcg = MemCgroup(self.alloc_id(), name, parent)
        parent.children.append(memcg)
        self.by_id[memcg.id] = memcg
        return memcg

    def remove(self, memcg: MemCgroup) -> None:
        """Unlink a memcg and free its id."""
        assert memcg.parent is not None
        memcg.parent.children.remove(memcg)
        memcg.online = False
        del self.by_id[memcg.id]
