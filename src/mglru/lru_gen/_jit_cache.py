"""Keep numba's on-disk cache honest across modules.

numba keys a cached function on its own source file only, so editing a compiled
helper it calls from another module (here `_walk_secondary.py`, called by
`_walk_kernel.walk_rows`) would reuse stale machine code. `invalidate_stale`
stamps the dependencies' contents next to the cache and drops the dependent
module's cache files when they change, before numba looks at them.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["invalidate_stale"]


def invalidate_stale(module_file: str, *dependencies: str) -> None:
    """Drop `module_file`'s numba cache if any dependency's source changed."""
    here = Path(module_file)
    cache = here.parent / "__pycache__"
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
        cache.mkdir(exist_ok=True)
        for f in cache.glob(f"{here.stem}.*.nb[ic]"):
            f.unlink()
        stamp.write_text(digest.hexdigest())
    except OSError:
        return  # a read-only install: numba then cannot cache here either
