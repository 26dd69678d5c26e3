"""QemuKernel on Debian's 6.12 cloud kernel: the Kernel protocol, workloads, life cycle."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from conftest import qemu_children, require_kernel

from mglru.abi.qemu import QemuError, QemuKernel
from mglru.abi.qemu_images import KernelImage
from mglru.cli import cli
from mglru.tools.lru_gen import parse_lru_gen, read_caps

pytestmark = pytest.mark.qemu


def test_reads_the_real_lru_gen(guest612):
    """lru_gen parses; the root memcg has 4 generations; caps are 6.12's 0x0007."""
    stats = parse_lru_gen(guest612.read("/sys/kernel/debug/lru_gen"))
    root = stats.find("/")
    assert len(root.node(0).gens) == 4
    assert read_caps(guest612) == 0x0007
    assert guest612.uname_release().startswith("6.12.")


def test_errno_preserved(guest612):
    """EINVAL for a future seq, ENOENT for a missing file, EEXIST for a second mkdir."""
    with pytest.raises(OSError) as e:
        guest612.write("/sys/kernel/debug/lru_gen", "+ 1 0 999 1 1\n")
    assert e.value.errno == errno.EINVAL and e.value.filename == "/sys/kernel/debug/lru_gen"
    with pytest.raises(OSError) as e:
        guest612.read("/sys/kernel/nope")
    assert e.value.errno == errno.ENOENT
    guest612.mkdir("/sys/fs/cgroup/t1")
    with pytest.raises(OSError) as e:
        guest612.mkdir("/sys/fs/cgroup/t1")
    assert e.value.errno == errno.EEXIST
    guest612.rmdir("/sys/fs/cgroup/t1")
    assert not guest612.exists("/sys/fs/cgroup/t1")
    assert guest612.exists("/sys/kernel/mm/lru_gen/enabled")


def test_pread_pwrite(guest612):
    """pread(2) at an offset returns the file's bytes from there; pwrite counts bytes."""
    whole = guest612.read("/proc/sys/kernel/osrelease").encode()
    assert guest612.pread("/proc/sys/kernel/osrelease", 4, 2) == whole[2:6]
    assert guest612.pwrite("/sys/kernel/mm/lru_gen/min_ttl_ms", b"0\n", 0) == 2


def test_task_pages_are_charged_to_its_memcg(guest612):
    """A task writes 8 MiB in /t2: lru_gen lists about 2048 anon pages for /t2."""
    guest612.mkdir("/sys/fs/cgroup/t2")
    p = guest612.spawn("/t2")
    addr = p.mmap(8 << 20)
    p.access(addr, 8 << 20, write=True)
    m = parse_lru_gen(guest612.read("/sys/kernel/debug/lru_gen")).find("/t2")
    anon = sum(g.nr_anon for g in m.node(0).gens)
    assert 2048 - 64 <= anon <= 2048 + 64
    with pytest.raises(OSError) as e:
        p.access(4096, 4096)  # never mapped: the task catches SIGSEGV and reports EFAULT
    assert e.value.errno == errno.EFAULT
    p.access(addr, 4096)  # and is still there
    guest612.exit_task(p)
    guest612.rmdir("/sys/fs/cgroup/t2")
    with pytest.raises(OSError) as e:
        guest612.spawn("/missing")
    assert e.value.errno == errno.ENOENT


def test_cli_show_on_qemu():
    """`mglru lru-gen show --kernel qemu:6.12` prints the real lru_gen file; no QEMU stays."""
    require_kernel("6.12")
    before = qemu_children()
    r = CliRunner().invoke(cli, ["lru-gen", "show", "--kernel", "qemu:6.12"])
    assert r.exit_code == 0, r.output
    assert r.stdout.startswith("memcg     1 /\n node     0\n")
    assert qemu_children() == before


def test_guest_that_does_not_boot(tmp_path):
    """A kernel image QEMU cannot load: QemuError in one line, no QEMU left."""
    require_kernel("6.12")
    before = qemu_children()
    (tmp_path / "vmlinuz").write_bytes(b"not a kernel")
    k = QemuKernel("6.12", boot_timeout=30)
    image = KernelImage("broken", tmp_path, "0", "0")
    import mglru.abi.qemu as qemu_mod

    real = qemu_mod.kernel_image
    qemu_mod.kernel_image = lambda name: image
    try:
        with pytest.raises(QemuError) as e:
            k.boot()
    finally:
        qemu_mod.kernel_image = real
    assert "\n" not in str(e.value) and "broken" not in str(e.value)
    assert "6.12" in str(e.value)
    assert not k.running and qemu_children() == before


def test_boot_timeout_stops_qemu():
    """A boot that takes longer than boot_timeout fails and leaves no QEMU."""
    require_kernel("6.12")
    before = qemu_children()
    with pytest.raises(QemuError, match="did not boot within 1 s"):
        QemuKernel("6.12", boot_timeout=1).boot()
    assert qemu_children() == before


def test_ctrl_c_stops_qemu(tmp_path):
    """SIGINT to a Python process holding a guest: it exits and QEMU is gone."""
    require_kernel("6.12")
    code = ("import time\nfrom mglru.backends import open_kernel\n"
            "with open_kernel('qemu:6.12') as k:\n    print('up', flush=True)\n"
            "    time.sleep(120)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, env=env)
    try:
        assert child.stdout.readline() == b"up\n"
        qemus = qemu_children(child.pid)
        assert len(qemus) == 1
        child.send_signal(signal.SIGINT)
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{qemus[0]}") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not os.path.exists(f"/proc/{qemus[0]}")
    finally:
        child.kill()


def test_thp_region_is_pmd_aligned(guest612):
    """mmap(thp=True) starts on a 2 MiB boundary, and writing it faults in huge pages."""
    guest612.mkdir("/sys/fs/cgroup/t3")
    p = guest612.spawn("/t3")
    addr = p.mmap(4 << 20, thp=True)
    assert addr % (2 << 20) == 0
    p.access(addr, 4 << 20, write=True)
    stat = dict(line.split() for line in
                guest612.read("/sys/fs/cgroup/t3/memory.stat").splitlines())
    assert int(stat["anon_thp"]) == 4 << 20
    guest612.exit_task(p)
    guest612.rmdir("/sys/fs/cgroup/t3")


def test_files_shmem_and_a_kvm_guest(guest612):
    """A disk file read by a task is page cache (file column); a MAP_SHARED anonymous region
    is shmem (anon column); /dev/kvm is there (the KVM guest itself runs in the kvm_guest
    scenario, whose failures under TCG are retried on a new guest)."""
    guest612.mkdir("/sys/fs/cgroup/t4")
    p = guest612.spawn("/t4")
    guest612.create_file("/mnt/t4-f", 4 << 20)
    assert p.read_file("/mnt/t4-f", 0, 4 << 20) == 4 << 20
    addr = p.mmap(4 << 20, shared=True)
    p.access(addr, 4 << 20, write=True)
    node = parse_lru_gen(guest612.read("/sys/kernel/debug/lru_gen")).find("/t4").node(0)
    assert 1024 - 64 <= sum(g.nr_file for g in node.gens) <= 1024 + 64
    stat = dict(line.split() for line in
                guest612.read("/sys/fs/cgroup/t4/memory.stat").splitlines())
    assert int(stat["shmem"]) == 4 << 20
    assert guest612.exists("/dev/kvm")
    guest612.exit_task(p)
    guest612.remove_file("/mnt/t4-f")
    assert not guest612.exists("/mnt/t4-f")
    guest612.rmdir("/sys/fs/cgroup/t4")
