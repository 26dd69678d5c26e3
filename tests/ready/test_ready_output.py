"""One output convention: `--json FILE` everywhere, one envelope, rounded numbers, documented."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mglru import __version__
from mglru.cli import cli

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden_host" / "lru_gen_v6.8_2nodes.txt"


def invoke(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def floats(obj: Any) -> list[float]:
    if isinstance(obj, float):
        return [obj]
    if isinstance(obj, dict):
        return [f for v in obj.values() for f in floats(v)]
    if isinstance(obj, list):
        return [f for v in obj for f in floats(v)]
    return []


def check_envelope(doc: dict, schema: str, command: str) -> None:
    assert list(doc)[:3] == ["mglru_version", "schema", "configuration"]
    assert doc["mglru_version"] == __version__
    assert doc["schema"] == schema
    assert doc["configuration"]["command"] == command
    for x in floats(doc):  # no binary noise such as 0.9491175020000001
        assert len(repr(x).split(".")[-1].split("e")[0]) <= 9, x


def test_selftest_json_to_stdout_is_the_only_stdout() -> None:
    """`--json -`: stdout parses as one JSON document; the C test's lines are on stderr."""
    r = invoke("access-tracking-perf-test", "-l", "-v", "2", "-b", "16M", "--json", "-")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    check_envelope(doc, "mglru.access-tracking-perf-test/1", "access-tracking-perf-test")
    assert doc["configuration"]["vcpus"] == 2 and doc["configuration"]["vcpu_bytes"] == 16 << 20
    assert doc["configuration"]["resolved"]["rules"] == "v4"
    assert "Populating memory             :" in r.stderr
    assert "Populating memory             :" not in r.stdout


def test_seed_table_json_records_its_configuration(tmp_path: Path) -> None:
    """arch, the preset list and the cost file are in the document; seconds to the ns."""
    out = tmp_path / "t.json"
    r = invoke("-q", "reproduce", "seed-table", "--vcpus", "1", "--scale", "64", "--arch",
               "arm64", "--also", "v6.15", "--json", str(out))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    check_envelope(doc, "mglru.seed-table/1", "reproduce seed-table")
    c = doc["configuration"]
    assert (c["arch"], c["vcpus"], c["scale"]) == ("arm64", [1], 64)
    assert c["configs"] == ["no aging", "no opt", "opt", "v6.15"]
    assert re.fullmatch(r"[0-9a-f]{64}", c["costs"]["sha256"])
    assert [row["config"] for row in doc["rows"]] == c["configs"]


def test_seed_table_json_dash_leaves_stdout_to_json() -> None:
    """seed-table --json -: the printed table moves to stderr."""
    r = invoke("-q", "reproduce", "seed-table", "--vcpus", "1", "--scale", "64", "--json", "-")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert len(doc["rows"]) == 3 and "num_vcpus" in r.stderr


@pytest.mark.parametrize("args", [("presets",), ("lru-gen", "show", "--input", str(GOLDEN)),
                                  ("lru-gen", "caps", "--kernel", "sim"),
                                  ("lru-gen", "age", "/", "--kernel", "sim")])
def test_presets_and_lru_gen_take_a_file(tmp_path: Path, args: tuple[str, ...]) -> None:
    """`--json FILE` writes the document and leaves the text on stdout; bare --json is stdout."""
    out = tmp_path / "o.json"
    r = invoke(*args, "--json", str(out))
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    name = " ".join(a for a in args if not a.startswith(("-", "/")) and a not in ("sim",)
                    and not a.endswith(".txt"))
    schema = {"presets": "mglru.presets/1", "lru-gen show": "mglru.lru-gen.show/1",
              "lru-gen caps": "mglru.lru-gen.caps/1", "lru-gen age": "mglru.lru-gen.command/1"}
    check_envelope(doc, schema[name], name)
    assert r.stdout.strip()  # the text output is still there
    r = invoke(*args, "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["schema"] == schema[name]


def test_every_schema_is_documented_with_an_example() -> None:
    """docs/json.md: one section per schema, each with an example that parses and matches."""
    text = (ROOT / "docs" / "json.md").read_text()
    examples = [json.loads(m) for m in re.findall(r"```json\n(.*?)```", text, re.S)]
    documented = {e["schema"] for e in examples}
    emitted = set()
    for path in (ROOT / "src" / "mglru" / "cli").glob("*.py"):
        emitted |= set(re.findall(r'"(mglru\.[a-z.-]+/\d+)"', path.read_text()))
    assert emitted and emitted <= documented, emitted - documented
    for e in examples:
        assert list(e)[:3] == ["mglru_version", "schema", "configuration"]
