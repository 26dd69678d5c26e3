"""Memory cgroups: the hierarchy, ids, paths and per-node lruvecs. mm/memcontrol.c.

Memcg ids are allocated like the kernel's (lowest free id, root = 1, at most
MEM_CGROUP_ID_MAX; the next mkdir then fails with EBUSY). A memcg
owns an `mm_list` (FIFO of mm_structs whose owner task is in it, shared by all
nodes) and one lruvec per node.

Decision: `rmdir` of a memcg that still has charged pages reparents them to the
parent's lruvec (the pre-objcg behaviour) instead of keeping an offline memcg
visible; the kernel refuses rmdir only while tasks or children remain (EBUSY).
"""

from __future__ import annotations

import heapq
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
        self._child_by_name: dict[str, MemCgroup] = {}
        self.online = True
        self.swappiness = DEF_SWAPPINESS
        self.procs: list[Process] = []
        #: mm_list: FIFO of mms owned by tasks of this memcg (mm/vmscan.c: lru_gen_add_mm())
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
        """cgroup path as lru_gen prints it: `/` for root, `/a/b` below (no recursion)."""
        names = []
        m: MemCgroup | None = self
        while m is not None and m.parent is not None:
            names.append(m.name)
            m = m.parent
        return "/" + "/".join(reversed(names))

    def child(self, name: str) -> MemCgroup | None:
        """The child directory called `name`, if any."""
        return self._child_by_name.get(name)

    def __repr__(self) -> str:
        return f"MemCgroup(id={self.id}, path={self.path!r})"

    def charge(self, nr: int) -> None:
        """page_counter_charge (nr < 0: uncharge): this memcg and every ancestor."""
        m: MemCgroup | None = self
        while m is not None:
            m.nr_charged += nr
            m = m.parent

    def iter_preorder(self):
        """mem_cgroup_iter order: this memcg, then each child subtree in creation order.

        An explicit stack, not recursion: a hierarchy may be thousands deep.
        """
        stack = [self]
        while stack:
            memcg = stack.pop()
            yield memcg
            stack.extend(reversed(memcg.children))


class MemcgTree:
    """All memcgs, by id and by path.

    Ids come from mem_cgroup_alloc()'s xa_alloc(XA_LIMIT(1, MEM_CGROUP_ID_MAX))
    (mm/memcontrol.c): the lowest free id, found here in O(log n) from a heap
    of freed ids below a never-used cursor.
    """

    def __init__(self) -> None:
        self.root = MemCgroup(1, "", None)
        self.by_id: dict[int, MemCgroup] = {1: self.root}
        self._next_id = 2
        self._freed: list[int] = []

    def lookup_path(self, rel: str) -> MemCgroup | None:
        """Find a memcg by its path relative to the cgroup root (`""` = root)."""
        memcg: MemCgroup | None = self.root
        for part in rel.split("/"):
            if part and memcg is not None:
                memcg = memcg.child(part)
        return memcg

    def alloc_id(self) -> int:
        """Lowest free id >= 1 (peeked, not taken); -1 when all are taken."""
        if self._freed:
            return self._freed[0]
        return self._next_id if self._next_id <= MEM_CGROUP_ID_MAX else -1

    def _take_id(self) -> int:
        if self._freed:
            return heapq.heappop(self._freed)
        self._next_id += 1
        return self._next_id - 1

    def create(self, parent: MemCgroup, name: str) -> MemCgroup:
        """Add a child memcg (the caller checked the name and an id are free)."""
        memcg = MemCgroup(self._take_id(), name, parent)
        parent.children.append(memcg)
        parent._child_by_name[name] = memcg
        self.by_id[memcg.id] = memcg
        return memcg

    def remove(self, memcg: MemCgroup) -> None:
        """Unlink a memcg and free its id."""
        assert memcg.parent is not None
        memcg.parent.children.remove(memcg)
        del memcg.parent._child_by_name[memcg.name]
        memcg.online = False
        del self.by_id[memcg.id]
        heapq.heappush(self._freed, memcg.id)
