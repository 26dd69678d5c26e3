"""MGLRU proper: generations, aging, eviction and the kernel's lru_gen files.

Importing the package first settles where numba caches the compiled kernels
(`_jit_cache`), before any `@njit(cache=True)` module below it is imported.
"""

from mglru.lru_gen import _jit_cache as _jit_cache  # noqa: F401  (side effect: cache location)
