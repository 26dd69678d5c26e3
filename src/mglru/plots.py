"""matplotlib for the commands that draw: the Agg backend, a config dir that always works.

matplotlib is an optional extra; `pyplot(extra)` imports it on first use, so
commands that do not draw never pay for it, and names the extra to install
when it is missing.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from types import ModuleType

__all__ = ["pyplot", "matplotlib_config_dir"]


def matplotlib_config_dir() -> None:
    """Give matplotlib a private config dir when the user has no writable one (no home).

    Otherwise its import warns in two long lines that it made one itself.
    """
    if os.environ.get("MPLCONFIGDIR"):
        return
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    target = os.path.join(base, "matplotlib")
    try:
        os.makedirs(target, exist_ok=True)
        if os.access(target, os.W_OK):
            return
    except OSError:
        pass
    private = tempfile.mkdtemp(prefix="mglru-mpl-")
    atexit.register(shutil.rmtree, private, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = private


def pyplot(extra: str = "plot") -> ModuleType:
    """matplotlib.pyplot on the Agg backend.

    Raises:
        ImportError: matplotlib is not installed (the message names `mglru[extra]`).
    """
    matplotlib_config_dir()
    try:
        import matplotlib
    except ModuleNotFoundError:
        raise ImportError(f"matplotlib is needed: pip install 'mglru[{extra}]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
