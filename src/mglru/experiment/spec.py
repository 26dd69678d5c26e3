"""Study specs: a TOML file of common parameters, a grid, sizes and exclusions, and its points.

    [experiment]   name, description
    [base]         flat parameters common to every point
    [grid]         each key a list; the points are the cartesian product, over base
    [sizes.NAME]   overrides of base for `--size NAME` (`quick` must run in under a minute)
    [[exclude]]    a point that matches every key of one of these tables is dropped
    [report]       hints for the report (`kind`: which study plot to draw)

A point is `base | sizes[size] | one grid combination`, plus `study`, `size`
and `seed` (the grid's seed, else base's, else 0), plus `run_id`: the first
16 hex digits of the sha256 of the point's JSON (sorted keys) without
`run_id`. The id depends only on the parameters, so a results file written
by one run of a spec is recognised by the next (see `mglru.experiment.sweep`).

A study name (`thread-question`) is the packaged `mglru/experiment/studies/NAME.toml`;
anything else is read as a path. Mistakes (an unknown table, a grid value that
is not a list, an unknown size) raise ValueError naming the file and the key,
before any point runs. Which keys a point may have is the runner's business
(`mglru.experiment.scenario.run_point` rejects unknown ones).

Future optimizations:
1. zipped grid axes (vary two keys together) instead of an exclude per unwanted pair.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Spec", "load_spec", "parse_spec", "expand", "run_id_of", "study_names",
           "study_path", "DEFAULT_SIZE", "QUICK_SIZE", "TABLES", "RESERVED_KEYS"]

#: the size run when none is asked for, and the one `--quick` means
DEFAULT_SIZE = "full"
QUICK_SIZE = "quick"
#: the top-level tables a spec may have
TABLES = ("experiment", "base", "grid", "sizes", "exclude", "report")
#: keys the expansion sets itself; a spec may not set them
RESERVED_KEYS = ("study", "size", "run_id")
_EXPERIMENT_KEYS = ("name", "description")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SCALARS = (str, int, float, bool)

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class Spec:
    """A validated study spec; `expand(spec, size)` gives its points."""

    name: str
    description: str = ""
    base: dict[str, Scalar] = field(default_factory=dict)
    grid: dict[str, list[Scalar]] = field(default_factory=dict)
    sizes: dict[str, dict[str, Scalar]] = field(default_factory=dict)
    exclude: list[dict[str, Scalar]] = field(default_factory=list)
    report: dict[str, Any] = field(default_factory=dict)
    #: where it came from: a path, or "(packaged) mglru/experiment/studies/NAME.toml"
    source: str = "<string>"

    def size_names(self) -> list[str]:
        """The sizes `expand` accepts: the spec's, or only DEFAULT_SIZE if it has none."""
        return list(self.sizes) or [DEFAULT_SIZE]


# ---------------------------------------------------------------------------------------------
# packaged studies
# ---------------------------------------------------------------------------------------------

def _studies_dir():  # noqa: ANN202 - an importlib.resources Traversable
    """The packaged studies folder (mglru/experiment/studies)."""
    from importlib import resources

    return resources.files("mglru.experiment") / "studies"


def study_names() -> list[str]:
    """The packaged studies, sorted (file names without `.toml`)."""
    folder = _studies_dir()
    if not folder.is_dir():
        return []
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir()
                  if p.name.endswith(".toml"))


def study_path(name: str) -> str:
    """How a packaged study is named in messages and envelopes."""
    return f"(packaged) mglru/experiment/studies/{name}.toml"


def load_spec(name_or_path: str | os.PathLike[str]) -> Spec:
    """The spec of a packaged study, or of a TOML file.

    Args:
        name_or_path: a study name (see `study_names`) or the path of a TOML file.

    Raises:
        ValueError: neither a study nor a file, or the file is not a valid spec.
    """
    text_name = os.fspath(name_or_path)
    if text_name in study_names():
        text = (_studies_dir() / f"{text_name}.toml").read_text()
        return parse_spec(text, study_path(text_name), default_name=text_name)
    if os.path.isfile(text_name):
        try:
            with open(text_name, "rb") as f:
                data = f.read()
        except OSError as e:
            raise ValueError(f"{text_name}: {e.strerror or e}") from None
        try:
            text = data.decode()
        except UnicodeDecodeError:
            raise ValueError(f"{text_name}: not a text (TOML) file") from None
        stem = os.path.basename(text_name).removesuffix(".toml")
        return parse_spec(text, text_name, default_name=stem)
    known = ", ".join(study_names()) or "none packaged"
    raise ValueError(f"{text_name!r} is neither a study ({known}) nor a file")


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

def _kind(value: Any) -> str:
    """How a TOML value is named in messages: 'a table', 'a list', 'int'."""
    return {dict: "a table", list: "a list"}.get(type(value), type(value).__name__)


def _scalars(table: Any, where: str, source: str) -> dict[str, Scalar]:
    """A table of flat scalars (str, int, float, bool) with no reserved key."""
    if not isinstance(table, dict):
        raise ValueError(f"{source}: [{where}] must be a table, got {_kind(table)}")
    for key, value in table.items():
        if not isinstance(value, _SCALARS):
            raise ValueError(f"{source}: {where}.{key} must be a string, number or boolean, "
                             f"got {_kind(value)}")
        if key in RESERVED_KEYS:
            raise ValueError(f"{source}: {where}.{key} is set by the expansion; "
                             f"a spec may not set {', '.join(RESERVED_KEYS)}")
    return dict(table)


def _grid(table: Any, source: str) -> dict[str, list[Scalar]]:
    """The [grid] table: each key a non-empty list of distinct scalars."""
    if not isinstance(table, dict):
        raise ValueError(f"{source}: [grid] must be a table, got {_kind(table)}")
    out = {}
    for key, values in table.items():
        if not isinstance(values, list):
            raise ValueError(f"{source}: grid.{key} must be a list of values, got "
                             f"{_kind(values)} {values!r} (write [{values!r}] for one value, "
                             "or move it to [base])")
        if not values:
            raise ValueError(f"{source}: grid.{key} is an empty list (no point would run)")
        for value in values:
            if not isinstance(value, _SCALARS):
                raise ValueError(f"{source}: grid.{key} must hold strings, numbers or "
                                 f"booleans, got {_kind(value)}")
        if len({json.dumps(v) for v in values}) != len(values):
            raise ValueError(f"{source}: grid.{key} lists a value twice: {values!r}")
        if key in RESERVED_KEYS:
            raise ValueError(f"{source}: grid.{key} is set by the expansion; "
                             f"a spec may not set {', '.join(RESERVED_KEYS)}")
        out[key] = list(values)
    return out


def parse_spec(text: str, source: str = "<string>", default_name: str | None = None) -> Spec:
    """Parse and validate a spec's TOML text.

    Args:
        text: the TOML.
        source: where it came from, for messages.
        default_name: the study name when `[experiment] name` is absent.

    Raises:
        ValueError: bad TOML, an unknown table or key, a grid value that is not a list,
            a size or exclusion that is not a table of scalars.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{source}: not valid TOML: {e}") from None
    unknown = [t for t in data if t not in TABLES]
    if unknown:
        raise ValueError(f"{source}: unknown table(s) {', '.join(map(repr, unknown))}; "
                         f"valid: {', '.join(TABLES)}")
    meta = data.get("experiment", {})
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: [experiment] must be a table, got {_kind(meta)}")
    bad = [k for k in meta if k not in _EXPERIMENT_KEYS]
    if bad:
        raise ValueError(f"{source}: unknown key(s) in [experiment]: {', '.join(bad)}; "
                         f"valid: {', '.join(_EXPERIMENT_KEYS)}")
    name = meta.get("name", default_name)
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"{source}: experiment.name must be a name such as 'my-study' "
                         f"(letters, digits, '-', '_', '.'), got {name!r}")
    description = meta.get("description", "")
    if not isinstance(description, str):
        raise ValueError(f"{source}: experiment.description must be a string, "
                         f"got {_kind(description)}")
    base = _scalars(data.get("base", {}), "base", source)
    grid = _grid(data.get("grid", {}), source)
    sizes_table = data.get("sizes", {})
    if not isinstance(sizes_table, dict):
        raise ValueError(f"{source}: [sizes] must hold tables such as [sizes.quick], "
                         f"got {_kind(sizes_table)}")
    sizes = {}
    for size, overrides in sizes_table.items():
        if not _NAME.match(size):
            raise ValueError(f"{source}: bad size name {size!r} (letters, digits, '-', '_')")
        if not isinstance(overrides, dict):
            raise ValueError(f"{source}: sizes.{size} must be a table such as [sizes.{size}], "
                             f"got {_kind(overrides)}")
        sizes[size] = _scalars(overrides, f"sizes.{size}", source)
    excludes = data.get("exclude", [])
    if isinstance(excludes, dict):
        raise ValueError(f"{source}: write exclusions as [[exclude]] tables, not [exclude]")
    if not isinstance(excludes, list):
        raise ValueError(f"{source}: exclude must be [[exclude]] tables, got {_kind(excludes)}")
    known = set(base) | set(grid) | {k for s in sizes.values() for k in s} | {"seed"}
    exclude = []
    for i, table in enumerate(excludes, 1):
        where = f"exclude #{i}"
        if not isinstance(table, dict) or not table:
            raise ValueError(f"{source}: {where} must be a non-empty table of parameters")
        table = _scalars(table, where, source)
        typo = [k for k in table if k not in known]
        if typo:
            raise ValueError(f"{source}: {where} names {', '.join(map(repr, typo))}, which no "
                             f"point has; parameters: {', '.join(sorted(known))}")
        exclude.append(table)
    report = data.get("report", {})
    if not isinstance(report, dict):
        raise ValueError(f"{source}: [report] must be a table, got {_kind(report)}")
    if not isinstance(report.get("kind", ""), str):
        raise ValueError(f"{source}: report.kind must be a string, "
                         f"got {_kind(report['kind'])}")
    return Spec(name=name, description=description.strip(), base=base, grid=grid, sizes=sizes,
                exclude=exclude, report=dict(report), source=source)


# ---------------------------------------------------------------------------------------------
# expansion
# ---------------------------------------------------------------------------------------------

def run_id_of(point: dict[str, Any]) -> str:
    """The point's id: 16 hex digits of the sha256 of its JSON (sorted keys), run_id left out."""
    body = {k: v for k, v in point.items() if k != "run_id"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def _same(a: Scalar, b: Scalar) -> bool:
    """Equal as TOML values: `true` is not `1`, `1` is `1.0`."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _excluded(point: dict[str, Any], exclude: list[dict[str, Scalar]]) -> bool:
    """The point matches every key of one [[exclude]] table."""
    return any(all(k in point and _same(point[k], v) for k, v in table.items())
               for table in exclude)


def expand(spec: Spec, size: str | None = None) -> list[dict[str, Any]]:
    """The spec's points at `size`, in grid order (the last grid key varies fastest).

    Each point is `{"run_id", "study", "size", "seed", ...parameters}`.

    Args:
        spec: a spec from `load_spec` or `parse_spec`.
        size: a size of the spec (DEFAULT_SIZE if None).

    Raises:
        ValueError: an unknown size, or two points with the same parameters.
    """
    size = DEFAULT_SIZE if size is None else size
    if size not in spec.size_names():
        raise ValueError(f"{spec.source}: unknown size {size!r}; this spec has: "
                         f"{', '.join(spec.size_names())}")
    common = {**spec.base, **spec.sizes.get(size, {})}
    keys = list(spec.grid)
    points = []
    seen: dict[str, dict[str, Any]] = {}
    for combo in itertools.product(*(spec.grid[k] for k in keys)):
        params = {**common, **dict(zip(keys, combo, strict=True))}
        if _excluded(params, spec.exclude):
            continue
        seed = params.pop("seed", 0)
        point = {"study": spec.name, "size": size, "seed": seed, **params}
        rid = run_id_of(point)
        if rid in seen:  # cannot happen with distinct grid values; asserted all the same
            raise ValueError(f"{spec.source}: two points with the same parameters: {point}")
        seen[rid] = point
        points.append({"run_id": rid, **point})
    return points
