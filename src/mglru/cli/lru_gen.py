"""`mglru lru-gen show|age|evict|caps`: the lru_gen client on the host or a simulated kernel.

The commands only read and write the kernel's files (`mglru.tools.lru_gen`),
so they behave the same on `--kernel host` (the running kernel, or `--root` a
directory laid out like one), `--kernel sim` (a fresh `SimKernel` of
`--config`; each invocation starts a new one, so `sim` mostly shows what an
idle kernel prints) and `--kernel qemu:6.12` (a stock kernel booted in QEMU for
this one command; see `mglru.backends`).

MEMCG is an id (all digits), a path below the cgroup root ("/a/b", "/" for the
root memcg) or a name as lru_gen_util takes it ("a/b" means "/a/b").

Exit codes: 0 success; 1 an error (rejected command, unknown memcg, bad input);
2 a usage error; 4 a missing feature (kselftest's skip code), reported in one
line that says which feature and how to get it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click

from mglru.abi import LRU_GEN, LRU_GEN_ENABLED, FeatureUnavailable, Kernel
from mglru.abi.kernel import BackendError
from mglru.backends import (
    DEFAULT_SIM_PRESET,
    KERNEL_SPEC_HELP,
    KernelSpec,
    UnknownKernel,
    open_kernel,
    parse_kernel_spec,
)
from mglru.cli.output import configuration, document, human, json_option, write_json
from mglru.presets import PRESETS
from mglru.tools.lru_gen import (
    CAP_NAMES,
    RULES,
    CommandError,
    LruGenParseError,
    LruGenStats,
    MemcgNotFound,
    MemcgStats,
    age_memcg,
    check_lru_gen_usable,
    evict_memcg,
    format_lru_gen,
    parse_lru_gen,
    read_caps,
    read_lru_gen,
)

__all__ = ["lru_gen", "EXIT_ERROR", "EXIT_UNAVAILABLE"]

EXIT_ERROR = 1
#: a missing feature: kselftest's KSFT_SKIP, as the selftest port reports it
EXIT_UNAVAILABLE = 4
DEFAULT_SIM_CONFIG = DEFAULT_SIM_PRESET


@contextmanager
def _reported_errors() -> Iterator[None]:
    """Turn the client's errors into one line on stderr and an exit code."""
    ctx = click.get_current_context()
    try:
        yield
    except FeatureUnavailable as e:
        click.echo(f"Error: {e}", err=True)
        ctx.exit(EXIT_UNAVAILABLE)
    except BackendError as e:
        click.echo(f"Error: {e}", err=True)
        ctx.exit(EXIT_ERROR)
    except (CommandError, LruGenParseError, MemcgNotFound, ValueError) as e:
        click.echo(f"Error: {e}", err=True)
        ctx.exit(EXIT_ERROR)
    except KeyError as e:
        click.echo(f"Error: {e.args[0] if e.args else e}", err=True)
        ctx.exit(EXIT_ERROR)
    except OSError as e:
        where = f"{e.filename}: " if e.filename else ""
        click.echo(f"Error: {where}{e.strerror or e}", err=True)
        ctx.exit(EXIT_ERROR)


def _backend_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = json_option(optional_value=True)(f)
    f = click.option("--root", type=click.Path(file_okay=False), default=None,
                     help="filesystem root for --kernel host (a tree laid out like /sys) "
                          "[default: /]")(f)
    f = click.option("--config", type=click.Choice(list(PRESETS)), default=None,
                     help=f"kernel preset for --kernel sim [default: {DEFAULT_SIM_CONFIG}]")(f)
    f = click.option("--kernel", "kernel_kind", type=KernelSpecType(), default="host",
                     show_default=True,
                     help="the running kernel, a fresh simulated one, or a stock kernel "
                          f"booted in QEMU ({KERNEL_SPEC_HELP})")(f)
    return f


class KernelSpecType(click.ParamType):
    """A `--kernel` value, checked by `parse_kernel_spec`."""

    name = "kernel"

    def convert(self, value, param, ctx):  # noqa: ANN001, ANN201 - click's signature
        """parse_kernel_spec()."""
        if isinstance(value, KernelSpec):
            return value
        try:
            return parse_kernel_spec(value)
        except UnknownKernel as e:
            self.fail(str(e), param, ctx)


@contextmanager
def _make_kernel(spec: KernelSpec, config: str | None, root: str | None) -> Iterator[Kernel]:
    """Open the kernel for one command (a QEMU guest stops when the command ends)."""
    if config is not None and spec.kind != "sim":
        raise click.UsageError("--config applies to --kernel sim only")
    if root is not None and spec.kind != "host":
        raise click.UsageError("--root applies to --kernel host only")
    with open_kernel(spec, config=config, root=root) as kernel:
        yield kernel


def _memcg_ref(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _swappiness(text: str | None) -> int | str | None:
    if text is None or text == "max":
        return text
    if not text.isdigit():
        raise click.BadParameter(f"expected a non-negative integer or 'max', got {text!r}",
                                 param_hint="--swappiness")
    return int(text)


def _summary(m: MemcgStats) -> str:
    by_seq = " ".join(f"{s}={n}" for s, n in m.pages_by_seq().items()) or "none"
    return f"memcg {m.memcg_id} {m.path}: {m.nr_pages()} pages; by seq: {by_seq}"


def _write(schema: str, json_path: str, **data: Any) -> None:
    """The command's JSON document; its configuration is every option given or defaulted."""
    ctx = click.get_current_context()
    options = {k: v for k, v in ctx.params.items() if k not in ("json_path", "input_file")}
    if "input_file" in ctx.params:
        options["input"] = getattr(ctx.params["input_file"], "name", None)
    options = {("kernel" if k == "kernel_kind" else k): v for k, v in options.items()}
    if isinstance(options.get("kernel"), KernelSpec):
        options["kernel"] = str(options["kernel"])
    if options.get("kernel") == "sim":
        options["config"] = options.get("config") or DEFAULT_SIM_CONFIG
    names = []
    while ctx.parent is not None:  # the command's path below `mglru`, e.g. "lru-gen show"
        names.insert(0, ctx.info_name)
        ctx = ctx.parent
    write_json(json_path, document(schema, configuration(" ".join(names), **options), **data))


@click.group("lru-gen")
def lru_gen() -> None:
    """Read and drive the kernel's lru_gen interface (debugfs), on the host or simulated."""


@lru_gen.command("show")
@click.argument("memcg", required=False)
@click.option("--full", is_flag=True, help="read lru_gen_full (tiers and mm_stats too)")
@click.option("--input", "input_file", type=click.File("r"), default=None,
              help="parse a captured lru_gen or lru_gen_full file ('-' for stdin) instead")
@_backend_options
def show(memcg: str | None, full: bool, input_file: Any, kernel_kind: KernelSpec,
         config: str | None,
         root: str | None, json_path: str | None) -> None:
    """Print the generations of every memcg (or of MEMCG), with per-seq page sums."""
    with _reported_errors():
        if input_file is not None:
            if config is not None or root is not None:
                raise click.UsageError("--input reads a file; --config and --root do not apply")
            stats = parse_lru_gen(input_file.read(), source=input_file.name)
        else:
            with _make_kernel(kernel_kind, config, root) as kernel:
                stats = read_lru_gen(kernel, full)
        if memcg is not None:
            stats = LruGenStats((stats.find(_memcg_ref(memcg)),), stats.full)
        if json_path:
            _write("mglru.lru-gen.show/1", json_path, **stats.to_dict())
            if json_path == "-":
                return
        human(format_lru_gen(stats), nl=False)
        for m in stats.memcgs:
            human(_summary(m))


@lru_gen.command("age")
@click.argument("memcg")
@click.option("--swappiness", default="1", show_default=True,
              help="swappiness field of the command (an integer, or 'max' on v6.16+)")
@click.option("--force-scan/--no-force-scan", default=True, show_default=True,
              help="force_scan field: scan page tables even if the Bloom filters say no")
@_backend_options
def age(memcg: str, swappiness: str, force_scan: bool, kernel_kind: KernelSpec, config: str | None,
        root: str | None, json_path: str | None) -> None:
    """Create a generation on every node of MEMCG (`+ id node max_seq 1 1`, as lru_gen_util)."""
    with _reported_errors(), _make_kernel(kernel_kind, config, root) as kernel:
        commands, after = age_memcg(kernel, _memcg_ref(memcg), _swappiness(swappiness),
                                    force_scan)
        _report(commands, after, json_path)


@lru_gen.command("evict")
@click.argument("memcg")
@click.option("--seq", type=click.IntRange(min=0), default=None,
              help="evict generations up to this seq [default: each node's oldest]")
@click.option("--node", "nid", type=click.IntRange(min=0), default=None,
              help="only this node [default: every node listed]")
@click.option("--swappiness", default=None, help="swappiness field (an integer, or 'max')")
@click.option("--nr-to-reclaim", type=click.IntRange(min=0), default=None,
              help="stop after this many pages (needs --swappiness)")
@_backend_options
def evict(memcg: str, seq: int | None, nid: int | None, swappiness: str | None,
          nr_to_reclaim: int | None, kernel_kind: KernelSpec, config: str | None, root: str | None,
          json_path: str | None) -> None:
    """Evict the oldest generations of MEMCG (`- id node seq [swappiness [nr_to_reclaim]]`)."""
    with _reported_errors(), _make_kernel(kernel_kind, config, root) as kernel:
        commands, after = evict_memcg(kernel, _memcg_ref(memcg), seq, nid,
                                      _swappiness(swappiness), nr_to_reclaim)
        _report(commands, after, json_path)


def _report(commands: list[str], after: MemcgStats, json_path: str | None) -> None:
    if json_path:
        _write("mglru.lru-gen.command/1", json_path, commands=[c.strip() for c in commands],
               memcg=after.to_dict())
        if json_path == "-":
            return
    for command in commands:
        human(command, nl=False)
    human(_summary(after))


def _debugfs_state(kernel: Kernel) -> str:
    if not kernel.exists(LRU_GEN):
        return "missing"
    access = getattr(kernel, "access", None)
    if callable(access) and not access(LRU_GEN, write=True):
        return "not accessible read-write"
    return "read-write"


@lru_gen.command("caps")
@click.option("--rules", type=click.Choice(list(RULES)), default=None,
              help="exit 4 with the reason unless the selftest would use MGLRU under these rules")
@_backend_options
def caps(rules: str | None, kernel_kind: KernelSpec, config: str | None, root: str | None,
         json_path: str | None) -> None:
    """Show the lru_gen caps and whether the selftest (v4 or upstream rules) can use MGLRU."""
    with _reported_errors(), _make_kernel(kernel_kind, config, root) as kernel:
        mask = read_caps(kernel)
        verdicts: dict[str, FeatureUnavailable | None] = {}
        for r in RULES:
            try:
                check_lru_gen_usable(kernel, r)
                verdicts[r] = None
            except FeatureUnavailable as e:
                verdicts[r] = e
        if json_path:
            _write("mglru.lru-gen.caps/1", json_path, enabled=f"0x{mask:04x}", caps=mask,
                   bits={name: bool(mask & bit) for bit, name in CAP_NAMES.items()},
                   usable={r: {"usable": e is None, "reason": None if e is None else e.reason,
                               "hint": None if e is None else e.hint}
                           for r, e in verdicts.items()})
        if json_path != "-":
            human(f"{LRU_GEN_ENABLED}: 0x{mask:04x}")
            for bit, name in CAP_NAMES.items():
                human(f"  0x{bit:04x} {name:<20s} {'on' if mask & bit else 'off'}")
            human(f"{LRU_GEN}: {_debugfs_state(kernel)}")
            for r, e in verdicts.items():
                human(f"selftest ({r} rules): "
                      + ("uses MGLRU" if e is None else f"cannot use MGLRU: {e.reason}"))
        if rules is not None and verdicts[rules] is not None:
            raise verdicts[rules]  # type: ignore[misc]
