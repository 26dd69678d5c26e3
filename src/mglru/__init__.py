"""mglru: an executable model of Linux's multi-gen LRU with secondary-MMU aging.

The embedded simulated kernel is `SimKernel`; presets name kernel versions and
the seed's variants (`PRESETS`). See docs/architecture.md.
"""

from mglru.kernel import SimKernel
from mglru.presets import PRESETS, KernelConfig, resolve_config

__all__ = ["SimKernel", "KernelConfig", "PRESETS", "resolve_config"]
__version__ = "0.1.0"
