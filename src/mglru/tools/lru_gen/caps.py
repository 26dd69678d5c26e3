"""`lru_gen_usable`: the caps the selftest needs, under v4 or upstream rules.

Upstream: tools/testing/selftests/cgroup/lib/lru_gen_util.c (v6.16); v4 7/7.

`/sys/kernel/mm/lru_gen/enabled` reads `0x%04x\\n` of the caps that are on and
supported. The selftest reads 7 bytes, parses them with `strtol(.., 16)` and
requires:

- v4 (patch 7/7): 0x1 (core), 0x2 (MM_WALK) and 0x8 (SECONDARY_MMU_WALK), each
  missing bit a skip with its own message ("lru_gen does not support
  SECONDARY_MMU_WALK"); then `lru_gen` must open read-write.
- upstream (v6.16+): 0x1|0x2 ("lru_gen: missing features, got: 0x.., expected:
  0x3"); a short read is "not usable"; then `lru_gen` must open read-write.

`check_lru_gen_usable` raises `FeatureUnavailable` whose `reason` is the C
test's message and whose `hint` says how to get the feature; the port prints
the reason, the CLI prints both.
"""

from __future__ import annotations

import errno

from mglru.abi.features import explain_os_error
from mglru.abi.kernel import LRU_GEN, LRU_GEN_ENABLED, FeatureUnavailable, Kernel
from mglru.tools.lru_gen.generation import RULES

__all__ = ["CAP_CORE", "CAP_MM_WALK", "CAP_NONLEAF_YOUNG", "CAP_SECONDARY_MMU_WALK",
           "CAP_NAMES", "REQUIRED_CAPS", "strtol16", "read_caps", "check_lru_gen_usable",
           "lru_gen_usable"]

CAP_CORE = 0x1  # the selftest's LRU_GEN_ENABLED
CAP_MM_WALK = 0x2
CAP_NONLEAF_YOUNG = 0x4
CAP_SECONDARY_MMU_WALK = 0x8  # v4 only, never merged

#: cap bit -> name, as the selftests and Documentation/admin-guide/mm/multigen_lru.rst name them
CAP_NAMES = {CAP_CORE: "ENABLED", CAP_MM_WALK: "MM_WALK", CAP_NONLEAF_YOUNG: "NONLEAF_YOUNG",
             CAP_SECONDARY_MMU_WALK: "SECONDARY_MMU_WALK"}

#: rules -> the caps the selftest requires (checklist item 40)
REQUIRED_CAPS = {"v4": CAP_CORE | CAP_MM_WALK | CAP_SECONDARY_MMU_WALK,
                 "upstream": CAP_CORE | CAP_MM_WALK}

_ENABLE_HINT = f"enable it with: echo y > {LRU_GEN_ENABLED}"
_CAP_HINTS = {
    CAP_CORE: _ENABLE_HINT,
    CAP_MM_WALK: ("needs a CPU that sets accessed bits in page tables (x86, arm64 with "
                  f"HAFDBS) and the cap on: echo y > {LRU_GEN_ENABLED}"),
    CAP_SECONDARY_MMU_WALK: ("needs a kernel with the v4 series and "
                             "CONFIG_LRU_GEN_WALKS_SECONDARY_MMU=y, which was never merged; "
                             "v6.12+ walks secondary MMUs always, so use the upstream rules"),
}
_HEX = "0123456789abcdefABCDEF"


def strtol16(text: str) -> int:
    """C's `strtol(text, NULL, 16)`: whitespace, sign, optional 0x, hex digits; 0 if none."""
    s = text.lstrip(" \t\n\v\f\r")
    sign = -1 if s[:1] == "-" else 1
    if s[:1] in "+-":
        s = s[1:]
    if s[:2].lower() == "0x" and s[2:3] and s[2] in _HEX:
        s = s[2:]
    end = 0
    while end < len(s) and s[end] in _HEX:
        end += 1
    return sign * int(s[:end], 16) if end else 0


def read_caps(kernel: Kernel) -> int:
    """The caps mask read from `enabled` (first 7 bytes, `strtol` base 16).

    Raises:
        FeatureUnavailable: the kernel has no lru_gen (or it is unreadable).
    """
    return strtol16(_read_enabled(kernel)[:7])


def _read_enabled(kernel: Kernel) -> str:
    try:
        return kernel.read(LRU_GEN_ENABLED)
    except OSError as e:
        raise explain_os_error(kernel, LRU_GEN_ENABLED, e) or FeatureUnavailable(
            "lru_gen", f"cannot read {LRU_GEN_ENABLED}: {e.strerror}") from None


def _no_lru_gen_hint(kernel: Kernel) -> str:
    found = explain_os_error(kernel, LRU_GEN_ENABLED, OSError(errno.ENOENT, "", LRU_GEN_ENABLED))
    return found.hint if found is not None else ""


def _can_open_rw(kernel: Kernel, path: str) -> bool:
    access = getattr(kernel, "access", None)
    return access(path, write=True) if callable(access) else kernel.exists(path)


def _debugfs_hint(kernel: Kernel) -> str:
    # the read's own errno tells "missing" from "not root" (debugfs is 0700, so
    # a non-root stat() fails too); readable but not writable counts as EACCES
    try:
        kernel.read(LRU_GEN)
        code = errno.EACCES
    except OSError as e:
        code = e.errno or errno.ENOENT
    found = explain_os_error(kernel, LRU_GEN, OSError(code, "", LRU_GEN))
    if found is None:
        return ""
    return f"{found.reason}; {found.hint}" if found.hint else found.reason


def _missing(feature_bits: int) -> str:
    return "|".join(CAP_NAMES[b] for b in sorted(CAP_NAMES) if feature_bits & b)


def check_lru_gen_usable(kernel: Kernel, rules: str = "v4") -> int:
    """Check what the selftest checks before using MGLRU; returns the caps mask.

    Args:
        kernel: any backend.
        rules: "v4" or "upstream" (see the module docstring).

    Raises:
        FeatureUnavailable: with the C test's message as `reason`.
        ValueError: unknown rules.
    """
    if rules not in RULES:
        raise ValueError(f"rules must be one of {', '.join(RULES)}; got {rules!r}")
    v4 = rules == "v4"
    if not kernel.exists(LRU_GEN_ENABLED):
        reason = ("CONFIG_LRU_GEN is not enabled" if v4
                  else f"lru_gen: Could not open {LRU_GEN_ENABLED}")
        raise FeatureUnavailable("lru_gen", reason, _no_lru_gen_hint(kernel))
    text = _read_enabled(kernel)
    if (not text) if v4 else len(text.encode()) < 7:
        reason = ("couldn't read lru_gen features" if v4
                  else f"lru_gen: Could not read from {LRU_GEN_ENABLED}")
        raise FeatureUnavailable("lru_gen", f"{reason} (read {text!r})")
    caps = strtol16(text[:7])
    required = REQUIRED_CAPS[rules]
    if v4:
        for bit, what in ((CAP_CORE, "lru_gen is not enabled"),
                          (CAP_MM_WALK, "lru_gen does not support MM_WALK"),
                          (CAP_SECONDARY_MMU_WALK, "lru_gen does not support SECONDARY_MMU_WALK")):
            if not caps & bit:
                raise FeatureUnavailable(CAP_NAMES[bit], what,
                                         f"enabled reads 0x{caps:04x}; {_CAP_HINTS[bit]}")
    elif caps & required != required:
        missing = required & ~caps
        raise FeatureUnavailable(
            _missing(missing),
            f"lru_gen: missing features, got: 0x{caps:x}, expected: 0x{required:x}",
            f"lru_gen: Try 'echo 0x{required:x} > {LRU_GEN_ENABLED}'; "
            f"{_CAP_HINTS[missing & -missing]}")
    if not _can_open_rw(kernel, LRU_GEN):
        reason = (f"Cannot access {LRU_GEN}" if v4 else
                  f"lru_gen: Could not open {LRU_GEN}, but lru_gen is enabled, so cannot use "
                  "page_idle.")
        raise FeatureUnavailable("debugfs", reason, _debugfs_hint(kernel))
    return caps


def lru_gen_usable(kernel: Kernel, rules: str = "v4") -> bool:
    """Whether the selftest would use MGLRU on this kernel (see `check_lru_gen_usable`)."""
    try:
        check_lru_gen_usable(kernel, rules)
    except FeatureUnavailable:
        return False
    return True
