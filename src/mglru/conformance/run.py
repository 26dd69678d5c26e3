"""Run a scenario on one kernel backend and record its trace (snapshots and command results).

The same steps drive the simulated kernel and a real one: both backends offer the
`Kernel` file interface plus `spawn(memcg)`, `task.mmap(nbytes, thp=)`,
`task.access(addr, nbytes, write=)` and `exit_task(task)`.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field
from typing import Any

from mglru.abi.kernel import DEFAULT_CGROUP_ROOT, LRU_GEN, Kernel, kernel_kind
from mglru.conformance.scenario import Scenario, ScenarioError, Step, parse_size
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

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"name": self.name, "gens": {k: None if v is None else [list(g) for g in v]
                                            for k, v in self.gens.items()},
                "stat": self.stat}


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


class _Runner:
    def __init__(self, kernel: Kernel, scenario: Scenario) -> None:
        self.k: Any = kernel
        self.s = scenario
        self.kind = kernel_kind(kernel)
        self.tasks: dict[str, Any] = {}
        self.regions: dict[str, tuple[Any, int, int]] = {}
        self.vms: dict[str, Any] = {}
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
            size = parse_size(a["size"])
            task = self.tasks[a["task"]]
            self.regions[a["region"]] = (task, task.mmap(size, thp=bool(a["thp"])), size)
        elif op == "touch":
            task, addr, size = self.regions[a["region"]]
            off = parse_size(a["offset"])
            n = parse_size(a["size"]) if a["size"] is not None else size - off
            task.access(addr + off, n, write=bool(a["write"]))
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
            self.command(i, step, path, a["text"])
        elif op == "snapshot":
            self.snapshot(a["name"])

    def vm_touch(self, a: dict[str, Any]) -> None:
        """A KVM guest touches a region through its secondary MMU (simulated kernel only)."""
        if self.kind != "sim":
            raise UnsupportedStep(f"step vm_touch: a KVM guest inside the {self.kind} backend "
                                  "is not supported yet")
        task, _, size = self.regions[a["region"]]
        vm = self.vms.get(a["region"])
        if vm is None:
            vm = self.k.create_vm(task)
            vm.gpa = vm.add_memory(size)
            self.vms[a["region"]] = vm
        vm.vcpu_access(0, vm.gpa, size, write=bool(a["write"]))

    def snapshot(self, name: str) -> None:
        stats = read_lru_gen(self.k)
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
        self.trace.snapshots.append(Snapshot(name, gens, stat))


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
        for memcg in sorted({s.args["memcg"] for s in scenario.steps if s.op == "mkdir"},
                            key=len, reverse=True):
            try:
                kernel.rmdir(_memcg_dir(tagged(memcg, scenario.name)))
            except OSError:
                pass  # already removed by the scenario, or still busy
    return r.trace
