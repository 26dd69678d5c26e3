"""Kernel images and the initramfs for the QEMU backend: fetched once, cached, pinned.

    image = kernel_image("6.12")          # downloads on first use, then offline
    image.vmlinuz                         # ~/.cache/mglru/kernels/6.12/vmlinuz
    image.version                         # "6.12.118-1~deb12u1"
    initrd = build_initramfs(image)       # our init + static agent + busybox-static

Named kernels are Debian's cloud kernels (`CONFIG_LRU_GEN=y`, debugfs, memcg):
`apt-get download` fetches the package of the metapackage's current dependency;
the kernel and the few modules the guest needs (`GUEST_MODULES`, with their
dependencies) are kept, the rest of the package is dropped. `pinned.json` in
each kernel's directory records the package name, version and sha256 of the
.deb it came from; later runs use the cache and never touch apt. A path to a
`linux-image-*.deb` works the same way, cached by the file's sha256.

The cache lives in `$XDG_CACHE_HOME/mglru/kernels` (default `~/.cache/mglru/kernels`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mglru.abi.kernel import BackendError

__all__ = ["NAMED_KERNELS", "KernelImage", "KernelImageError", "cache_dir", "kernel_image",
           "cached_kernel", "build_initramfs", "write_cpio"]

#: name -> the Debian metapackage that tracks the cloud kernel of that series
NAMED_KERNELS = {
    "6.1": "linux-image-cloud-amd64",
    "6.12": "linux-image-6.12-cloud-amd64",
}

_GUEST_DIR = Path(__file__).with_name("qemu_guest")
#: modules the guest loads when the kernel has them as modules (built-in ones are absent):
#: the virtio-serial channel of the agent, the RAM disks (swap, and the ext2 file system of
#: file pages), KVM for AMD SVM, which QEMU's TCG emulates (`vm_touch` runs a KVM guest),
#: and null_blk, a memory-backed disk that is neither synchronous nor rotational (swap
#: through the swap cache, as on an SSD)
GUEST_MODULES = ("virtio_pci", "virtio_console", "brd", "kvm_amd", "null_blk")
#: version of the cache layout; an older cached kernel is unpacked again
_LAYOUT = 4
_BUSYBOX = "/bin/busybox"


class KernelImageError(BackendError):
    """A kernel could not be fetched, unpacked or prepared (the message says what to do)."""


@dataclass(frozen=True)
class KernelImage:
    """A cached kernel: where its files are and which package it came from.

    Attributes:
        name: "6.1", "6.12", or the .deb's file name.
        directory: the cache directory of this kernel.
        version: the Debian package version (e.g. "6.12.118-1~deb12u1").
        release: the kernel release (`uname -r`).
    """

    name: str
    directory: Path
    version: str
    release: str

    @property
    def vmlinuz(self) -> Path:
        """The kernel image QEMU boots."""
        return self.directory / "vmlinuz"

    @property
    def modules(self) -> list[Path]:
        """The guest's modules (uncompressed), in load order: dependencies first."""
        order = self.directory / "modules.load"
        if not order.is_file():
            return []
        return [self.directory / "modules" / n for n in order.read_text().split()]


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/mglru/kernels`, or `~/.cache/mglru/kernels`."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mglru" / "kernels"


def _load_pin(directory: Path, name: str) -> KernelImage | None:
    try:
        pin = json.loads((directory / "pinned.json").read_text())
    except (OSError, ValueError):
        return None
    if pin.get("layout") != _LAYOUT or not (directory / "vmlinuz").is_file():
        return None
    return KernelImage(name, directory, pin["version"], pin["release"])


def cached_kernel(name: str) -> KernelImage | None:
    """The cached image of a named kernel, or None (never downloads)."""
    return _load_pin(cache_dir() / name, name)


def kernel_image(spec: str) -> KernelImage:
    """The image of a named kernel ("6.1", "6.12") or a .deb path; fetched on first use.

    Raises:
        KernelImageError: unknown name, apt or dpkg-deb failed, no kernel in the package.
    """
    if spec in NAMED_KERNELS:
        image = cached_kernel(spec)
        if image is not None:
            return image
        return _fetch_named(spec)
    path = Path(spec).expanduser()
    if spec.endswith(".deb") or path.exists():
        if not path.is_file():
            raise KernelImageError(f"no such kernel package: {spec}")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        directory = cache_dir() / f"deb-{digest[:16]}"
        image = _load_pin(directory, path.name)
        if image is not None:
            return image
        return _unpack(path, directory, path.name, {"package": path.name, "sha256": digest,
                                                     "source": str(path.resolve())})
    raise KernelImageError(f"unknown kernel {spec!r}: expected one of "
                           f"{', '.join(NAMED_KERNELS)} or a path to a linux-image .deb")


def _run(cmd: list[str], cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError:
        raise KernelImageError(f"{cmd[0]} not found: fetching kernels needs Debian's apt "
                               "tools (or pass a path to a linux-image .deb)") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise KernelImageError(f"{' '.join(cmd[:3])}: {last}")
    return done.stdout


def _fetch_named(name: str) -> KernelImage:
    """apt-get download the package the metapackage depends on; unpack into the cache."""
    meta = NAMED_KERNELS[name]
    package = None
    for line in _run(["apt-cache", "depends", meta]).splitlines():
        line = line.strip()
        if line.startswith("Depends:") and "linux-image-" in line:
            package = line.split(":", 1)[1].strip()
            break
    if package is None:
        raise KernelImageError(f"apt-cache does not know {meta}; run apt-get update (see "
                               "docs/real-kernels.md)")
    directory = cache_dir() / name
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        _run(["apt-get", "download", package], cwd=Path(tmp))
        debs = list(Path(tmp).glob("*.deb"))
        if not debs:
            raise KernelImageError(f"apt-get download {package} left no .deb")
        deb = debs[0]
        digest = hashlib.sha256(deb.read_bytes()).hexdigest()
        return _unpack(deb, directory, name, {"package": package, "metapackage": meta,
                                               "sha256": digest})


def _unpack(deb: Path, directory: Path, name: str, pin: dict[str, str]) -> KernelImage:
    """dpkg-deb -x the package; keep vmlinuz, config and the modules; write pinned.json."""
    directory.mkdir(parents=True, exist_ok=True)
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        _run(["dpkg-deb", "-x", str(deb), tmp])
        kernels = sorted(Path(tmp, "boot").glob("vmlinuz-*"))
        if not kernels:
            raise KernelImageError(f"{deb.name}: no boot/vmlinuz-* in the package")
        release = kernels[0].name[len("vmlinuz-"):]
        shutil.copyfile(kernels[0], directory / "vmlinuz")
        config = Path(tmp, "boot", f"config-{release}")
        if config.is_file():
            shutil.copyfile(config, directory / "config")
        modules = _copy_modules(Path(tmp, "lib", "modules", release), directory)
    pin.update(version=version, release=release, modules=modules, layout=_LAYOUT)
    (directory / "pinned.json").write_text(json.dumps(pin, indent=2, sort_keys=True) + "\n")
    return KernelImage(name, directory, version, release)


def _modinfo_depends(data: bytes) -> list[str]:
    """The `depends=` field of a module's .modinfo section."""
    at = data.find(b"\0depends=")
    if at < 0:
        return []
    end = data.index(b"\0", at + 1)
    return [d for d in data[at + len(b"\0depends="):end].decode().split(",") if d]


def _copy_modules(moddir: Path, directory: Path) -> list[str]:
    """Copy GUEST_MODULES and their dependencies, uncompressed; write modules.load."""
    found = {}
    for ko in moddir.glob("kernel/**/*.ko*"):
        found[ko.name.split(".ko")[0].replace("-", "_")] = ko
    out = directory / "modules"
    out.mkdir(exist_ok=True)
    order: list[str] = []

    def add(name: str) -> None:
        name = name.replace("-", "_")
        if name in order or name not in found:
            return  # loaded already, or built in
        ko = found[name]
        data = ko.read_bytes()
        if ko.name.endswith(".xz"):
            data = lzma.decompress(data)
        elif not ko.name.endswith(".ko"):
            return  # zstd: not in the standard library; the guest goes without
        for dep in _modinfo_depends(data):
            add(dep)
        (out / f"{name}.ko").write_bytes(data)
        order.append(name)

    for name in GUEST_MODULES:
        add(name)
    (directory / "modules.load").write_text("".join(f"{n}.ko\n" for n in order))
    return order


# -- the initramfs ----------------------------------------------------------------------------
def write_cpio(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive of (path, mode, data) entries, as the kernel unpacks initramfs."""
    out = io.BytesIO()

    def member(name: str, mode: int, data: bytes, ino: int) -> None:
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0]
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.write(name.encode() + b"\0")
        out.write(b"\0" * (-out.tell() % 4))
        out.write(data)
        out.write(b"\0" * (-out.tell() % 4))

    for ino, (path, mode, data) in enumerate(entries, start=1):
        member(path, mode, data, ino)
    member("TRAILER!!!", 0, b"", 0)
    return out.getvalue()


def _compile_agent(directory: Path) -> bytes:
    """gcc -static the agent (cached by source hash)."""
    source = (_GUEST_DIR / "agent.c").read_bytes()
    binary = directory / f"agent-{hashlib.sha256(source).hexdigest()[:12]}"
    if not binary.is_file():
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            out = Path(tmp, "agent")
            try:
                done = subprocess.run(["gcc", "-static", "-O2", "-o", str(out),
                                       str(_GUEST_DIR / "agent.c")],
                                      capture_output=True, text=True, timeout=300)
            except FileNotFoundError:
                raise KernelImageError("gcc not found: the guest agent is compiled statically "
                                       "(apt-get install gcc libc6-dev)") from None
            if done.returncode != 0:
                raise KernelImageError("compiling the guest agent failed: "
                                       + (done.stderr.strip().splitlines() or ["?"])[-1])
            os.replace(out, binary)
    return binary.read_bytes()


def build_initramfs(image: KernelImage) -> Path:
    """Our initramfs for `image`: /init, the static agent, busybox-static, the modules.

    Cached next to the kernel, keyed by the inputs' hashes.

    Raises:
        KernelImageError: busybox-static or gcc missing.
    """
    if not os.path.isfile(_BUSYBOX):
        raise KernelImageError("busybox not found at /bin/busybox: apt-get install "
                               "busybox-static")
    busybox = Path(_BUSYBOX).read_bytes()
    if _is_dynamic(busybox):
        raise KernelImageError("/bin/busybox is dynamically linked: apt-get install "
                               "busybox-static")
    agent = _compile_agent(cache_dir() / "agent")
    init = (_GUEST_DIR / "init").read_bytes()
    modules = [(m.name, m.read_bytes()) for m in image.modules]
    load = "".join(f"{name}\n" for name, _ in modules).encode()
    key = hashlib.sha256(b"".join(hashlib.sha256(x).digest() for x in
                                  (agent, init, busybox, load, *(d for _, d in modules)))
                         ).hexdigest()[:16]
    path = image.directory / f"initramfs-{key}.cpio.gz"
    if path.is_file():
        return path
    d, x, f = stat.S_IFDIR | 0o755, stat.S_IFREG | 0o755, stat.S_IFREG | 0o644
    entries = [(name, d, b"") for name in ("bin", "dev", "proc", "sys", "tmp", "lib", "mnt")]
    entries += [("init", x, init), ("agent", x, agent), ("bin/busybox", x, busybox)]
    entries.append(("lib/modules.load", f, load))
    entries += [(f"lib/{name}", f, data) for name, data in modules]
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(write_cpio(entries), compresslevel=6))
    os.replace(tmp, path)
    return path


def _is_dynamic(elf: bytes) -> bool:
    """Whether an ELF file names a program interpreter (PT_INTERP), i.e. is not static."""
    return b"/lib64/ld-linux" in elf[:65536] or b"/lib/ld-linux" in elf[:65536]
