"""Installs that work anywhere: a read-only install, host tools without numba, `python -m mglru`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
GOLDEN_HOST = ROOT / "tests" / "golden_host"


def _python(code: str, env: dict[str, str], cwd: Path | None = None, timeout: int = 300):
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


def _copy_package(tmp_path: Path) -> Path:
    """A fresh copy of the package with no numba cache, as a new install has."""
    site = tmp_path / "site"
    shutil.copytree(SRC / "mglru", site / "mglru",
                    ignore=shutil.ignore_patterns("__pycache__", "*.nbi", "*.nbc", "*.deps"))
    return site


def _env(site: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NUMBA_", "XDG_"))}
    env.update(PYTHONPATH=str(site), PYTHONDONTWRITEBYTECODE="1", **extra)
    return env


def _block_in_tree_cache(site: Path) -> None:
    """Make the package's __pycache__ unusable even for root: a file where the dir would be."""
    (site / "mglru" / "lru_gen" / "__pycache__").write_text("not a directory\n")


def test_no_writable_cache_is_a_notice_not_a_crash(tmp_path: Path) -> None:
    """Neither __pycache__ nor the user's cache dir writable: import and run, with a notice."""
    site = _copy_package(tmp_path)
    _block_in_tree_cache(site)
    blocker = tmp_path / "file"
    blocker.write_text("")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = _env(site, XDG_CACHE_HOME=str(blocker / "cache"), HOME=str(blocker / "home"),
               TMPDIR=str(tmp))
    r = _python("import sys; from mglru.cli import main; "
                "sys.exit(main(['lru-gen', 'show', '--kernel', 'sim', '--json', '-']))",
                env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]  # it used to die: "no locator available"
    assert '"schema": "mglru.lru-gen.show/1"' in r.stdout and r.stderr == ""
    # a compiled kernel is compiled, and the notice says it will be on every run
    r = _python("""
import numpy as np
from mglru.cli import setup_logging
setup_logging(0, 0)
from mglru.lru_gen._list_kernel import list_key_range
z = np.zeros(8, np.uint32)
print(list_key_range(z, z, z, 0, 8, 1, 0, 0))
""", env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no locator available" not in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("warning: compiling kernels on every run: no writable cache "
                          "directory") == 1, r.stderr
    leftovers = list(tmp.iterdir())
    assert leftovers == []  # the per-process cache is removed at exit


def test_read_only_package_falls_back_to_the_user_cache_dir(tmp_path: Path) -> None:
    """The package's __pycache__ unusable: numba caches in $XDG_CACHE_HOME/numba instead."""
    site = _copy_package(tmp_path)
    _block_in_tree_cache(site)
    cache = tmp_path / "cache"
    env = _env(site, XDG_CACHE_HOME=str(cache))
    code = ("import numpy as np; from mglru.lru_gen import _list_kernel as m; "
            "fns = [getattr(m, n) for n in dir(m) if hasattr(getattr(m, n), 'stats')]; "
            "assert fns; print(len(fns))")
    r = _python(code, env, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "no writable cache directory" not in r.stderr
    assert (cache / "numba").is_dir()
    assert any((cache / "numba").iterdir())  # numba's per-directory subfolder


def test_compile_notice_on_first_run(tmp_path: Path) -> None:
    """When numba compiles (not when it loads the cache): one "compiling kernels" line."""
    site = _copy_package(tmp_path)
    code = """
import sys, numba
from mglru.cli import setup_logging
import mglru.lru_gen
setup_logging(0, int(sys.argv[1]))
@numba.njit
def f(x):
    return x + 1
@numba.njit
def g(x):
    return x + 2
f(1); g(1)
"""
    for quiet, expected in ((0, 1), (1, 0)):
        r = subprocess.run([sys.executable, "-c", code, str(quiet)], env=_env(site),
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr[-2000:]
        assert r.stderr.count("compiling kernels (first run only)...") == expected, r.stderr


def test_host_tools_import_no_numba_or_numpy(tmp_path: Path) -> None:
    """The lru_gen parser and `mglru lru-gen` on the host load neither numba nor numpy."""
    golden = sorted(GOLDEN_HOST.glob("lru_gen*"))[0]
    tree = tmp_path / "host"
    for rel, text in (("sys/kernel/mm/lru_gen/enabled", "0x0007\n"),
                      ("sys/kernel/debug/lru_gen", golden.read_text()),
                      ("sys/fs/cgroup/cgroup.controllers", "memory\n")):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_text(text)
    code = f"""
import sys
import mglru, mglru.abi, mglru.tools.lru_gen
from mglru.tools.lru_gen import parse_lru_gen
parse_lru_gen(open({str(golden)!r}).read())
from mglru.cli import main
for argv in (['lru-gen', 'show', '--input', {str(golden)!r}],
             ['lru-gen', 'show', '--root', {str(tree)!r}, '--json', '-'],
             ['lru-gen', 'caps', '--root', {str(tree)!r}],
             ['presets'], ['--help'], ['lru-gen', '--help']):
    code = main(argv)
    assert code in (0, 4), (argv, code)
heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('numba', 'numpy', 'llvmlite'))
print('HEAVY', heavy[:5], file=sys.stderr)
sys.exit(1 if heavy else 0)
"""
    r = _python(code, {**os.environ, "PYTHONPATH": str(SRC)})
    assert r.returncode == 0, r.stderr[-2000:]


def test_python_dash_m_mglru() -> None:
    """`python -m mglru --help` is the `mglru` command."""
    r = subprocess.run([sys.executable, "-m", "mglru", "--help"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: mglru [OPTIONS] COMMAND")
    for command in ("presets", "lru-gen", "access-tracking-perf-test", "reproduce", "bench"):
        assert command in r.stdout


def test_packaging_metadata_is_current() -> None:
    """An SPDX license string (no setuptools deprecation), a setuptools that reads it."""
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["license"] == "GPL-2.0-only"
    req = next(r for r in meta["build-system"]["requires"] if r.startswith("setuptools"))
    assert tuple(int(x) for x in req.split(">=")[1].split(".")[:1]) >= (77,)
    assert "plot" in meta["project"]["optional-dependencies"]
    readme = (ROOT / "README.md").read_text()
    assert "pip install 'mglru[plot]'" in readme or "setup.sh plot" in readme


def test_readme_plot_command_works_after_the_readme_setup() -> None:
    """The README's --plot command is preceded by a setup that installs the plot extra."""
    readme = (ROOT / "README.md").read_text()
    at = readme.index("--plot table.png")
    assert "scripts/setup.sh plot" in readme[:at] or "'mglru[plot]'" in readme[:at]
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    assert "extras" in setup


def test_plot_without_matplotlib_fails_before_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """--plot without matplotlib: one line naming the extra, exit 2, no simulated step."""
    from click.testing import CliRunner

    from mglru.cli import cli

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = CliRunner().invoke(cli, ["reproduce", "seed-table", "--vcpus", "1", "--scale", "64",
                                 "--plot", "t.png"])
    assert r.exit_code == 2
    assert "pip install 'mglru[plot]'" in r.stderr
    assert "[ 1/" not in r.stderr and "Traceback" not in r.output


def test_help_summaries_match_the_commands() -> None:
    """`mglru --help` lists the commands from a table; it says what each command says."""
    import importlib

    from mglru.cli import SUBCOMMANDS, SUMMARIES

    assert list(SUMMARIES) == list(SUBCOMMANDS)
    for name, (module, attr) in SUBCOMMANDS.items():
        command = getattr(importlib.import_module(module), attr)
        assert command.help.strip().splitlines()[0] == SUMMARIES[name]
