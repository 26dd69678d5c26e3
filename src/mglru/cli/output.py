"""The commands' output conventions: `--json FILE`, one JSON envelope, checks before work.

Every command that writes JSON takes `--json FILE`; `-` is stdout, and then
nothing else goes to stdout (the human lines move to stderr, see `human`).
Every document starts with the same envelope (docs/json.md):

    {"mglru_version": "0.1.0", "schema": "mglru.seed-table/1",
     "configuration": {"command": "reproduce seed-table", ...}, ...the data...}

Output paths are checked when the options are parsed, before any simulated
step, so a typo fails in one line instead of after the run.
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any

import click

__all__ = ["OutputPath", "json_option", "human", "document", "write_json", "rounded",
           "significant", "configuration", "SIZE_HELP", "Size"]

JSON_HELP = "write the results as JSON to FILE ('-': stdout, human lines then go to stderr)"


class OutputPath(click.ParamType):
    """A file the command will write: '-' (stdout) or a path whose directory is writable."""

    name = "file"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str:
        """The path, or a usage error saying why it cannot be written."""
        path = os.fspath(value)
        if path == "-":
            return path
        if os.path.isdir(path):
            self.fail(f"{path!r} is a directory", param, ctx)
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            self.fail(f"cannot write {path!r}: directory {parent!r} does not exist", param, ctx)
        if os.path.exists(path) and not os.access(path, os.W_OK):
            self.fail(f"cannot write {path!r}: permission denied", param, ctx)
        if not os.path.exists(path) and not os.access(parent, os.W_OK):
            self.fail(f"cannot write {path!r}: directory {parent!r} is not writable", param, ctx)
        return path


def json_option(*, optional_value: bool = False):  # noqa: ANN201 - a click decorator
    """`--json FILE`; with `optional_value`, a bare `--json` still means stdout (old usage)."""
    extra: dict[str, Any] = {"is_flag": False, "flag_value": "-"} if optional_value else {}
    return click.option("--json", "json_path", type=OutputPath(), default=None,
                        metavar="FILE", help=JSON_HELP, **extra)


def human(text: str = "", json_path: str | None = None, nl: bool = True) -> None:
    """A line for people: stdout, or stderr when the JSON document goes to stdout."""
    click.echo(text, nl=nl, err=json_path == "-")


def rounded(x: float | None, places: int) -> float | None:
    """`x` to `places` decimals (None stays None): seconds to ns are 9 places."""
    return None if x is None else round(float(x), places)


def significant(x: float | None, digits: int = 4) -> float | None:
    """`x` to `digits` significant digits: rates and ratios measured on this host."""
    if x is None or x == 0 or not math.isfinite(x):
        return x
    return round(float(x), digits - 1 - int(math.floor(math.log10(abs(x)))))


def configuration(command: str, /, **settings: Any) -> dict[str, Any]:
    """The envelope's `configuration`: the command and every setting that shaped the data."""
    return {"command": command, **settings}


def document(schema: str, config: dict[str, Any], /, **data: Any) -> dict[str, Any]:
    """The envelope (version, schema name, configuration) followed by the data."""
    from mglru import __version__

    return {"mglru_version": __version__, "schema": schema, "configuration": config, **data}


def write_json(path: str, doc: Any) -> None:
    """Write `doc` as indented JSON to `path` ('-': stdout)."""
    text = json.dumps(doc, indent=2, default=list) + "\n"
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise click.ClickException(f"cannot write {path}: {e.strerror or e}") from None


SIZE_HELP = "a size in bytes with an optional K, M, G or T suffix (4096, 64M, 1G)"


class Size(click.ParamType):
    """A byte size: `64M`, `1G`, `0.5G`, `4096`; one parser for every command."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> int:
        """The size in bytes, or a usage error naming the accepted forms."""
        from mglru.sizes import parse_size

        if isinstance(value, int):
            return value
        try:
            return parse_size(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)
