"""The layout holds: packages import downward only, modules stay small, versions are decided once.

The import graph is read from the sources (module-level imports, and imports
inside functions, but not those under `if TYPE_CHECKING:`), so a new upward
import fails here before it becomes a cycle that slows every later change.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "mglru"

#: bottom up; a package may import only packages at its own level or below.
#: `kernel` is the facade module mglru/kernel.py; top-level modules map to themselves.
LAYERS: list[set[str]] = [
    {"presets", "sizes", "abi", "progress", "plots", "heap"},
    {"mm"},
    {"lru_gen"},
    {"paths"},  # the host's fault, charge, reclaim and exit paths; KVM's faults go through them
    {"kvm"},
    {"kernel", "backends"},
    {"tools", "workload", "conformance"},
    {"timing"},
    {"bench", "experiment"},
    {"cli", "__main__"},
]
LEVEL = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _package(rel: Path) -> str:
    part = rel.parts[0]
    return part[:-3] if part.endswith(".py") else part


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str) -> list[tuple[str, int]]:
    """(imported mglru module, line) for every import not guarded by TYPE_CHECKING."""
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                visit(ast.Module(body=child.orelse, type_ignores=[]))
                continue
            if isinstance(child, ast.Import):
                out.extend((a.name, child.lineno) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against this module's package
                    base = module.split(".")[: -child.level]
                    name = ".".join(base + ([child.module] if child.module else []))
                else:
                    name = child.module or ""
                out.append((name, child.lineno))
            visit(child)

    visit(tree)
    return [(n, line) for n, line in out if n == "mglru" or n.startswith("mglru.")]


def _graph() -> dict[str, set[tuple[str, str, int]]]:
    """package -> {(imported package, file, line)} across packages."""
    edges: dict[str, set[tuple[str, str, int]]] = {}
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        module = "mglru." + ".".join(rel.with_suffix("").parts)
        src_pkg = _package(rel)
        for name, line in _imports(ast.parse(path.read_text()), module):
            parts = name.split(".")
            if len(parts) < 2:
                continue
            dst_pkg = parts[1]
            if dst_pkg != src_pkg:
                edges.setdefault(src_pkg, set()).add((dst_pkg, str(rel), line))
    return edges


def test_every_package_has_a_layer():
    found = {_package(p.relative_to(SRC)) for p in SRC.rglob("*.py")} - {"__init__"}
    assert found <= set(LEVEL), f"add to LAYERS: {sorted(found - set(LEVEL))}"


def test_packages_import_downward_only():
    upward = [f"{f}:{line} imports mglru.{dst} ({src} is below {dst})"
              for src, out in _graph().items() for dst, f, line in out
              if dst in LEVEL and src in LEVEL and LEVEL[dst] > LEVEL[src]]
    assert not upward, "\n".join(sorted(upward))


def test_no_cycle_between_packages():
    graph = {src: {dst for dst, _, _ in out} for src, out in _graph().items()}
    seen: dict[str, int] = {}  # 1 on the stack, 2 done

    def dfs(node: str, stack: list[str]) -> list[str] | None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if seen.get(nxt) == 1:
                return stack + [node, nxt]
            if nxt not in seen and (cycle := dfs(nxt, stack + [node])):
                return cycle
        seen[node] = 2
        return None

    for start in sorted(graph):
        if start not in seen:
            cycle = dfs(start, [])
            assert cycle is None, " -> ".join(cycle)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The guard itself: an import from mm into the CLI is found, one under TYPE_CHECKING is not."""
    code = ("from typing import TYPE_CHECKING\nimport mglru.cli\n"
            "if TYPE_CHECKING:\n    from mglru.kernel import SimKernel\n"
            "def f():\n    from mglru.workload import Engine\n")
    names = [n for n, _ in _imports(ast.parse(code), "mglru.mm.x")]
    assert names == ["mglru.cli", "mglru.workload"]


@pytest.mark.parametrize("path", sorted(SRC.rglob("*.py")), ids=lambda p: str(p.relative_to(SRC)))
def test_modules_stay_under_500_lines(path: Path):
    assert len(path.read_text().splitlines()) <= 500


VERSION_COMPARE = re.compile(r"""[=!]=\s*["'](v\d+\.\d+|seed-v\d[\w-]*|v\d-[\w-]+)["']""")


def test_versions_are_decided_in_presets_only():
    """Behaviour asks the preset's Rules; no code compares a version-named string."""
    hits = [f"{p.relative_to(SRC)}:{i}: {line.strip()}"
            for p in sorted(SRC.rglob("*.py")) if p.name != "presets.py"
            for i, line in enumerate(p.read_text().splitlines(), 1)
            if VERSION_COMPARE.search(line)]
    assert not hits, "\n".join(hits)
