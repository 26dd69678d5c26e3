"""Standing fuzz of every writable kernel file, mkdir and the idle bitmap, on every preset.

A seeded generator mixes well-formed values with the shapes that broke the
model before: undecodable bytes and lone surrogates, numbers of thousands of
digits, memparse suffixes, 64-bit edges, Unicode and control "spaces", NULs,
separators only, and runs up to a megabyte. For each write it asserts:

- nothing but OSError escapes, and its errno is one the kernel can return
  for that file (the errno sets below, from the kernel handlers);
- a failed single-command write leaves the state exactly as it was;
- the time of a rejected write is bounded by a constant plus a term linear
  in its length, in CPU seconds (generous: parsing is C-speed regex work, the bound is for
  quadratic or exponential blow-ups, not for wall-clock tuning); EAGAIN from
  memory.reclaim is not a rejection (reclaim ran, then gave up).

`MGLRU_FUZZ_CASES` sets the cases per preset (default 400, so about 3 600
in CI over the nine presets); `MGLRU_FUZZ_SEED` changes the seed.
"""

from __future__ import annotations

import errno
import os
import random
import time

import pytest
from kernel_checks import CGROOT, ENABLED, LRU_GEN, LRU_GEN_FULL, MIN_TTL, snapshot

from mglru import SimKernel
from mglru.kernel import to_bytes
from mglru.presets import PRESETS

PAGE = 4096
CASES = int(os.environ.get("MGLRU_FUZZ_CASES", "400"))
SEED = int(os.environ.get("MGLRU_FUZZ_SEED", "0"))
BITMAP = "/sys/kernel/mm/page_idle/bitmap"

E = errno
#: errnos each file may answer with (kernel handler in the comment)
ERRNOS: dict[str, set[int]] = {
    ENABLED: {E.EINVAL},                       # enabled_store
    MIN_TTL: {E.EINVAL},                       # min_ttl_ms_store
    LRU_GEN: {E.EINVAL, E.ERANGE, E.EEXIST, E.EBUSY, E.ENOMEM},  # lru_gen_seq_write, run_cmd
    LRU_GEN_FULL: {E.EINVAL},                  # no .write: vfs_write
    "/proc/vmstat": {E.EINVAL},
    "memory.max": {E.EINVAL, E.E2BIG},         # memory_max_write
    "memory.min": {E.EINVAL, E.E2BIG},         # memory_min_write
    "memory.reclaim": {E.EINVAL, E.E2BIG, E.EAGAIN},  # memory_reclaim
    "cgroup.procs": {E.EINVAL, E.E2BIG, E.ESRCH},     # __cgroup_procs_write
    "cgroup.subtree_control": {E.EINVAL, E.E2BIG},
    "memory.current": {E.EACCES}, "memory.stat": {E.EACCES}, "memory.events": {E.EACCES},
    "mkdir": {E.EEXIST, E.ENOENT, E.EINVAL, E.ENAMETOOLONG, E.EBUSY},
    BITMAP: {E.EINVAL, E.ENXIO},
}
CGROUP_FILES = ("memory.max", "memory.min", "memory.reclaim", "cgroup.procs",
                "cgroup.subtree_control", "memory.current", "memory.stat", "memory.events")

#: the kernel's white space (lib/ctype.c) and look-alikes it does not treat as space
SPACES = [" ", "\t", "\n", "\v", "\f", "\r", b"\xa0", "\x1c", "\x1f", "\x85", "\u00a0", "\u2003",
          "\u3000"]
JUNK = ["\0", "\udcff", "\ud800", b"\xff", b"\xc3", "\u0661", "_", "+", "-", "x", "K", "E", "e",
        "max", "swappiness=", ",", ";", "é", "0x", "%n"]


def number(rng: random.Random) -> str:
    """A number in one of the shapes the kernel parsers meet."""
    r = rng.random()
    if r < 0.25:
        return str(rng.choice([0, 1, 2, 3, 4, 5, 60, 100, 200, 201, 4095, 4096, 65535, 65536]))
    if r < 0.45:
        e = rng.choice([31, 32, 63, 64, 65, 128])
        return str((1 << e) + rng.choice([-1, 0, 1]))
    if r < 0.55:
        return "0x" + format(rng.getrandbits(rng.choice([4, 32, 64, 68])), "x")
    if r < 0.62:
        return "0" + format(rng.getrandbits(rng.choice([3, 30, 66])), "o")
    if r < 0.72:
        return rng.choice("123456789") + "0" * rng.choice([20, 400, 4300, 5000])
    if r < 0.8:
        return "9" * rng.choice([19, 20, 21, 4096, 1 << 16, 1 << 20])
    return str(rng.getrandbits(rng.choice([8, 20, 40])))


def piece(rng: random.Random, path: str) -> list:
    """Parts of one value for `path`: mostly valid, then perturbed."""
    parts: list = []
    if path == LRU_GEN:
        parts = [rng.choice("+++-x"), " ", str(rng.choice([1, 2, 3, 2, 3, 0, 9, 1 << 32])), " ",
                 str(rng.choice([0, 1, 0, 2])), " ", rng.choice(["2", "3", "4", "5", number(rng)])]
        if rng.random() < 0.5:
            parts += [" ", rng.choice(["0", "60", "200", "0", "60", "201", "max", number(rng)])]
            if rng.random() < 0.5:
                parts += [" ", rng.choice(["0", "1", number(rng)])]
    elif path in (ENABLED, MIN_TTL):
        parts = [rng.choice(["y", "n", "Y", "N", number(rng), "0x7", "8"])]
    elif path.endswith("memory.reclaim"):
        parts = [number(rng), rng.choice(["", "K", "M", "G", "E", "k", "P"])]
        if rng.random() < 0.5:
            parts += [" ", "swappiness=", rng.choice(["0", "60", "200", "201", "-", "+5", "max",
                                                      number(rng)])]
    elif path.endswith(("memory.max", "memory.min")):
        parts = [rng.choice(["max", number(rng) + rng.choice(["", "K", "M", "G", "T", "P", "E"])])]
    elif path.endswith("cgroup.procs"):
        parts = [rng.choice([number(rng), "-1", "-0", "+1000", "1000", "1001"])]
    else:
        parts = [rng.choice(["+memory", "-memory", "memory", "+cpu", ""])]
    for _ in range(rng.choice([0, 0, 0, 1, 2, 4])):  # perturb: insert, replace or append
        what = rng.choice(SPACES + JUNK)
        at = rng.randrange(len(parts) + 1)
        if rng.random() < 0.3 and parts:
            parts[min(at, len(parts) - 1)] = what
        else:
            parts.insert(at, what)
    if rng.random() < 0.05:
        parts = [rng.choice(SPACES + [",", ";", "\0"]) for _ in range(rng.randrange(0, 6))]
    if rng.random() < 0.1:
        parts.append(rng.choice(SPACES) * rng.choice([1, 4096, 5000]))
    return parts


def encode(parts: list, rng: random.Random) -> str | bytes:
    """Join the parts as str (when all are str and the draw says so) or as bytes."""
    if all(isinstance(p, str) for p in parts) and rng.random() < 0.6:
        return "".join(parts)
    return b"".join(p if isinstance(p, bytes) else p.encode("utf-8", "surrogatepass")
                    for p in parts)


def kernel(preset: str) -> SimKernel:
    """memcgs / (1), /a (2), /a/b (3) on two nodes, two tasks with pages, aged once."""
    k = SimKernel(preset, node_bytes=(16 << 20, 16 << 20), debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/a/b")
    p = k.spawn(memcg="/a")
    a = p.mmap(64 * PAGE)
    p.access(a, 64 * PAGE, write=True)
    q = k.spawn(memcg="/a/b", node=1)
    b = q.mmap(32 * PAGE)
    q.access(b, 32 * PAGE, write=True)
    k.write(LRU_GEN, "+ 2 0 3")
    return k


def state(k: SimKernel) -> tuple:
    """snapshot() plus what the sysfs and cgroup files set."""
    memcgs = tuple((m.id, m.path, m.memory_max, m.memory_min, tuple(p.pid for p in m.procs))
                   for m in k.memcgs.root.iter_preorder())
    idle = None if k.mem.page_idle is None else k.mem.page_idle.tobytes()
    return snapshot(k), k.read(ENABLED), k.read(MIN_TTL), memcgs, idle


def draw_case(rng: random.Random, k: SimKernel):
    """(kind, target, payload, single): one write, mkdir or bitmap access."""
    r = rng.random()
    if r < 0.08:
        name = encode([rng.choice(["c", "a", "memory.max", "x" * rng.choice([1, 255, 300, 5000])]),
                       rng.choice(["", "\n", "\0", "/", "é", "\udcff", " "])], rng)
        name = name.decode("utf-8", "surrogateescape") if isinstance(name, bytes) else name
        return "mkdir", CGROOT + rng.choice(["", "/a", "/nope"]) + "/" + name, None, True
    if r < 0.14:
        off = rng.choice([0, 8, 7, -8, 1 << 20, k.mem.max_pfn // 8, k.mem.max_pfn // 8 - 8])
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice([0, 8, 9, 64])))
        size = rng.choice([0, 8, 12, 4096, 8192, 1 << 30])
        return "bitmap", BITMAP, (off, data, size), True
    path = rng.choice([ENABLED, MIN_TTL, LRU_GEN, LRU_GEN, LRU_GEN, LRU_GEN_FULL, "/proc/vmstat"]
                      + [f"{CGROOT}/{d}{f}" for d in ("a/", "a/b/") for f in CGROUP_FILES[:5]]
                      + [f"{CGROOT}/a/{rng.choice(CGROUP_FILES[5:])}"])
    if path == LRU_GEN:
        parts = []
        for i in range(rng.choice([1, 1, 1, 2, 3])):
            if i:
                parts.append(rng.choice([",", ";", "\n", ", ", "\0"]))
            if rng.random() < 0.4:  # a command the kernel runs: aging the current max_seq
                lv = rng.choice(list(k.iter_lruvecs()))
                parts.append(f"+ {lv.memcg.id} {lv.nid} {lv.max_seq}{rng.choice(['', ' 0 1'])}")
            else:
                parts += piece(rng, path)
        data = encode(parts, rng)
        text = to_bytes(data).decode("latin-1")  # the bytes the kernel sees
        single = sum(1 for p in text.split("\0")[0].replace(";", ",").replace("\n", ",").split(",")
                     if p.strip(" \t\n\v\f\r\xa0")) <= 1
        return "write", path, data, single
    return "write", path, encode(piece(rng, path), rng), True


def errnos_for(kind: str, path: str) -> set[int]:
    """The errno set of a case."""
    if kind != "write":
        return ERRNOS[kind if kind == "mkdir" else BITMAP]
    return ERRNOS.get(path) or ERRNOS[path.rsplit("/", 1)[1]]


def run_case(k: SimKernel, kind: str, path: str, payload) -> int:
    """Perform one case; returns the input length for the time bound."""
    if kind == "mkdir":
        k.mkdir(path)
        return len(path)
    if kind == "bitmap":
        off, data, size = payload
        if data and off % 16 == 0:
            k.pwrite(path, data, off)
        else:
            k.pread(path, size, off)
        return len(data) + min(size, 4096)
    k.write(path, payload)
    return len(payload)


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_file_fuzz(preset: str) -> None:
    """CASES seeded cases: only OSError with an allowed errno; failed single commands
    change nothing; a failed write costs at most 0.5 s + 5 µs per input byte."""
    rng = random.Random(f"{SEED}-{preset}")
    k = kernel(preset)
    worst = 0.0
    for i in range(CASES):
        if i % 100 == 99:
            k = kernel(preset)  # successful writes accumulate (OOM kills, ...): start over
        kind, path, payload, single = draw_case(rng, k)
        before = state(k)
        t = time.process_time()  # CPU time: other jobs on the machine do not count
        try:
            n = run_case(k, kind, path, payload)
        except OSError as e:
            elapsed = time.process_time() - t
            n = len(payload) if isinstance(payload, (str, bytes)) else len(path)
            assert e.errno in errnos_for(kind, path), \
                f"case {i}: {kind} {path} {payload!r:.200}: errno {e.errno}"
            if e.errno == errno.EAGAIN:  # memory.reclaim did its work, then gave up
                continue
            if not single:  # earlier commands ran: their work is not parsing
                continue
            assert state(k) == before, f"case {i}: {path} {payload!r:.200} changed state"
            assert elapsed < 0.5 + 5e-6 * n, \
                f"case {i}: {path} {payload!r:.100}: {elapsed:.2f} CPU s for {n} bytes"
            worst = max(worst, elapsed / (0.5 + 5e-6 * n))
        except Exception as e:  # noqa: BLE001 - the point: nothing else may escape
            pytest.fail(f"case {i}: {kind} {path} {payload!r:.200} raised {e!r}")
    assert worst < 1
