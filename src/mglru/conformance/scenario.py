"""Conformance scenarios: one TOML file each, a list of steps run on any kernel backend.

    description = "..."
    swap = "ram"                      # the swap device: "ram" or "nullb" (optional)
    memcgs = ["/a"]                   # the memcgs each snapshot records
    stat = ["anon", "pgsteal"]        # memory.stat keys each snapshot records (optional)

    [[step]]
    op = "mkdir"                      # mkdir / rmdir of a memcg
    memcg = "/a"
    [[step]]
    op = "spawn"                      # a task in a memcg
    task = "t"
    memcg = "/a"
    [[step]]
    op = "mmap"                       # anonymous memory of a task ("thp = true": MADV_HUGEPAGE;
    task = "t"                        # "shared = true": MAP_SHARED|MAP_ANONYMOUS, i.e. shmem;
    region = "r"                      # or, instead of size, "file = "f"": MAP_SHARED of
    size = "32M"                      # the whole file f)
    [[step]]
    op = "file"                       # a sparse file (holes read as zeros, pages charged
    file = "f"                        # to the reader): fs "disk" (ext2 on a RAM disk:
    size = "16M"                      # page cache, lru_gen's file column) or "tmpfs" (shmem,
    fs = "disk"                       # swap-backed, the anon column)
    [[step]]
    op = "read_file"                  # read(2) of [offset, offset+size) of a file by a task
    task = "t"
    file = "f"
    [[step]]
    op = "touch"                      # read (or write) every page of [offset, offset+size)
    region = "r"                      # ("stride = "32K"": only the first page of each
    write = true                      # 32 KiB, one access at a time)
    [[step]]
    op = "vm_touch"                   # a KVM guest whose RAM (gpa 0) is the region reads
    region = "r"                      # (or, "write = true", writes) every page of it; the
                                      # VM stays until the task exits
    [[step]]
    op = "age"                        # "+ id 0 max_seq can_swap force_scan"
    memcg = "/a"
    [[step]]
    op = "evict"                      # "- id 0 seq swappiness [nr_to_reclaim]": every
    memcg = "/a"                      # generation up to seq (default max_seq - 2, the
    swappiness = 200                  # newest evictable one; "{min_seq}": the oldest)
    [[step]]
    op = "lru_gen"                    # any command; {id} {min_seq} {max_seq}
    memcg = "/a"                      # {max_seq_minus_1} {max_seq_plus_1} are filled in
    command = "+ {id} 0 {max_seq_plus_1} 1 1"   # and {max_seq_minus_2}
    [[step]]
    op = "write"                      # a memcg's file ("path = ..." for any other file;
    memcg = "/a"                      # a path's old contents are written back when the
    file = "memory.reclaim"           # scenario ends, so sysfs knobs do not leak)
    text = "8M"
    [[step]]
    op = "read"                       # a file's contents (stripped) become the step's
    path = "/sys/kernel/mm/lru_gen/min_ttl_ms"  # result, compared like errnos
    [[step]]
    op = "exit"                       # the task exits
    task = "t"
    [[step]]
    op = "snapshot"                   # record lru_gen and memory.stat now
    name = "after-faults"

Every command step (`age`, `evict`, `lru_gen`, `write`, `rmdir`) records "ok" or
the errno's name, and `read` the text it read; the results are compared like snapshots.
A snapshot also records the order in which lru_gen lists the scenario's memcgs.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from mglru.abi.qemu import SWAP_DEVICES

__all__ = ["Scenario", "Step", "ScenarioError", "STEP_FIELDS", "FILE_SYSTEMS", "load_scenario",
           "builtin_scenarios", "parse_size"]

#: each op and the fields it takes (required ones first, then optional with defaults)
STEP_FIELDS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "mkdir": (("memcg",), {}),
    "rmdir": (("memcg",), {}),
    "spawn": (("task", "memcg"), {}),
    "mmap": (("task", "region"), {"size": None, "thp": False, "shared": False, "file": None}),
    "file": (("file", "size"), {"fs": "disk"}),
    "read_file": (("task", "file"), {"offset": "0", "size": None}),
    "read": (("path",), {}),
    "touch": (("region",), {"write": False, "offset": "0", "size": None, "stride": None}),
    "exit": (("task",), {}),
    "age": (("memcg",), {"swappiness": 1, "force_scan": True}),
    "evict": (("memcg",), {"seq": "{max_seq_minus_2}", "swappiness": 200,
                           "nr_to_reclaim": None}),
    "lru_gen": (("memcg", "command"), {}),
    "write": (("text",), {"path": None, "memcg": None, "file": None}),
    "snapshot": (("name",), {}),
    "vm_touch": (("region",), {"write": False}),
}


#: the swap devices a real guest can have (`swap = "..."`): a RAM disk, synchronous
#: like zram (anonymous swap-ins bypass the swap cache), or null_blk, an SSD-like
#: disk (swap cache, VMA readahead); the model runs with the matching device
SWAP_KINDS = tuple(SWAP_DEVICES)

#: where `file` steps create their files: "disk" is page cache (the file LRU), "tmpfs" shmem
FILE_SYSTEMS = ("disk", "tmpfs")


class ScenarioError(ValueError):
    """A scenario file that does not parse or names an unknown op or field."""


def parse_size(text: str | int) -> int:
    """"32M", "4K", "1G" or a number of bytes."""
    if isinstance(text, int):
        return text
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    t = text.strip().upper()
    try:
        return int(t[:-1]) * units[t[-1]] if t and t[-1] in units else int(t)
    except ValueError:
        raise ScenarioError(f"bad size {text!r}: expected e.g. 4096, 4K, 32M") from None


@dataclass(frozen=True)
class Step:
    """One step: its op and its fields (defaults filled in)."""

    op: str
    args: dict[str, Any]

    def __str__(self) -> str:
        shown = " ".join(f"{k}={v}" for k, v in self.args.items() if v is not None)
        return f"{self.op} {shown}".strip()


@dataclass(frozen=True)
class Scenario:
    """A parsed scenario file."""

    name: str
    description: str
    memcgs: tuple[str, ...]
    stat: tuple[str, ...]
    steps: tuple[Step, ...] = field(default=())
    #: the guest's swap device: "ram" (synchronous) or "nullb" (swap cache, readahead)
    swap: str = "ram"


def load_scenario(name: str, text: str) -> Scenario:
    """Parse and check a scenario.

    Raises:
        ScenarioError: bad TOML, an unknown op, a missing or unknown field.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{name}: {e}") from None
    unknown = set(doc) - {"description", "memcgs", "stat", "swap", "step"}
    if unknown:
        raise ScenarioError(f"{name}: unknown key {', '.join(sorted(unknown))}; keys: "
                            "description, memcgs, stat, swap, step")
    swap = doc.get("swap", "ram")
    if swap not in SWAP_KINDS:
        raise ScenarioError(f"{name}: swap must be one of {', '.join(SWAP_KINDS)}, "
                            f"got {swap!r}")
    steps = []
    for i, raw in enumerate(doc.get("step", []), start=1):
        op = raw.get("op")
        if op not in STEP_FIELDS:
            raise ScenarioError(f"{name}: step {i}: unknown op {op!r}; ops: "
                                + ", ".join(STEP_FIELDS))
        required, optional = STEP_FIELDS[op]
        missing = [f for f in required if f not in raw]
        unknown = [f for f in raw if f != "op" and f not in required and f not in optional]
        if missing or unknown:
            raise ScenarioError(f"{name}: step {i} ({op}): "
                                + (f"missing {', '.join(missing)}" if missing else
                                   f"unknown field {', '.join(unknown)}"))
        args = {**optional, **{k: v for k, v in raw.items() if k != "op"}}
        _check(name, i, op, args)
        steps.append(Step(op, args))
    return Scenario(name, doc.get("description", ""), tuple(doc.get("memcgs", ["/"])),
                    tuple(doc.get("stat", [])), tuple(steps), swap)


def _check(name: str, i: int, op: str, args: dict[str, Any]) -> None:
    """The few rules a field list cannot say."""
    where = f"{name}: step {i} ({op})"
    if op == "mmap" and (args["size"] is None) == (args["file"] is None):
        raise ScenarioError(f"{where}: give size (anonymous memory) or file, not both")
    if op == "mmap" and args["file"] is not None and (args["thp"] or args["shared"]):
        raise ScenarioError(f"{where}: a file mapping is always shared and never THP")
    if op == "file" and args["fs"] not in FILE_SYSTEMS:
        raise ScenarioError(f"{where}: fs must be one of {', '.join(FILE_SYSTEMS)}")


def builtin_scenarios() -> list[Scenario]:
    """The scenarios shipped in `mglru/conformance/scenarios`, by name."""
    folder = resources.files("mglru.conformance") / "scenarios"
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".toml")),
                   key=lambda p: p.name)
    return [load_scenario(p.name.removesuffix(".toml"), p.read_text()) for p in found]
