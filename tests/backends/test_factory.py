"""The kernel factory: specs, kinds, the CLI's --kernel, and bad inputs (no QEMU needed)."""

from __future__ import annotations

import gzip

import pytest
from click.testing import CliRunner

from mglru.abi import HostKernel
from mglru.abi.kernel import BackendError, kernel_kind
from mglru.abi.qemu import QemuError, QemuKernel
from mglru.abi.qemu_images import (
    NAMED_KERNELS,
    KernelImageError,
    cache_dir,
    kernel_image,
    write_cpio,
)
from mglru.backends import KernelSpec, UnknownKernel, open_kernel, parse_kernel_spec
from mglru.cli import cli


@pytest.mark.parametrize("spec, kind, arg", [
    ("sim", "sim", ""), ("sim:v6.12", "sim", "v6.12"), ("host", "host", ""),
    ("host:/tmp/x", "host", "/tmp/x"), ("qemu:6.1", "qemu", "6.1"), ("qemu:6.12", "qemu", "6.12"),
    ("qemu:/k/linux-image-6.6.deb", "qemu", "/k/linux-image-6.6.deb"),
])
def test_parse_kernel_spec(spec, kind, arg):
    """Each kind parses into its kind and argument, and prints back as given."""
    s = parse_kernel_spec(spec)
    assert (s.kind, s.arg) == (kind, arg)
    assert str(s) == spec


@pytest.mark.parametrize("spec, words", [
    ("qemu", "is not one of"), ("qemu:5.10", "unknown kernel '5.10'"), ("kvm", "is not one of"),
    ("sim:v9.9", "unknown preset 'v9.9'"), ("", "is not one of"),
])
def test_parse_kernel_spec_rejects(spec, words):
    """Unknown kinds, presets and kernel names are rejected with the valid choices."""
    with pytest.raises(UnknownKernel, match=words):
        parse_kernel_spec(spec)


def test_open_kernel_kinds(tmp_path):
    """sim and host open without QEMU and say what they are."""
    with open_kernel("sim:v6.12") as k:
        assert kernel_kind(k) == "sim" and k.cfg.name == "v6.12"
    with open_kernel("sim", config="v6.10") as k:
        assert k.cfg.name == "v6.10"
    with open_kernel(f"host:{tmp_path}") as k:
        assert isinstance(k, HostKernel) and kernel_kind(k) == "host" and k.root == str(tmp_path)
    with open_kernel(KernelSpec("host"), root=str(tmp_path)) as k:
        assert k.root == str(tmp_path)
    assert QemuKernel.kind == "qemu"


def test_kernel_kind_default_is_host():
    """A backend without `kind` is treated as a filesystem view, as before."""
    assert kernel_kind(object()) == "host"


def test_missing_qemu_is_one_error_line(monkeypatch):
    """No qemu-system-x86_64 on PATH: one line, exit 1, no traceback."""
    monkeypatch.setenv("PATH", "/nonexistent")
    r = CliRunner().invoke(cli, ["lru-gen", "show", "--kernel", "qemu:6.12"])
    assert r.exit_code == 1, r.output
    lines = r.stderr.splitlines()
    assert lines == ["Error: qemu-system-x86_64 not found: install QEMU (apt-get install "
                     "qemu-system-x86) to use --kernel qemu:..."]
    with pytest.raises(QemuError, match="not found"):
        QemuKernel("6.12").boot()


@pytest.mark.parametrize("args", [["lru-gen", "show", "--kernel", "qemu:2.6"],
                                  ["access-tracking-perf-test", "--kernel", "vm:1"]])
def test_unknown_kernel_is_a_usage_error(args):
    """An unknown kernel name is a usage error naming the valid ones."""
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2
    assert "Traceback" not in r.output
    assert "qemu:6.12" in r.stderr or "6.12" in r.stderr


def test_sim_preset_spec_in_access_tracking():
    """`--kernel sim:PRESET` is `--kernel sim --config PRESET`: the preset decides the rules."""
    r = CliRunner().invoke(cli, ["access-tracking-perf-test", "--kernel", "sim:v6.12",
                                 "-b", "1M", "--json", "-"])
    same = CliRunner().invoke(cli, ["access-tracking-perf-test", "--kernel", "sim", "--config",
                                    "v6.12", "-b", "1M", "--json", "-"])
    assert r.exit_code == same.exit_code != 2, r.output
    assert '"config": "v6.12"' in r.stdout and '"rules": "upstream"' in r.stdout
    assert '"kernel": "sim"' in r.stdout


def test_cache_dir_respects_xdg(monkeypatch, tmp_path):
    """Downloads go to $XDG_CACHE_HOME/mglru/kernels, else ~/.cache/mglru/kernels."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "mglru" / "kernels"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "mglru" / "kernels"


def test_kernel_image_bad_inputs(tmp_path):
    """Unknown names and missing packages are KernelImageError (a BackendError)."""
    with pytest.raises(KernelImageError, match="unknown kernel 'x'"):
        kernel_image("x")
    with pytest.raises(KernelImageError, match="no such kernel package"):
        kernel_image(str(tmp_path / "linux-image-missing.deb"))
    assert issubclass(KernelImageError, BackendError) and issubclass(QemuError, BackendError)
    assert set(NAMED_KERNELS) == {"6.1", "6.12"}


def _read_cpio(data: bytes) -> list[tuple[str, int, bytes]]:
    out, at = [], 0
    while True:
        assert data[at:at + 6] == b"070701"
        fields = [int(data[at + 6 + 8 * i: at + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_at = at + 110
        name = data[name_at:name_at + namesize - 1].decode()
        body = name_at + namesize + (-(name_at + namesize) % 4)
        if name == "TRAILER!!!":
            return out
        out.append((name, mode, data[body:body + size]))
        at = body + size + (-(body + size) % 4)


@pytest.mark.parametrize("sizes", [[0], [1], [3, 4, 5], [4096, 1023]])
def test_cpio_round_trip(sizes):
    """The newc writer's entries read back with names, modes and data, 4-byte aligned."""
    entries = [(f"d/f{i}", 0o100644 + i, bytes([i]) * n) for i, n in enumerate(sizes)]
    data = write_cpio(entries)
    assert len(data) % 4 == 0
    assert _read_cpio(data) == entries
    assert gzip.decompress(gzip.compress(data)) == data
