"""SimKernel: the embedded simulated kernel and its file interface.

    from mglru import SimKernel
    k = SimKernel(config="seed-v4", seed=0)     # preset + keyword overrides
    k.read("/sys/kernel/debug/lru_gen")         # the kernel's bytes
    k.write("/sys/kernel/debug/lru_gen", "+ 1 0 3\\n")
    k.mkdir("/sys/fs/cgroup/a")
    p = k.spawn(memcg="/a"); a = p.mmap(1 << 30); p.access(a, 1 << 30, write=True)

Paths and formats are the kernel's (mm/vmscan.c); bad writes raise `OSError` with
the kernel's errno and leave the state untouched. The model never reads a wall
clock: `tick(ms)` advances simulated time (jiffies at CONFIG_HZ).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import posixpath
from typing import Any

import numpy as np

from mglru import heap
from mglru.kvm import create_vm
from mglru.lru_gen import debugfs, sysfs
from mglru.lru_gen.folio import lru_gen_add_folio, lru_gen_del_folio
from mglru.lru_gen.lruvec import Lruvec
from mglru.lru_gen.mm_list import lru_gen_add_mm, lru_gen_del_mm, lru_gen_migrate_mm
from mglru.lru_gen.state import LruGenCaps
from mglru.mm import vmstat
from mglru.mm.filemap import File
from mglru.mm.memcg import MemCgroup, MemcgTree
from mglru.mm.memory import PhysMem
from mglru.mm.page import (
    PTE_DIRTY,
    PTE_WRITE,
    PG_active,
    PG_dirty,
    PG_lru,
    PG_reclaim,
    PG_writeback,
)
from mglru.mm.page_idle import PAGE_IDLE_BITMAP, page_idle_read, page_idle_write, pagemap_read
from mglru.mm.process import PageTables, Process
from mglru.mm.rmap import folio_mappings, rmap_enable
from mglru.mm.swap import SwapDevice, swap_setup_page_cluster
from mglru.paths import cgroupfs, swap_files
from mglru.paths.exit import exit_mmap
from mglru.paths.fault import file_read, user_access
from mglru.presets import KernelConfig, resolve_config, rules_of

__all__ = ["SimKernel", "KernelWarning", "KernelDeadlock", "CGROUP_ROOT"]

CGROUP_ROOT = "/sys/fs/cgroup"


class KernelWarning(AssertionError):
    """A WARN_ON_ONCE fired with `KernelConfig.debug` on (CONFIG_DEBUG_VM)."""


class KernelDeadlock(AssertionError):
    """The modelled kernel would hang here (e.g. a lock taken twice by one thread).

    Raised whatever `KernelConfig.debug` says: a real kernel does not go on.
    """


class SimKernel:
    """The embedded simulated kernel. See the module docstring."""

    #: the backend kind (see `mglru.abi.kernel.kernel_kind`)
    kind = "sim"

    def __init__(self, config: str | KernelConfig = "v6.10", seed: int = 0,
                 **overrides: Any) -> None:
        self.cfg = resolve_config(config, **overrides)
        #: what this configuration does, decided once (`mglru.presets.Rules`)
        self.rules = rules_of(self.cfg)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.clock_ns = 0
        self.mem = PhysMem(self.cfg.node_bytes)
        self.caps = LruGenCaps.boot(self.cfg)
        self.min_ttl = 0  # jiffies
        self.memcgs = MemcgTree()
        self._init_lruvecs(self.memcgs.root)
        self.procs: dict[int, Process] = {}
        self._next_pid = 1000
        self.files: dict[str, File] = {}
        self.warnings: list[str] = []
        #: the last aging walk (its mm_stats and counts), for tools and tests
        self.last_walk = None
        #: the walk of the current reclaim context (current->reclaim_state->mm_walk)
        self.reclaim_walk = None
        self.swap = SwapDevice(self.cfg.swap_pages, self.cfg.swap_device,
                               swap_setup_page_cluster(self.cfg), self.cfg.vma_ra_enabled)
        #: VM event counters by kernel name (pswpout, pgsteal_anon, ...; mm.vmstat)
        self.stats: collections.Counter[str] = collections.Counter()
        #: OOM events: dicts with reason, memcg path, victim pid, jiffies
        self.oom_events: list[dict] = []
        self._writeback: set[int] = set()
        #: head pfns a task holds references to while its own charge reclaims
        #: (see `pin`); shrink_folio_list keeps them
        self.pinned: set[int] = set()
        #: the timing layer's pacer of aging walks, or None: called as
        #: pacer(mm, walk, sec_stats) -> iterable of PTE-table row chunks, it
        #: lets vCPUs fault between chunks, as they do while the kernel walks
        #: (mglru.bench.lru_gen_bench); None walks the rows of the moment at once
        self.walk_pacer = None
        #: an observer of reclaim, or None: called as hook(k, heads, nr) with the
        #: head pfns and page counts of the folios shrink_folio_list() is about
        #: to free (unmapped, still charged), where a BPF probe on its
        #: free_unref_folios() call would see them (mm/vmscan.c, v6.10);
        #: it must not change kernel state
        self.reclaim_hook = None

    def __repr__(self) -> str:
        return f"SimKernel(config={self.cfg.name!r}, seed={self.seed})"

    # -- time --------------------------------------------------------------------
    @property
    def jiffies(self) -> int:
        """Simulated jiffies since boot."""
        return self.clock_ns * self.cfg.hz // 1_000_000_000

    def tick(self, ms: float) -> None:
        """Advance simulated time by `ms` milliseconds."""
        if ms < 0:
            raise ValueError(f"time only moves forward; got {ms} ms")
        self.clock_ns += int(ms * 1_000_000)

    def jiffies_to_msecs(self, j: int) -> int:
        """jiffies_to_msecs(): exact for HZ dividing 1000."""
        return j * 1000 // self.cfg.hz

    def msecs_to_jiffies(self, ms: int) -> int:
        """msecs_to_jiffies(): rounds up."""
        return -(-ms * self.cfg.hz // 1000)

    # -- debugging ---------------------------------------------------------------
    def warn_on_once(self, cond: bool, what: str) -> None:
        """VM_WARN_ON_ONCE: raise under `debug`, else record the first occurrence."""
        if not cond:
            return
        if self.cfg.debug:
            raise KernelWarning(what)
        if what not in self.warnings:
            self.warnings.append(what)

    def deadlock(self, what: str) -> None:
        """The kernel hangs here: raise KernelDeadlock (there is no state to go on from)."""
        raise KernelDeadlock(what)

    # -- memcgs and lruvecs ------------------------------------------------------
    def _init_lruvecs(self, memcg: MemCgroup) -> None:
        walks = self.cfg.hw_pte_young
        memcg.lruvecs = [Lruvec(memcg, n.nid, self.cfg.nr_hist_gens, self.jiffies, walks,
                                self.rules)
                         for n in self.mem.nodes]

    def lruvec(self, memcg: MemCgroup | int | str = 1, nid: int = 0) -> Lruvec:
        """The lruvec of a memcg (object, id or path below the cgroup root) on a node."""
        return self.memcg(memcg).lruvecs[nid]

    def memcg(self, memcg: MemCgroup | int | str) -> MemCgroup:
        """Resolve a memcg by object, id or path relative to the cgroup root.

        Raises:
            KeyError: no such memcg.
        """
        if isinstance(memcg, MemCgroup):
            return memcg
        if isinstance(memcg, int):
            return self.memcgs.by_id[memcg]
        found = self.memcgs.lookup_path(memcg)
        if found is None:
            raise KeyError(f"no memcg at {memcg!r}")
        return found

    def iter_lruvecs(self):
        """Every lruvec, memcgs in pre-order then nodes."""
        for memcg in self.memcgs.root.iter_preorder():
            yield from memcg.lruvecs

    def create_memcg(self, parent: MemCgroup, name: str) -> MemCgroup:
        """mkdir in the memory cgroup hierarchy (no checks: see cgroupfs)."""
        memcg = self.memcgs.create(parent, name)
        self._init_lruvecs(memcg)
        return memcg

    # -- tasks ---------------------------------------------------------------------
    def spawn(self, memcg: MemCgroup | int | str = "/", node: int = 0) -> Process:
        """Create a task with a fresh mm in `memcg`, running on `node`."""
        mc = self.memcg(memcg)
        if not 0 <= node < len(self.mem.nodes):
            raise ValueError(f"node must be in [0, {len(self.mem.nodes)}), got {node}")
        p = Process(self, self._next_pid, mc, node)
        self._next_pid += 1
        self.procs[p.pid] = p
        mc.procs.append(p)
        lru_gen_add_mm(p.mm, mc)
        p.mm.use()
        return p

    def move_task(self, p: Process, memcg: MemCgroup) -> None:
        """Write a pid to cgroup.procs: the task and (as owner) its mm move."""
        if p.memcg is memcg:
            return
        old = p.memcg
        old.procs.remove(p)
        memcg.procs.append(p)
        p.memcg = memcg
        if p.mm.owner is p:
            lru_gen_migrate_mm(p.mm, old, memcg)

    def exit_task(self, p: Process) -> None:
        """The task exits: its mm is torn down (exit_mmap) and leaves the mm list.

        The mm has no other user, so mmput() frees it: anonymous pages are freed
        and uncharged, swap entries release their slots, file pages stay cached.
        """
        if not p.alive:
            return
        exit_mmap(self, p)
        p.alive = False
        p.mm.users = 0
        p.mm.pt = PageTables()  # free_pgtables(): the emptied tables go too
        lru_gen_del_mm(p.mm, p.memcg)
        p.memcg.procs.remove(p)
        del self.procs[p.pid]
        heap.trim()

    def open_file(self, name: str, nbytes: int, **flags: Any) -> File:
        """Create (or return) a file with a page cache; flags as `File`."""
        if name not in self.files:
            self.files[name] = File(name, nbytes, **flags)
        return self.files[name]

    def user_access(self, p: Process, addr: int, nbytes: int, write: bool) -> None:
        """See `Process.access`."""
        user_access(self, p, addr, nbytes, write)

    def create_vm(self, process: Process, **kwargs: Any):
        """KVM_CREATE_VM on a process; see `mglru.kvm.create_vm` for the arguments."""
        return create_vm(self, process, **kwargs)

    def file_read(self, p: Process, file: File, offset: int, nbytes: int) -> None:
        """See `Process.read`."""
        file_read(self, p, file, offset, nbytes)

    # -- reclaim support ------------------------------------------------------------
    def start_writeback(self, pfn: int) -> None:
        """The flusher submits a dirty file folio: PG_dirty -> PG_writeback."""
        self.mem.flags[pfn] = (int(self.mem.flags[pfn]) & ~PG_dirty) | PG_writeback
        self._writeback.add(pfn)
        # folio_clear_dirty_for_io() -> folio_mkclean(): PTEs clean and write-protected,
        # so the next write faults and dirties the folio again
        for m in folio_mappings(self, pfn):
            ff = m.mm.pt.flat_flags()
            ff[m.index] &= ~np.uint8(PTE_DIRTY | PTE_WRITE)

    def end_writeback(self) -> None:
        """Complete submitted writeback; PG_reclaim folios rotate to the oldest tail."""
        done, self._writeback = self._writeback, set()
        for pfn in sorted(done):
            flags = int(self.mem.flags[pfn]) & ~PG_writeback
            self.mem.flags[pfn] = flags
            if flags & PG_reclaim and self.mem.gen[pfn]:
                lruvec = self.memcgs.by_id[int(self.mem.memcg[pfn])].lruvecs[
                    self.mem.pfn_to_nid(pfn)]
                arr = np.array([pfn], np.int64)
                lru_gen_del_folio(self.mem, lruvec, arr, reclaiming=True)
                self.mem.flags[pfn] = (flags & ~(PG_reclaim | PG_active)) | PG_lru
                lru_gen_add_folio(self.mem, lruvec, arr, reclaiming=True)

    @contextlib.contextmanager
    def pin(self, pfns):
        """Hold folio references for the duration of a fault or read(2).

        A faulting or reading task has the folios it is using in hand (the
        kernel's folio refcount); reclaim its own charge runs cannot free them
        (__remove_mapping fails on the extra reference and the folio is kept).
        """
        new = {int(p) for p in pfns} - self.pinned
        self.pinned |= new
        try:
            yield
        finally:
            self.pinned -= new

    def folio_mapped(self, pfn: int) -> bool:
        """folio_mapped(): any PTE or PMD maps it."""
        return bool(folio_mappings(self, pfn))

    def drop_page_cache(self, pfn: int, shadow: int, slot: int = 0) -> None:
        """Remove a file folio from its page cache, leaving a shadow entry.

        A shmem folio written to swap leaves its swap slot instead (the slot
        holds the shadow, as the swap cache does).
        """
        pgoff = int(rmap_enable(self)[pfn])
        for f in self.files.values():
            if pgoff < f.npages and f.pages[pgoff] == pfn:
                f.pages[pgoff] = -1
                if slot:
                    f.swap[pgoff] = slot
                else:
                    f.shadow[pgoff] = shadow
                return

    def oom_kill(self, reason: str, memcg: MemCgroup | None) -> Process | None:
        """The OOM killer: kill the task of `memcg` (or any) mapping the most memory."""
        cands = [p for p in self.procs.values()
                 if memcg is None or p.memcg in set(memcg.iter_preorder())]
        victim = max(cands, key=lambda p: p.mm.nr_mapped(), default=None)
        self.oom_events.append({"reason": reason, "memcg": memcg.path if memcg else None,
                                "pid": victim.pid if victim else None, "jiffies": self.jiffies})
        if victim is not None:
            self.stats["oom_kill"] += 1
            victim.memcg.nr_oom_kills += 1
            exit_mmap(self, victim)
            self.exit_task(victim)
        return victim

    # -- the file interface ----------------------------------------------------------
    _FILES = {
        "/sys/kernel/mm/lru_gen/enabled": (sysfs.enabled_show, sysfs.enabled_store),
        "/sys/kernel/mm/lru_gen/min_ttl_ms": (sysfs.min_ttl_ms_show, sysfs.min_ttl_ms_store),
        "/sys/kernel/debug/lru_gen": (debugfs.lru_gen_show, debugfs.lru_gen_write),
        "/sys/kernel/debug/lru_gen_full": (debugfs.lru_gen_full_show, None),
        "/proc/vmstat": (vmstat.vmstat_show, None),
        "/proc/sys/vm/page-cluster": (swap_files.page_cluster_show, swap_files.page_cluster_store),
        "/sys/kernel/mm/swap/vma_ra_enabled": (swap_files.vma_ra_enabled_show,
                                               swap_files.vma_ra_enabled_store),
    }

    def read(self, path: str) -> str:
        """Read a kernel file (the whole of it, as `cat` would).

        Raises:
            OSError: ENOENT for unknown paths, EISDIR for directories.
        """
        path = _norm(path)
        if path in self._FILES:
            return self._FILES[path][0](self)
        if path == CGROUP_ROOT or path.startswith(CGROUP_ROOT + "/"):
            return cgroupfs.read(self, path[len(CGROUP_ROOT):])
        raise OSError(errno.ENOENT, "No such file or directory", path)

    def write(self, path: str, text: str | bytes) -> int:
        """Write to a kernel file; returns the bytes accepted.

        Kernel files take bytes: a `str` is encoded as the OS would (UTF-8,
        lone surrogates as os.fsencode() keeps them), and each file parses the
        bytes with the kernel's rules before anything is applied. sysfs files
        see at most PAGE_SIZE bytes per write (kernfs_fop_write_iter() then
        returns that count), cgroup files refuse more (E2BIG); debugfs lru_gen
        takes any length.

        Raises:
            OSError: with the kernel's errno; the state is then unchanged
                (or, for multi-command debugfs writes, changed only by the
                commands before the failing one, as in the kernel).
        """
        path = _norm(path)
        raw = to_bytes(text)
        data = raw.decode("latin-1")  # one character per byte, as the kernel sees them
        if path in self._FILES:
            store = self._FILES[path][1]
            if store is None:
                raise OSError(errno.EINVAL, "Invalid argument", path)
            if path.startswith("/sys/kernel/mm/"):  # sysfs: kernfs caps at PAGE_SIZE
                data = data[:_PAGE_SIZE]
                if not data:  # sysfs_kf_write(): a zero-byte write never reaches the store
                    return 0
            try:
                used = store(self, data)
            except OSError as e:
                raise OSError(e.errno, e.strerror, path) from None
            return len(data) if used is None else used
        if path.startswith(CGROUP_ROOT + "/"):
            try:
                return cgroupfs.write(self, path[len(CGROUP_ROOT):], data)
            except OSError as e:
                raise OSError(e.errno, e.strerror, path) from None
        raise OSError(errno.ENOENT, "No such file or directory", path)

    def pread(self, path: str, size: int, offset: int) -> bytes:
        """pread(2): binary files (page_idle/bitmap, /proc/<pid>/pagemap) or text bytes.

        Raises:
            OSError: the kernel's errno (EINVAL negative offset or size
                (ksys_pread64) or misaligned, ESRCH no such process, ENOENT
                unknown path).
        """
        path = _norm(path)
        if offset < 0 or size < 0:
            raise OSError(errno.EINVAL, "Invalid argument", path)
        if path == PAGE_IDLE_BITMAP:
            return page_idle_read(self, offset, size)
        pid = _pagemap_pid(path)
        if pid is not None:
            return pagemap_read(self, pid, offset, size)
        return self.read(path).encode()[offset:offset + size]

    def pwrite(self, path: str, data: bytes, offset: int) -> int:
        """pwrite(2): the idle bitmap, or text files (offset ignored, as sysfs does).

        Raises:
            OSError: EINVAL for a negative offset (ksys_pwrite64), else as `write`.
        """
        path = _norm(path)
        if offset < 0:
            raise OSError(errno.EINVAL, "Invalid argument", path)
        try:
            if path == PAGE_IDLE_BITMAP:
                return page_idle_write(self, offset, bytes(data))
        except OSError as e:
            raise OSError(e.errno, e.strerror, path) from None
        return self.write(path, bytes(data))

    def mkdir(self, path: str) -> None:
        """Create a cgroup directory under the cgroup root."""
        cgroupfs.mkdir(self, _norm(path), CGROUP_ROOT)

    def rmdir(self, path: str) -> None:
        """Remove a cgroup directory under the cgroup root."""
        cgroupfs.rmdir(self, _norm(path), CGROUP_ROOT)

    def exists(self, path: str) -> bool:
        """Whether a path exists (file or cgroup directory)."""
        path = _norm(path)
        if path in self._FILES or path == PAGE_IDLE_BITMAP or _pagemap_pid(path) in self.procs:
            return True
        if path == CGROUP_ROOT or path.startswith(CGROUP_ROOT + "/"):
            return cgroupfs.exists(self, path[len(CGROUP_ROOT):])
        return path in {"/sys/kernel/mm/lru_gen", "/sys/kernel/debug", "/sys/kernel/mm/swap",
                        "/proc/sys/vm"}


_PAGE_SIZE = 4096


def to_bytes(text: str | bytes | bytearray | memoryview) -> bytes:
    """The bytes a write(2) of `text` would carry.

    A `str` is UTF-8; surrogates that stand for undecodable bytes
    (U+DC80-U+DCFF, os.fsdecode()'s) become those bytes again, other lone
    surrogates their 3-byte forms, so no text makes the write fail before
    the kernel has seen it.
    """
    if not isinstance(text, str):
        return bytes(text)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass")


def _pagemap_pid(path: str) -> int | None:
    parts = path.split("/")
    if len(parts) == 4 and parts[1] == "proc" and parts[3] == "pagemap" and parts[2].isdigit():
        return int(parts[2])
    return None


def _norm(path: str) -> str:
    return posixpath.normpath("/" + path.lstrip("/")) if path else path
