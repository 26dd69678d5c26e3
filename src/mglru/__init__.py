"""mglru: an executable model of Linux's multi-gen LRU with secondary-MMU aging.

The embedded simulated kernel is `SimKernel`; presets name kernel versions and
the seed's variants (`PRESETS`). See docs/guide.md and docs/architecture.md.

`SimKernel` is imported on first use, so the host-side tools (`mglru.abi`,
`mglru.tools.lru_gen`) load neither numpy nor numba.
"""

from typing import TYPE_CHECKING, Any

from mglru.presets import PRESETS, KernelConfig, resolve_config

if TYPE_CHECKING:
    from mglru.kernel import SimKernel

__all__ = ["SimKernel", "KernelConfig", "PRESETS", "resolve_config"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "SimKernel":
        from mglru.kernel import SimKernel

        return SimKernel
    raise AttributeError(f"module 'mglru' has no attribute {name!r}")
