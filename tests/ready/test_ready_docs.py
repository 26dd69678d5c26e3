"""Docs that stand alone: no internal references, a guide whose commands exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from mglru.cli import SUBCOMMANDS, cli
from mglru.presets import PRESETS

ROOT = Path(__file__).resolve().parents[2]
INTERNAL = re.compile(r"spec §|§\s?\d|\bspec section|[Ii]ssue \d|[Ii]ssue \"|DESIGN(\.md)?\b")


def _help_texts() -> dict[str, str]:
    runner = CliRunner()
    texts = {"mglru": runner.invoke(cli, ["--help"]).output}
    for name in SUBCOMMANDS:
        texts[name] = runner.invoke(cli, [name, "--help"]).output
        group = cli.get_command(None, name)  # type: ignore[arg-type]
        for sub in getattr(group, "commands", {}):
            texts[f"{name} {sub}"] = runner.invoke(cli, [name, sub, "--help"]).output
    texts["access-tracking-perf-test -h"] = runner.invoke(
        cli, ["access-tracking-perf-test", "-h"]).output
    texts["presets"] += runner.invoke(cli, ["presets"]).output
    return texts


def test_no_internal_references_in_what_users_read() -> None:
    """Help texts, preset notes, costs.toml and the docs cite the kernel, not our documents."""
    sources = _help_texts()
    sources |= {f"preset {n}": c.notes for n, c in PRESETS.items()}
    for rel in ("src/mglru/timing/costs.toml", "docs/architecture.md", "docs/guide.md",
                "docs/json.md", "README.md"):
        sources[rel] = (ROOT / rel).read_text()
    found = {where: m.group(0) for where, text in sources.items()
             if (m := INTERNAL.search(text))}
    assert found == {}


def _documented_commands() -> list[str]:
    lines = []
    for rel in ("docs/guide.md", "README.md"):
        for line in (ROOT / rel).read_text().splitlines():
            for m in re.finditer(r"(?:^\s{4}|`)(?:sudo )?(?:\.venv/bin/)?mglru ([^`#]*)", line):
                command = m.group(1).split("|")[0].strip()
                if "COMMAND" not in command and "..." not in command:  # placeholders
                    lines.append(command)
    return sorted(set(lines))


def test_guide_exists_and_covers_the_tasks() -> None:
    """The guide a newcomer reads first: the table, the selftest (model, host), generations,
    presets, workloads and traces."""
    guide = (ROOT / "docs" / "guide.md").read_text()
    for heading in ("Reproduce the cover letter's table", "Run the selftest on the model",
                    "Run the selftest on a host", "Look at generations", "Compare presets",
                    "Run workloads: access streams and cache traces"):
        assert f"## {heading}" in guide
    assert "--scale" in guide and "4.6x" in guide  # the approximation and its measured error


@pytest.mark.parametrize("command", _documented_commands())
def test_documented_commands_parse(command: str) -> None:
    """Every `mglru ...` line of the guide and README names real commands and options."""
    args = shlex.split(command)
    r = CliRunner().invoke(cli, [*args, "--help"])
    assert r.exit_code == 0, (command, r.output)
