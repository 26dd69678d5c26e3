"""Where numba keeps the compiled kernels, and keeping that cache honest.

numba looks for a cache directory at decoration time (`@njit(cache=True)`):
`$NUMBA_CACHE_DIR`, then the package's `__pycache__`, then the user's cache
directory (`$XDG_CACHE_HOME/numba`, else `~/.cache/numba`); with none of them
writable (a read-only install run by a user without a home) it raises "no
locator available" and the import fails. `configure_cache` runs before any
kernel module is imported (`mglru.lru_gen.__init__`) and, in that last case,
points numba at a private directory removed at exit: no cache across runs,
and a notice instead of a crash.

numba also keys a cached function on its own source file only, so editing a
compiled helper it calls from another module (here `_walk_secondary.py`,
called by `_walk_kernel.walk_rows`) would reuse stale machine code.
`invalidate_stale` stamps the dependencies' contents next to the cache and
drops the dependent module's cache files when they change.
"""

from __future__ import annotations

import atexit
import hashlib
import logging
import os
import shutil
import sys
import tempfile
from pathlib import Path

__all__ = ["configure_cache", "cache_dir", "install_compile_notice", "invalidate_stale",
           "PERSISTENT"]

log = logging.getLogger("mglru")

_HERE = Path(__file__).resolve().parent
#: False when compiled kernels last one process only (no writable cache directory)
PERSISTENT = True
#: the directories tried, when none was writable (told with the compile notice)
_NO_CACHE_REASON = ""
_notice_installed = False


def _writable(path: Path) -> bool:
    """numba's own test (`_CacheLocator.ensure_cache_path`): create it, write a file in it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def _user_cache_dir() -> Path:
    """numba's user-wide cache directory on Linux (appdirs' user_cache_dir("numba"))."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(base) / "numba"


def cache_dir() -> Path:
    """The directory numba caches this package's kernels in (after `configure_cache`)."""
    if os.environ.get("NUMBA_CACHE_DIR"):
        return Path(os.environ["NUMBA_CACHE_DIR"]) / _subpath()
    if _writable(_HERE / "__pycache__"):
        return _HERE / "__pycache__"
    return _user_cache_dir() / _subpath()


def _subpath() -> str:
    # numba's _CacheLocator.get_suitable_cache_subpath: parent dir name + sha1 of the dir
    return f"{_HERE.name}_{hashlib.sha1(str(_HERE).encode()).hexdigest()}"


def configure_cache() -> None:
    """Fall back to a per-process cache when numba would find no writable directory.

    Order: `$NUMBA_CACHE_DIR` (if writable), the package's `__pycache__`, the
    user's cache directory — numba's own order — then a temporary directory
    removed at exit; the compile notice then says so (a warning on the `mglru` logger).
    """
    global PERSISTENT, _NO_CACHE_REASON
    user_dir = os.environ.get("NUMBA_CACHE_DIR")
    candidates = ([Path(user_dir)] if user_dir else []) + [_HERE / "__pycache__",
                                                          _user_cache_dir()]
    if any(_writable(p) for p in candidates):
        return
    try:
        private = tempfile.mkdtemp(prefix="mglru-numba-")
    except OSError:
        private = None
    PERSISTENT = False
    _NO_CACHE_REASON = ", ".join(str(p) for p in candidates)
    if private is None:
        return  # numba will report the missing locator itself
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    os.environ["NUMBA_CACHE_DIR"] = private
    config = sys.modules.get("numba.core.config")
    if config is not None:  # numba imported before us: its config read the environment already
        config.CACHE_DIR = private


def install_compile_notice() -> None:
    """Log "compiling kernels" once, when numba first compiles (not when it loads the cache)."""
    global _notice_installed
    if _notice_installed:
        return
    _notice_installed = True
    try:
        from numba.core import event
    except ImportError:  # an older numba without the event API: no notice
        return

    class _Notice(event.Listener):
        done = False

        def on_start(self, ev: event.Event) -> None:
            if self.done:
                return
            self.done = True
            if PERSISTENT:
                log.info("compiling kernels (first run only)...")
            else:  # told when it costs time, after the CLI has set up -v/-q
                log.warning("compiling kernels on every run: no writable cache directory (%s); "
                            "set NUMBA_CACHE_DIR to a writable directory to keep them",
                            _NO_CACHE_REASON)

        def on_end(self, ev: event.Event) -> None:
            pass

    event.register("numba:compile", _Notice())


def invalidate_stale(module_file: str, *dependencies: str) -> None:
    """Drop `module_file`'s numba cache if any dependency's source changed."""
    here = Path(module_file)
    cache = cache_dir() if here.resolve().parent == _HERE else here.parent / "__pycache__"
    digest = hashlib.sha256()
    for dep in dependencies:
        digest.update((here.parent / dep).read_bytes())
    stamp = cache / f"{here.stem}.deps"
    try:
        if stamp.read_text() == digest.hexdigest():
            return
    except OSError:
        pass
    try:
        cache.mkdir(parents=True, exist_ok=True)
        for f in cache.glob(f"{here.stem}.*.nb[ic]"):
            f.unlink()
        stamp.write_text(digest.hexdigest())
    except OSError:
        return  # nowhere to write: numba then has no persistent cache either


configure_cache()
install_compile_notice()
