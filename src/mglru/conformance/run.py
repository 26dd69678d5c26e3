"""Run a scenario on one kernel backend and record its trace (snapshots and command results).

The same steps drive the simulated kernel and a real one: both backends offer the
`Kernel` file interface plus `spawn(memcg)`, `task.mmap(nbytes, thp=, shared=)`,
`task.access(addr, nbytes, write=)` and `exit_task(task)`. Files differ in form
(the model's `File` objects, the guest's paths), so `_Files` keeps the two apart.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from mglru.abi.kernel import DEFAULT_CGROUP_ROOT, LRU_GEN, Kernel, kernel_kind
from mglru.conformance.scenario import Scenario, ScenarioError, Step, parse_size
from mglru.mm.page import PAGE_SIZE
from mglru.tools.lru_gen import LruGenStats, MemcgNotFound, read_lru_gen

__all__ = ["Trace", "Snapshot", "UnsupportedStep", "run_scenario"]


class UnsupportedStep(RuntimeError):
    """A step the backend cannot perform (e.g. a KVM guest touch on a QEMU guest)."""


@dataclass
class Snapshot:
    """What one `snapshot` step saw.

    Attributes:
        name: the step's name.
        gens: memcg path -> list of (seq, nr_anon, nr_file) on node 0; None if the
            memcg is not listed.
        stat: memcg path -> {memory.stat key: value}.
    """

    name: str
    gens: dict[str, list[tuple[int, int, int]] | None]
    stat: dict[str, dict[str, int]]
    #: the scenario's memcgs in the order lru_gen lists them (its memcg walk)
    order: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "gens": {k: None if v is None else [list(g) for g in v]
                                            for k, v in self.gens.items()},
                "stat": self.stat, "order": self.order}


@dataclass
class Trace:
    """Everything a run recorded: snapshots and each command's result, in order."""

    snapshots: list[Snapshot] = field(default_factory=list)
    #: (step number, the step as text, "ok" or the errno's name)
    results: list[tuple[int, str, str]] = field(default_factory=list)


def _memcg_dir(memcg: str) -> str:
    rel = memcg.strip("/")
    return DEFAULT_CGROUP_ROOT + ("/" + rel if rel else "")


def tagged(memcg: str, tag: str) -> str:
    """The memcg's path in the kernel: its top directory gets the scenario's tag.

    One QEMU guest runs every scenario; a removed memcg can linger in lru_gen
    while it dies, so no two scenarios use the same path ("/a" -> "/a-aging").
    """
    parts = memcg.strip("/").split("/")
    if parts == [""]:
        return "/"
    parts[0] += f"-{tag}"
    return "/" + "/".join(parts)


def _node0(stats: LruGenStats, memcg: str):
    try:
        m = stats.find(memcg)
    except MemcgNotFound:
        return None, None
    return m, next((n for n in m.nodes if n.nid == 0), None)


#: where the guest's init mounts each file system of a `file` step
GUEST_FS_DIRS = {"disk": "/mnt", "tmpfs": "/tmp"}


class _Files:
    """The scenario's files: `File` objects on the model, paths in a real guest."""

    def __init__(self, kernel: Any, kind: str, tag: str) -> None:
        self.k, self.kind, self.tag = kernel, kind, tag
        self.files: dict[str, tuple[Any, int]] = {}

    def create(self, name: str, nbytes: int, fs: str) -> None:
        if self.kind == "sim":
            f = self.k.open_file(f"{name}-{self.tag}", nbytes, shmem=fs == "tmpfs")
        else:
            f = f"{GUEST_FS_DIRS[fs]}/{name}-{self.tag}"
            self.k.create_file(f, nbytes)
        self.files[name] = (f, nbytes)

    def mmap(self, task: Any, name: str) -> tuple[int, int]:
        f, nbytes = self.files[name]
        return (task.mmap(nbytes, file=f) if self.kind == "sim" else task.mmap_file(f, nbytes),
                nbytes)

    def read(self, task: Any, name: str, offset: int, nbytes: int | None) -> None:
        f, size = self.files[name]
        n = size - offset if nbytes is None else nbytes
        if self.kind == "sim":
            task.read(f, offset, n)
        else:
            task.read_file(f, offset, n)

    def remove_all(self) -> None:
        """Unlink the guest's files (their page cache goes with them)."""
        if self.kind != "sim":
            for f, _ in self.files.values():
                try:
                    self.k.remove_file(f)
                except OSError:
                    pass
        self.files.clear()


class _Runner:
    def __init__(self, kernel: Kernel, scenario: Scenario) -> None:
        self.k: Any = kernel
        self.s = scenario
        self.kind = kernel_kind(kernel)
        self.tasks: dict[str, Any] = {}
        self.regions: dict[str, tuple[Any, int, int]] = {}
        self.vms: dict[str, Any] = {}
        self.files = _Files(kernel, self.kind, scenario.name)
        #: knobs a `write` step changed -> their old contents, written back at the end
        self.saved: dict[str, str] = {}
        self.trace = Trace()

    def memcg(self, name: str) -> str:
        return tagged(name, self.s.name)

    def command(self, i: int, step: Step, path: str, text: str) -> None:
        self.record(i, f"{step.op}: {text.strip()}", lambda: self.k.write(path, text))

    def record(self, i: int, what: str, action: Any) -> None:
        """Run an action whose errno is part of the trace."""
        try:
            action()
            result = "ok"
        except OSError as e:
            result = errno.errorcode.get(e.errno or 0, str(e.errno))
        self.trace.results.append((i, what, result))

    def fields(self, memcg: str) -> dict[str, int]:
        m, node = _node0(read_lru_gen(self.k), self.memcg(memcg))
        if node is None:
            raise UnsupportedStep(f"memcg {memcg} is not listed in {LRU_GEN}")
        return {"id": m.memcg_id, "min_seq": node.min_seq, "max_seq": node.max_seq,
                "max_seq_minus_1": node.max_seq - 1, "max_seq_minus_2": node.max_seq - 2,
                "max_seq_plus_1": node.max_seq + 1}

    def step(self, i: int, step: Step) -> None:
        a = step.args
        op = step.op
        if op == "mkdir":
            self.k.mkdir(_memcg_dir(self.memcg(a["memcg"])))
        elif op == "rmdir":
            self.record(i, f"rmdir {a['memcg']}",
                        lambda: self.k.rmdir(_memcg_dir(self.memcg(a["memcg"]))))
        elif op == "spawn":
            self.tasks[a["task"]] = self.k.spawn(memcg=self.memcg(a["memcg"]))
        elif op == "mmap":
            task = self.tasks[a["task"]]
            if a["file"] is not None:
                addr, size = self.files.mmap(task, a["file"])
            else:
                size = parse_size(a["size"])
                addr = task.mmap(size, thp=bool(a["thp"]), shared=bool(a["shared"]))
            self.regions[a["region"]] = (task, addr, size)
        elif op == "file":
            self.files.create(a["file"], parse_size(a["size"]), a["fs"])
        elif op == "read_file":
            self.files.read(self.tasks[a["task"]], a["file"], parse_size(a["offset"]),
                            None if a["size"] is None else parse_size(a["size"]))
        elif op == "read":
            try:
                result = self.k.read(a["path"]).strip()
            except OSError as e:
                result = errno.errorcode.get(e.errno or 0, str(e.errno))
            self.trace.results.append((i, f"read {a['path']}", result))
        elif op == "touch":
            task, addr, size = self.regions[a["region"]]
            off = parse_size(a["offset"])
            n = parse_size(a["size"]) if a["size"] is not None else size - off
            if a["stride"] is None:
                task.access(addr + off, n, write=bool(a["write"]))
            else:
                for at in range(off, off + n, parse_size(a["stride"])):
                    task.access(addr + at, PAGE_SIZE, write=bool(a["write"]))
        elif op == "vm_touch":
            self.vm_touch(a)
        elif op == "exit":
            self.k.exit_task(self.tasks.pop(a["task"]))
        elif op == "age":
            f = self.fields(a["memcg"])
            self.command(i, step, LRU_GEN, f"+ {f['id']} 0 {f['max_seq']} {a['swappiness']} "
                                          f"{int(bool(a['force_scan']))}\n")
        elif op == "evict":
            f = self.fields(a["memcg"])
            nr = "" if a["nr_to_reclaim"] is None else f" {a['nr_to_reclaim']}"
            seq = str(a["seq"]).format(**f)
            self.command(i, step, LRU_GEN, f"- {f['id']} 0 {seq} {a['swappiness']}{nr}\n")
        elif op == "lru_gen":
            self.command(i, step, LRU_GEN, a["command"].format(**self.fields(a["memcg"])) + "\n")
        elif op == "write":
            if (a["path"] is None) == (a["memcg"] is None or a["file"] is None):
                raise ScenarioError(f"{self.s.name}: step {i} (write): give either path, "
                                    "or memcg and file")
            path = a["path"] or f"{_memcg_dir(self.memcg(a['memcg']))}/{a['file']}"
            if a["path"] and path not in self.saved:
                try:
                    self.saved[path] = self.k.read(path)
                except OSError:
                    pass  # write-only (or missing): nothing to put back
            self.command(i, step, path, a["text"])
        elif op == "snapshot":
            self.snapshot(a["name"])

    def vm_touch(self, a: dict[str, Any]) -> None:
        """A KVM guest touches a region through its secondary MMU.

        The region itself backs the guest's memory (one memslot at gpa 0 of
        address space 0, as a VMM maps its guest RAM), so the guest's accesses
        reach the task's pages through KVM's page tables only.
        """
        task, addr, size = self.regions[a["region"]]
        if self.kind != "sim":
            if not hasattr(task, "vm_touch"):
                raise UnsupportedStep(f"step vm_touch: a KVM guest inside the {self.kind} "
                                      "backend is not supported")
            task.vm_touch(addr, size, write=bool(a["write"]))
            return
        vm = self.vms.get(a["region"])
        if vm is None:
            vm = self.k.create_vm(task, nr_address_spaces=1)
            vm.set_user_memory_region(0, 0, 0, -(-size // PAGE_SIZE) * PAGE_SIZE, addr)
            self.vms[a["region"]] = vm
        vm.vcpu_access(0, 0, size, write=bool(a["write"]))

    def snapshot(self, name: str) -> None:
        stats = read_lru_gen(self.k)
        where = {self.memcg(m): m for m in self.s.memcgs}
        order = [where[m.path] for m in stats.memcgs if m.memcg_id and m.path in where]
        gens: dict[str, list[tuple[int, int, int]] | None] = {}
        stat: dict[str, dict[str, int]] = {}
        for memcg in self.s.memcgs:
            _, node = _node0(stats, self.memcg(memcg))
            gens[memcg] = None if node is None else [(g.seq, g.nr_anon, g.nr_file)
                                                     for g in node.gens]
            if self.s.stat and memcg.strip("/"):
                text = self.k.read(_memcg_dir(self.memcg(memcg)) + "/memory.stat")
                values = dict(line.split()[:2] for line in text.splitlines() if line.strip())
                stat[memcg] = {key: int(values[key]) for key in self.s.stat if key in values}
        self.trace.snapshots.append(Snapshot(name, gens, stat, order))


def run_scenario(kernel: Kernel, scenario: Scenario) -> Trace:
    """Run every step; tasks are exited and memcgs removed afterwards, on errors too.

    Raises:
        UnsupportedStep: the backend cannot do a step.
        OSError: a non-command step failed (mkdir, spawn...), with the kernel's errno.
    """
    r = _Runner(kernel, scenario)
    try:
        for i, step in enumerate(scenario.steps, start=1):
            r.step(i, step)
    finally:
        for task in r.tasks.values():
            try:
                kernel.exit_task(task)  # type: ignore[attr-defined]
            except OSError:
                pass
        r.files.remove_all()
        for path, old in r.saved.items():
            try:
                kernel.write(path, old)
            except OSError:
                pass
        for memcg in sorted({s.args["memcg"] for s in scenario.steps if s.op == "mkdir"},
                            key=len, reverse=True):
            try:
                kernel.rmdir(_memcg_dir(tagged(memcg, scenario.name)))
            except OSError:
                pass  # already removed by the scenario, or still busy
    return r.trace
