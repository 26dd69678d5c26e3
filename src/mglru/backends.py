"""One factory that opens a kernel by kind, for every tool: `open_kernel(spec)`.

    from mglru.backends import open_kernel
    with open_kernel("sim:v6.12") as k: ...          # a fresh simulated kernel of a preset
    with open_kernel("host") as k: ...               # the running kernel ("host:ROOT": a tree)
    with open_kernel("qemu:6.12") as k: ...          # Debian's 6.12 cloud kernel under QEMU

Kinds (`KERNEL_SPEC_HELP`):

- `sim`, `sim:PRESET`: `SimKernel` of a preset (default `config`, else "seed-v4");
- `host`, `host:ROOT`: `HostKernel` of the running kernel, or of a directory laid
  out like `/sys` (tests);
- `qemu:6.1`, `qemu:6.12`, `qemu:/path/to/linux-image.deb`: `QemuKernel`, a stock
  kernel booted once for the `with` block and stopped on leaving it.

Every backend reports its kind through `mglru.abi.kernel.kernel_kind`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mglru.abi.host import HostKernel
from mglru.abi.kernel import Kernel
from mglru.abi.qemu_images import NAMED_KERNELS
from mglru.presets import PRESETS

__all__ = ["KernelSpec", "UnknownKernel", "parse_kernel_spec", "open_kernel", "KERNEL_SPEC_HELP",
           "DEFAULT_SIM_PRESET"]

DEFAULT_SIM_PRESET = "seed-v4"
KERNEL_SPEC_HELP = ("sim, sim:PRESET, host, host:ROOT, "
                    + ", ".join(f"qemu:{n}" for n in NAMED_KERNELS) + ", qemu:PATH.deb")


class UnknownKernel(ValueError):
    """A kernel spec that names no backend (the message lists the valid kinds)."""


@dataclass(frozen=True)
class KernelSpec:
    """A parsed kernel spec.

    Attributes:
        kind: "sim", "host" or "qemu".
        arg: the preset, root or kernel name; "" for the kind's default.
    """

    kind: str
    arg: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind


def parse_kernel_spec(spec: str) -> KernelSpec:
    """Split and check "kind[:arg]".

    Raises:
        UnknownKernel: an unknown kind, preset or kernel name.
    """
    kind, sep, arg = spec.partition(":")
    if kind == "sim":
        if arg and arg not in PRESETS:
            raise UnknownKernel(f"unknown preset {arg!r} in {spec!r}; presets: "
                                + ", ".join(PRESETS))
        return KernelSpec("sim", arg)
    if kind == "host":
        return KernelSpec("host", arg)
    if kind == "qemu" and arg:
        if arg not in NAMED_KERNELS and not arg.endswith(".deb"):
            raise UnknownKernel(f"unknown kernel {arg!r} in {spec!r}; expected "
                                + ", ".join(NAMED_KERNELS) + " or a path to a linux-image .deb")
        return KernelSpec("qemu", arg)
    raise UnknownKernel(f"{spec!r} is not one of {KERNEL_SPEC_HELP}")


@contextmanager
def open_kernel(spec: str | KernelSpec, *, config: str | None = None, root: str | None = None,
                seed: int = 0, **options: Any) -> Iterator[Kernel]:
    """Open a kernel for a `with` block; a QEMU guest is stopped on every exit path.

    Args:
        spec: "sim[:PRESET]", "host[:ROOT]" or "qemu:NAME" (a `KernelSpec` too).
        config: the preset of a bare "sim".
        root: the root of a bare "host".
        seed: the simulated kernel's seed.
        **options: passed to `QemuKernel` (memory_mib, boot_timeout, ...).

    Raises:
        UnknownKernel: a bad spec.
        QemuError, KernelImageError: the guest could not be started.
    """
    s = parse_kernel_spec(spec) if isinstance(spec, str) else spec
    if s.kind == "sim":
        from mglru.kernel import SimKernel

        yield SimKernel(config=s.arg or config or DEFAULT_SIM_PRESET, seed=seed)
    elif s.kind == "host":
        yield HostKernel(s.arg or root or "/")
    else:
        from mglru.abi.qemu import QemuKernel

        with QemuKernel(s.arg, **options) as k:
            yield k
