"""QemuKernel: a stock kernel booted in QEMU, behind the `Kernel` protocol.

    from mglru.abi.qemu import QemuKernel
    with QemuKernel("6.12") as k:               # boots once (a few seconds under TCG)
        k.read("/sys/kernel/debug/lru_gen")     # the real kernel's bytes
        k.mkdir("/sys/fs/cgroup/a")
        p = k.spawn(memcg="/a")                 # a task in the guest, charged to /a
        addr = p.mmap(64 << 20); p.access(addr, 64 << 20, write=True)
        k.exit_task(p)

The guest runs our initramfs (`qemu_images.build_initramfs`): busybox-static, an
init script that mounts proc, sysfs, debugfs and cgroup2 and swaps to a RAM
disk, then our static agent (`qemu_guest/agent.c`) as PID 1. The agent serves
one request per line on a virtio-serial port; QEMU exposes it as a Unix
socket. Errors keep the guest kernel's errno (`OSError(errno, strerror, path)`),
so tools behave as on a real host.

QEMU runs with `-accel tcg` (a stock kernel does not boot under nested KVM on
the machines this was written on), 2 GiB and one vCPU. It is started in its own
session with a parent-death signal, and killed on `close()`, on leaving the
`with` block (errors and Ctrl-C included) and at interpreter exit: no guest
outlives its Python process.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from mglru.abi.cgroup import CgroupHierarchy
from mglru.abi.kernel import DEFAULT_CGROUP_ROOT, LRU_GEN_ENABLED, BackendError
from mglru.abi.qemu_images import KernelImage, build_initramfs, kernel_image

__all__ = ["QemuKernel", "GuestTask", "QemuError", "qemu_binary", "MADV_HUGEPAGE", "SWAP_DEVICES",
           "MADV_PAGEOUT", "MADV_COLD"]

QEMU = "qemu-system-x86_64"
#: the guest's swap device, and the model's `swap_device` that behaves as it does
SWAP_DEVICES = {"ram": "sync", "nullb": "ssd"}
#: madvise(2) advice numbers (include/uapi/asm-generic/mman-common.h)
MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_COLD, MADV_PAGEOUT = 14, 15, 20, 21
_PR_SET_PDEATHSIG = 1
_PING_INTERVAL = 5.0
PMD_SIZE = 2 << 20


class QemuError(BackendError):
    """QEMU is missing, the guest did not boot, or the agent stopped answering."""


def qemu_binary() -> str | None:
    """The path of qemu-system-x86_64, or None."""
    return shutil.which(QEMU)


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """preexec_fn: SIGKILL QEMU when the Python process dies, however it dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


class GuestTask:
    """A task in the guest: the agent's forked child, in a memory cgroup.

    Mirrors the simulated kernel's `Process` (`mmap`, `access`, `pid`), so a
    workload written once drives both.
    """

    def __init__(self, kernel: QemuKernel, pid: int, memcg: str) -> None:
        self.kernel = kernel
        self.pid = pid
        self.memcg_path = memcg
        self.alive = True

    def __repr__(self) -> str:
        return f"GuestTask(pid={self.pid}, memcg={self.memcg_path!r})"

    def _op(self, *words: object) -> int:
        return int(self.kernel._call("TASK", str(self.pid), *map(str, words)).decode() or 0)

    def mmap(self, nbytes: int, *, thp: bool = False, shared: bool = False) -> int:
        """mmap(2) anonymous memory (MAP_SHARED: shmem); `thp`: PMD-aligned, MADV_HUGEPAGE."""
        addr = self._op("MMAP", nbytes, int(shared), PMD_SIZE if thp else 0)
        self._op("MADVISE", addr, nbytes, MADV_HUGEPAGE if thp else MADV_NOHUGEPAGE)
        return addr

    def access(self, addr: int, nbytes: int, *, write: bool = False) -> None:
        """Touch one byte of every page of [addr, addr+nbytes) (a write if `write`)."""
        self._op("TOUCH", addr, nbytes, int(write))

    def madvise(self, addr: int, nbytes: int, advice: int) -> None:
        """madvise(2) on the task's memory."""
        self._op("MADVISE", addr, nbytes, advice)

    def munmap(self, addr: int, nbytes: int) -> None:
        """munmap(2)."""
        self._op("MUNMAP", addr, nbytes)

    def mmap_file(self, path: str, nbytes: int) -> int:
        """mmap(2) MAP_SHARED of the first `nbytes` of a guest file, read and write."""
        return self._op("FMAP", nbytes, 0, path.encode().hex())

    def read_file(self, path: str, offset: int, nbytes: int) -> int:
        """read(2) [offset, offset+nbytes) of a guest file (into a scratch buffer)."""
        return self._op("READF", offset, nbytes, path.encode().hex())

    def vm_touch(self, addr: int, nbytes: int, *, write: bool = False) -> None:
        """A KVM guest whose RAM is [addr, addr+nbytes) touches every page of it.

        The task runs a minimal VMM (one vCPU, the region as guest memory at gpa 0);
        the VM stays until the task exits. Needs /dev/kvm in the guest: QEMU's TCG
        emulates AMD SVM, and the guest's init loads kvm_amd.

        Raises:
            OSError: the guest's errno (ENOENT: no /dev/kvm; EIO: an unexpected exit).
        """
        self._op("VMTOUCH", addr, nbytes, int(write))


class QemuKernel:
    """A booted stock kernel. See the module docstring.

    Args:
        kernel: "6.1", "6.12", or a path to a linux-image .deb (fetched and cached).
        memory_mib: guest RAM.
        boot_timeout: seconds to wait for the agent's first answer.
        command_timeout: seconds one request may take (TCG is slow: aging a
            large memcg takes seconds).
        enable_lru_gen: write "y" to /sys/kernel/mm/lru_gen/enabled after boot
            (Debian's 6.1 build ships with CONFIG_LRU_GEN_ENABLED off, so
            MGLRU would otherwise be idle there).
    """

    #: the backend kind (see `mglru.abi.kernel.kernel_kind`)
    kind = "qemu"

    def __init__(self, kernel: str = "6.12", memory_mib: int = 2048, boot_timeout: float = 120,
                 command_timeout: float = 300, enable_lru_gen: bool = True,
                 swap: str = "ram") -> None:
        if swap not in SWAP_DEVICES:
            raise ValueError(f"swap must be one of {', '.join(SWAP_DEVICES)}, got {swap!r}")
        self.name = kernel
        #: the guest's swap device: "ram" (brd, synchronous) or "nullb" (null_blk)
        self.swap = swap
        self.memory_mib = memory_mib
        self.boot_timeout = boot_timeout
        self.command_timeout = command_timeout
        self.enable_lru_gen = enable_lru_gen
        self.image: KernelImage | None = None
        self.boot_seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buf = b""
        self._seq = 0
        self._tmp: str | None = None
        self._tasks: dict[int, GuestTask] = {}
        self._cgroup: CgroupHierarchy | None = None

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"QemuKernel({self.name!r}, {state})"

    # -- life cycle -------------------------------------------------------------------
    def __enter__(self) -> QemuKernel:
        self.boot()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Whether QEMU is running."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def console_log(self) -> str:
        """The guest's serial console so far (boot messages, init's lines)."""
        if self._tmp is None:
            return ""
        try:
            return Path(self._tmp, "console.log").read_text(errors="replace")
        except OSError:
            return ""

    def boot(self) -> None:
        """Fetch the kernel if needed, build the initramfs, start QEMU, wait for the agent.

        Raises:
            QemuError: QEMU missing, or the guest did not answer in time.
            KernelImageError: the kernel could not be fetched or prepared.
        """
        qemu = qemu_binary()
        if qemu is None:
            raise QemuError(f"{QEMU} not found: install QEMU (apt-get install "
                            "qemu-system-x86) to use --kernel qemu:...")
        self.image = kernel_image(self.name)
        initrd = build_initramfs(self.image)
        self._tmp = tempfile.mkdtemp(prefix="mglru-qemu-")
        sock_path = os.path.join(self._tmp, "agent.sock")
        cmd = [qemu, "-accel", "tcg", "-cpu", "max,-cx16", "-m", str(self.memory_mib),
               "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
               "-no-reboot", "-serial", f"file:{self._tmp}/console.log",
               "-kernel", str(self.image.vmlinuz), "-initrd", str(initrd),
               "-append", "console=ttyS0 panic=-1 quiet transparent_hugepage=madvise"
               + (" mglru.swap=nullb" if self.swap == "nullb" else ""),
               "-device", "virtio-serial-pci",
               "-chardev", f"socket,id=agent,path={sock_path},server=on,wait=off",
               "-device", "virtserialport,chardev=agent,name=mglru.agent"]
        start = time.monotonic()
        atexit.register(self.close)
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=open(os.path.join(self._tmp, "qemu.err"), "wb"),
                                      start_new_session=True, preexec_fn=_die_with_parent)
        try:
            self._connect(sock_path, start)
            self._wait_for_agent(start)
            if self.enable_lru_gen and self.exists(LRU_GEN_ENABLED):
                self.write(LRU_GEN_ENABLED, "y\n")
        except BaseException:
            self.close()
            raise
        self.boot_seconds = time.monotonic() - start

    def _send(self, line: bytes) -> None:
        assert self._sock is not None
        try:
            self._sock.sendall(line)
        except ConnectionError:
            raise self._fail("the agent channel closed") from None
        except TimeoutError:
            raise self._fail(f"the agent took no request for {self.command_timeout:.0f} s"
                             ) from None

    def _fail(self, what: str) -> QemuError:
        if self._proc is not None:
            try:
                self._proc.wait(timeout=2)  # a dying QEMU: let its last words reach the log
            except subprocess.TimeoutExpired:
                pass
        qemu_err = ""
        if self._tmp is not None:
            try:
                qemu_err = Path(self._tmp, "qemu.err").read_text(errors="replace").strip()
            except OSError:
                pass
        lines = [ln for ln in self.console_log.splitlines() if ln.strip()]
        last = qemu_err.splitlines()[-1] if qemu_err else (lines[-1] if lines else "no output")
        return QemuError(f"kernel {self.name}: {what} (last output: {last.strip()})")

    def _connect(self, path: str, start: float) -> None:
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._fail("QEMU exited before the guest booted")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self._sock = s
                return
            except (FileNotFoundError, ConnectionRefusedError):
                s.close()
            if time.monotonic() - start > self.boot_timeout:
                raise self._fail("QEMU did not open the agent channel")
            time.sleep(0.05)

    def _wait_for_agent(self, start: float) -> None:
        """PING until the agent answers; replies to earlier PINGs are skipped by id.

        QEMU holds what we send until the guest opens its port, so one PING is
        normally enough; another goes every few seconds in case one was lost,
        never so many that the socket's buffer fills.
        """
        assert self._sock is not None
        self._sock.settimeout(0.5)
        sent: set[bytes] = set()
        last_ping = -_PING_INTERVAL
        while True:
            if self._proc is not None and self._proc.poll() is not None:
                raise self._fail("the guest stopped before its agent answered")
            now = time.monotonic()
            if now - start > self.boot_timeout:
                raise self._fail(f"the guest did not boot within {self.boot_timeout:.0f} s")
            if now - last_ping >= _PING_INTERVAL:
                self._seq += 1
                try:
                    self._sock.sendall(b"%d PING\n" % self._seq)
                    sent.add(b"%d" % self._seq)
                except TimeoutError:
                    pass
                except ConnectionError:
                    raise self._fail("the agent channel closed") from None
                last_ping = now
            try:
                while True:
                    tag, _, _ = self._readline().partition(b" ")
                    if tag in sent:
                        return
            except TimeoutError:
                continue

    def close(self) -> None:
        """Stop the guest (kill QEMU) and remove the temporary files; idempotent."""
        atexit.unregister(self.close)
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # pragma: no cover - a stuck kill
                pass
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self._tasks.clear()

    # -- the channel ---------------------------------------------------------------------
    def _readline(self) -> bytes:
        assert self._sock is not None
        while b"\n" not in self._buf:
            try:
                data = self._sock.recv(1 << 20)
            except ConnectionError:
                data = b""
            if not data:
                raise self._fail("the agent closed the channel")
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return line

    def _call(self, cmd: str, *args: str, path: str | None = None) -> bytes:
        """Send one request; return the reply's bytes or raise OSError with its errno."""
        if self._sock is None or not self.running:
            raise QemuError(f"kernel {self.name}: the guest is not running")
        self._seq += 1
        tag = b"%d" % self._seq
        self._sock.settimeout(self.command_timeout)
        self._send(b" ".join([tag, cmd.encode(), *(a.encode() for a in args)]) + b"\n")
        try:
            while True:
                words = self._readline().split(b" ")
                if words[0] == tag:
                    break
        except TimeoutError:
            raise self._fail(f"{cmd} got no answer within {self.command_timeout:.0f} s") from None
        if words[1] == b"ERR":
            code = int(words[2])
            raise OSError(code, os.strerror(code), path)
        return bytes.fromhex(words[2].decode()) if len(words) > 2 else b""

    def _path_call(self, cmd: str, path: str, *args: str) -> bytes:
        return self._call(cmd, path.encode().hex(), *args, path=path)

    # -- the Kernel protocol ---------------------------------------------------------------
    def read(self, path: str) -> str:
        """Read a whole guest file (OSError with the guest's errno)."""
        return self._path_call("READ", path).decode(errors="replace")

    def write(self, path: str, text: str | bytes) -> int:
        """One open(O_WRONLY|O_TRUNC) + write(2) in the guest; returns the bytes accepted."""
        data = text.encode() if isinstance(text, str) else text
        return int(self._path_call("WRITE", path, data.hex()).decode())

    def pread(self, path: str, size: int, offset: int) -> bytes:
        """pread(2) of a guest file."""
        return self._path_call("PREAD", path, str(size), str(offset))

    def pwrite(self, path: str, data: bytes, offset: int) -> int:
        """pwrite(2) to a guest file; returns the bytes accepted."""
        return int(self._path_call("PWRITE", path, data.hex(), str(offset)).decode())

    def mkdir(self, path: str) -> None:
        """mkdir(2) in the guest (a cgroup directory)."""
        self._path_call("MKDIR", path)

    def rmdir(self, path: str) -> None:
        """rmdir(2) in the guest."""
        self._path_call("RMDIR", path)

    def exists(self, path: str) -> bool:
        """Whether a guest path exists."""
        return self._path_call("EXISTS", path) == b"1"

    def access(self, path: str, write: bool = False) -> bool:
        """Whether open(2) for reading (and writing) succeeds in the guest."""
        return self._path_call("ACCESS", path, "1" if write else "0") == b"1"

    @property
    def cgroup(self) -> CgroupHierarchy:
        """The guest's memory cgroup hierarchy (our init mounts cgroup2 here)."""
        if self._cgroup is None:
            self._cgroup = CgroupHierarchy(version=2, root=DEFAULT_CGROUP_ROOT)
        return self._cgroup

    @property
    def cgroup_root(self) -> str:
        """The kernel-view root of the memory cgroup hierarchy."""
        return DEFAULT_CGROUP_ROOT

    # -- workload primitives ------------------------------------------------------------
    def spawn(self, memcg: str = "/") -> GuestTask:
        """Fork a task in the guest and move it into `memcg` (a path below the root).

        Raises:
            OSError: the guest's errno (ENOENT for a missing memcg).
        """
        rel = "/" + memcg.strip("/")
        procs = DEFAULT_CGROUP_ROOT + (rel if rel != "/" else "") + "/cgroup.procs"
        pid = int(self._path_call("SPAWN", procs).decode())
        task = GuestTask(self, pid, rel)
        self._tasks[pid] = task
        return task

    def exit_task(self, task: GuestTask) -> None:
        """SIGKILL the task and reap it (its anonymous memory is freed)."""
        if not task.alive:
            return
        self._call("KILL", str(task.pid))
        task.alive = False
        self._tasks.pop(task.pid, None)

    def create_file(self, path: str, nbytes: int) -> None:
        """A sparse file of `nbytes` (truncate(1)): no page is cached until read.

        Raises:
            OSError: EIO with the shell's message when truncate fails.
        """
        out = self.shell(f"truncate -s {int(nbytes)} '{path}'")
        if not out.rstrip().endswith("rc=0"):
            raise OSError(errno.EIO, out.strip(), path)

    def remove_file(self, path: str) -> None:
        """Unlink a guest file; its page cache goes with it."""
        self.shell(f"rm -f '{path}'")

    def shell(self, command: str) -> str:
        """Run a busybox shell command in the guest; returns its output and 'rc=N'."""
        return self._path_call("SHELL", command).decode(errors="replace")

    def uname_release(self) -> str:
        """The guest kernel's release (`uname -r`)."""
        return self.read("/proc/sys/kernel/osrelease").strip()

