"""Conformance scenarios: one TOML file each, a list of steps run on any kernel backend.

    description = "..."
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
    op = "mmap"                       # anonymous memory of a task ("thp = true": MADV_HUGEPAGE)
    task = "t"
    region = "r"
    size = "32M"
    [[step]]
    op = "touch"                      # read (or write) every page of [offset, offset+size)
    region = "r"
    write = true
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
    op = "write"                      # a memcg's file ("path = ..." for any other file)
    memcg = "/a"
    file = "memory.reclaim"
    text = "8M"
    [[step]]
    op = "exit"                       # the task exits
    task = "t"
    [[step]]
    op = "snapshot"                   # record lru_gen and memory.stat now
    name = "after-faults"

Every command step (`age`, `evict`, `lru_gen`, `write`, `rmdir`) records "ok" or
the errno's name; the results are compared like snapshots.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["Scenario", "Step", "ScenarioError", "STEP_FIELDS", "load_scenario",
           "builtin_scenarios", "parse_size"]

#: each op and the fields it takes (required ones first, then optional with defaults)
STEP_FIELDS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "mkdir": (("memcg",), {}),
    "rmdir": (("memcg",), {}),
    "spawn": (("task", "memcg"), {}),
    "mmap": (("task", "region", "size"), {"thp": False}),
    "touch": (("region",), {"write": False, "offset": "0", "size": None}),
    "exit": (("task",), {}),
    "age": (("memcg",), {"swappiness": 1, "force_scan": True}),
    "evict": (("memcg",), {"seq": "{max_seq_minus_2}", "swappiness": 200,
                           "nr_to_reclaim": None}),
    "lru_gen": (("memcg", "command"), {}),
    "write": (("text",), {"path": None, "memcg": None, "file": None}),
    "snapshot": (("name",), {}),
    "vm_touch": (("region",), {"write": False}),
}


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


def load_scenario(name: str, text: str) -> Scenario:
    """Parse and check a scenario.

    Raises:
        ScenarioError: bad TOML, an unknown op, a missing or unknown field.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ScenarioError(f"{name}: {e}") from None
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
        steps.append(Step(op, args))
    return Scenario(name, doc.get("description", ""), tuple(doc.get("memcgs", ["/"])),
                    tuple(doc.get("stat", [])), tuple(steps))


def builtin_scenarios() -> list[Scenario]:
    """The scenarios shipped in `mglru/conformance/scenarios`, by name."""
    folder = resources.files("mglru.conformance") / "scenarios"
    found = sorted((p for p in folder.iterdir() if p.name.endswith(".toml")),
                   key=lambda p: p.name)
    return [load_scenario(p.name.removesuffix(".toml"), p.read_text()) for p in found]
