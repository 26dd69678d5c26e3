"""Study specs: loading, validation, expansion into points. Mirrors mglru/experiment/spec.py."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from mglru.experiment.spec import (
    DEFAULT_SIZE,
    expand,
    load_spec,
    parse_spec,
    run_id_of,
    study_names,
)

SPEC = """
[experiment]
name = "toy"
description = "A toy study."

[base]
workload = "zipf"
alpha = 1.1
guest_mib = 512
seed = 7

[grid]
preset = ["v6.10", "seed-v4"]
locality = [1, 64, 512]

[sizes.quick]
guest_mib = 64
[sizes.full]
guest_mib = 1024

[report]
kind = "thread-question"
"""


def write(tmp_path: Path, text: str, name: str = "toy.toml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_grid_is_the_cartesian_product_over_base_and_size() -> None:
    """Six points (2 presets x 3 localities), the last grid key fastest, size over base."""
    spec = parse_spec(SPEC)
    points = expand(spec, "quick")
    assert [(p["preset"], p["locality"]) for p in points] == [
        ("v6.10", 1), ("v6.10", 64), ("v6.10", 512),
        ("seed-v4", 1), ("seed-v4", 64), ("seed-v4", 512)]
    for p in points:
        assert p["guest_mib"] == 64 and p["workload"] == "zipf" and p["alpha"] == 1.1
        assert (p["study"], p["size"], p["seed"]) == ("toy", "quick", 7)
        assert list(p)[:4] == ["run_id", "study", "size", "seed"]
    assert {p["guest_mib"] for p in expand(spec, "full")} == {1024}
    assert expand(spec) == expand(spec, DEFAULT_SIZE)


def test_run_id_is_the_sha256_of_the_sorted_json_without_run_id() -> None:
    """run_id: the first 16 hex of sha256(json.dumps(point without run_id, sort_keys=True))."""
    for p in expand(parse_spec(SPEC), "quick"):
        body = {k: v for k, v in p.items() if k != "run_id"}
        want = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
        assert p["run_id"] == want == run_id_of(p) == run_id_of(body)
        assert len(p["run_id"]) == 16


def test_run_id_is_stable_and_depends_only_on_parameters() -> None:
    """Reordering the spec's keys keeps the ids; changing a value or the size changes them."""
    reordered = SPEC.replace('workload = "zipf"\nalpha = 1.1', 'alpha = 1.1\nworkload = "zipf"')
    assert reordered != SPEC
    a = {p["run_id"] for p in expand(parse_spec(SPEC), "quick")}
    assert a == {p["run_id"] for p in expand(parse_spec(reordered), "quick")}
    assert len(a) == 6
    assert a.isdisjoint(p["run_id"] for p in expand(parse_spec(SPEC), "full"))
    other = SPEC.replace("alpha = 1.1", "alpha = 1.2")
    assert a.isdisjoint(p["run_id"] for p in expand(parse_spec(other), "quick"))
    # a known value: guards against an accidental change of the recipe
    p = {"study": "s", "size": "quick", "seed": 0, "x": 1}
    assert run_id_of(p) == hashlib.sha256(
        b'{"seed": 0, "size": "quick", "study": "s", "x": 1}').hexdigest()[:16]


def test_seed_comes_from_the_grid_else_base_else_zero() -> None:
    """A grid seed gives one point per seed; without any seed the points have seed 0."""
    spec = parse_spec(SPEC.replace("seed = 7", "").replace("[grid]", "[grid]\nseed = [1, 2]"))
    points = expand(spec, "quick")
    assert len(points) == 12 and {p["seed"] for p in points} == {1, 2}
    assert {p["seed"] for p in expand(parse_spec(SPEC.replace("seed = 7", "")), "quick")} == {0}


def test_excludes_drop_matching_points() -> None:
    """A point matching every key of one [[exclude]] table is dropped; true is not 1."""
    text = SPEC + """
[[exclude]]
preset = "seed-v4"
locality = 1

[[exclude]]
preset = "v6.10"
locality = 512
"""
    got = [(p["preset"], p["locality"]) for p in expand(parse_spec(text), "quick")]
    assert got == [("v6.10", 1), ("v6.10", 64), ("seed-v4", 64), ("seed-v4", 512)]
    flags = """
[experiment]
name = "flags"
[grid]
cap_0x8 = [true, false]
n = [1, 2]
[[exclude]]
n = true
"""
    assert len(expand(parse_spec(flags))) == 4  # n = 1 is not true
    excl = flags.replace("n = true", "cap_0x8 = true")
    assert [(p["cap_0x8"], p["n"]) for p in expand(parse_spec(excl))] == [(False, 1), (False, 2)]


def test_no_grid_and_no_sizes_is_one_point() -> None:
    """A spec with only [base]: one point at the default size."""
    points = expand(parse_spec('[experiment]\nname = "one"\n[base]\nx = 1\n'))
    assert len(points) == 1 and points[0]["size"] == DEFAULT_SIZE and points[0]["x"] == 1


def test_load_spec_reads_a_path_and_names_it_after_the_file(tmp_path: Path) -> None:
    """A path loads; without [experiment] name the file's stem names the study."""
    spec = load_spec(write(tmp_path, SPEC))
    assert spec.name == "toy" and spec.description == "A toy study."
    assert spec.report == {"kind": "thread-question"}
    spec = load_spec(write(tmp_path, "[grid]\nx = [1, 2]\n", "my-study.toml"))
    assert spec.name == "my-study" and len(expand(spec)) == 2
    assert spec.source.endswith("my-study.toml")


def test_packaged_studies_load_by_name() -> None:
    """Every packaged study loads by its name and expands at each of its sizes."""
    names = study_names()
    if not names:
        pytest.skip("no packaged studies in this tree")
    for name in names:
        spec = load_spec(name)
        assert spec.name == name and spec.source.startswith("(packaged)")
        for size in spec.size_names():
            assert expand(spec, size)


@pytest.mark.parametrize(("text", "message"), [
    ("[experiment]\nname='x'\n[bogus]\na=1\n", "unknown table(s) 'bogus'"),
    ("[experiment]\nname='x'\n[grid]\npreset = 'v6.10'\n", "grid.preset must be a list"),
    ("[experiment]\nname='x'\n[grid]\npreset = []\n", "grid.preset is an empty list"),
    ("[experiment]\nname='x'\n[grid]\nx = [1, 1]\n", "grid.x lists a value twice"),
    ("[experiment]\nname='x'\n[grid]\nx = [[1]]\n", "grid.x must hold strings"),
    ("[experiment]\nname='x'\n[base]\nt = {a = 1}\n", "base.t must be a string, number"),
    ("[experiment]\nname='x'\n[base]\nl = [1]\n", "base.l must be a string, number"),
    ("[experiment]\nname='x'\n[base]\nrun_id = 'a'\n", "base.run_id is set by the expansion"),
    ("[experiment]\nname='x'\n[grid]\nstudy = ['a']\n", "grid.study is set by the expansion"),
    ("[experiment]\nname='x'\ncolour = 1\n", "unknown key(s) in [experiment]: colour"),
    ("[experiment]\nname='a b'\n", "experiment.name must be a name"),
    ("[experiment]\nname='x'\nsizes = 3\n", "unknown key(s) in [experiment]: sizes"),
    ("sizes = 3\n", "[sizes] must hold tables"),
    ("[sizes]\nquick = 3\n", "sizes.quick must be a table"),
    ("[sizes.'a b']\nx = 1\n", "bad size name 'a b'"),
    ("[grid]\nx=[1]\n[exclude]\nx = 1\n", "write exclusions as [[exclude]] tables"),
    ("[grid]\nx=[1]\n[[exclude]]\ny = 1\n", "exclude #1 names 'y', which no point has"),
    ("[report]\nkind = 3\n", "report.kind must be a string"),
    ("[grid\n", "not valid TOML"),
])
def test_bad_specs_raise_value_errors_naming_the_problem(tmp_path: Path, text: str,
                                                        message: str) -> None:
    """Each mistake is a ValueError that names the file and the key."""
    path = write(tmp_path, text, "bad.toml")
    with pytest.raises(ValueError) as e:
        load_spec(path)
    assert message in str(e.value) and path in str(e.value)


def test_unknown_size_and_unknown_study() -> None:
    """An unknown size lists the spec's sizes; a name that is neither study nor file says so."""
    with pytest.raises(ValueError, match=r"unknown size 'huge'; this spec has: quick, full"):
        expand(parse_spec(SPEC), "huge")
    with pytest.raises(ValueError, match="unknown size 'quick'; this spec has: full"):
        expand(parse_spec("[grid]\nx = [1]\n", default_name="s"), "quick")
    with pytest.raises(ValueError, match="'no-such-study' is neither a study"):
        load_spec("no-such-study")
