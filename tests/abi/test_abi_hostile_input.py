"""Hostile writes to the kernel file interface: only OSError, the kernel's errno, no effect.

Each rule is the v6.12 kernel's: lru_gen_seq_write() and the sysfs stores
(mm/vmscan.c), kernfs_fop_write_iter() and sysfs_kf_write()
(fs/kernfs/file.c, fs/sysfs/file.c), cgroup_file_write() and cgroup_mkdir()
(kernel/cgroup/cgroup.c), memory_*_write() and memory_reclaim()
(mm/memcontrol.c), page_counter_memparse() (mm/page_counter.c), memparse()
(lib/cmdline.c), kstrto*() (lib/kstrtox.c), isspace() (lib/ctype.c).
"""

from __future__ import annotations

import errno
import time

import pytest
from kernel_checks import CGROOT, ENABLED, LRU_GEN, MIN_TTL, check_invariants, snapshot

from mglru import SimKernel

PAGE = 4096
MAX = CGROOT + "/a/memory.max"
MIN = CGROOT + "/a/memory.min"
RECLAIM = CGROOT + "/a/memory.reclaim"
PROCS = CGROOT + "/a/cgroup.procs"


@pytest.fixture
def k() -> SimKernel:
    k = SimKernel("v6.10", debug=True)
    k.mkdir(CGROOT + "/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(256 * PAGE)
    p.access(a, 256 * PAGE, write=True)
    return k


def rejects(k: SimKernel, err: int, path: str, data) -> None:
    """The write fails with `err` and changes nothing."""
    snap = snapshot(k)
    with pytest.raises(OSError) as e:
        k.write(path, data)
    assert e.value.errno == err, f"{path} <- {data!r}: errno {e.value.errno}, expected {err}"
    assert snapshot(k) == snap


# -- item 1: bytes, not text -------------------------------------------------------------
@pytest.mark.parametrize("path, data", [
    (LRU_GEN, b"+ 2 0 4\xff"), (LRU_GEN, b"\xff+ 2 0 4"), (ENABLED, b"\xff"),
    (MIN_TTL, b"10\xff"), (MAX, b"1\xffM"), (MIN, b"\xc3\xa9"), (RECLAIM, b"1M \xff"),
    (PROCS, b"\xfe\xff"), (ENABLED, "1\udcff"), (MAX, "5\ud800"), (LRU_GEN, "+ 2 0 4\udcff"),
])
def test_non_utf8_and_lone_surrogates_einval(k: SimKernel, path: str, data) -> None:
    """Undecodable bytes and lone surrogates reach the parser as bytes: EINVAL, no effect."""
    rejects(k, errno.EINVAL, path, data)


def test_lone_surrogate_after_y_is_applied_and_returns_length(k: SimKernel) -> None:
    """enabled_store() looks at the first byte only: "y<0xff>" turns every cap on
    and the write returns its byte count (no exception after the effect)."""
    k.write(ENABLED, "n")
    assert k.write(ENABLED, "y\udcff") == 2
    assert k.read(ENABLED) != "0x0000\n"


def test_kernel_isspace_is_bytes(k: SimKernel) -> None:
    """0xa0 is white space to the kernel (lib/ctype.c), 0x1c-0x1f and Unicode spaces are not."""
    assert k.write(MAX, b"\xa01M\xa0\n") == 5 and k.read(MAX) == f"{1 << 20}\n"
    for data in ("1M\x1c", "\x1f1M", "\u20031M", "1M\u2028", "\x851M"):
        rejects(k, errno.EINVAL, MAX, data)


# -- items 2, 3: huge numbers, linear time ---------------------------------------------------
def test_huge_decimals_wrap_like_memparse(k: SimKernel) -> None:
    """More than 4 300 digits: no ValueError; memparse() wraps modulo 2**64 (10**n is
    0 modulo 2**64 for n >= 64), so 1 followed by 4 000 zeros is 0 bytes."""
    assert k.write(MAX, "1" + "0" * 4000) == 4001 and k.read(MAX) == "0\n"
    assert k.write(MIN, "9" * 4095) == 4095 and k.read(MIN) == "max\n"
    rejects(k, errno.E2BIG, MAX, "9" * 4097)


@pytest.mark.parametrize("path", [ENABLED, MIN_TTL, PROCS, LRU_GEN])
def test_megabyte_of_digits_is_fast(k: SimKernel, path: str) -> None:
    """A megabyte of 9s fails at once (sysfs sees 4 KiB, cgroup files refuse it, the
    debugfs scanner is linear); the bound is generous, the old parser took ~96 s."""
    data = ("+ 2 0 " if path == LRU_GEN else "") + "9" * (1 << 20)
    t = time.perf_counter()
    with pytest.raises(OSError) as e:
        k.write(path, data)
    assert time.perf_counter() - t < 5
    assert e.value.errno == (errno.E2BIG if path == PROCS else errno.EINVAL)


def test_sysfs_write_is_capped_at_page_size(k: SimKernel) -> None:
    """kernfs_fop_write_iter() hands a sysfs store at most PAGE_SIZE bytes and returns that."""
    assert k.write(MIN_TTL, "7" + " " * 0 + "\n" + "x" * 0) == 2
    assert k.write(MIN_TTL, "0" * 4096 + "junk") == 4096 and k.read(MIN_TTL) == "0\n"


# -- item 4: deep hierarchies ----------------------------------------------------------------
def test_memcg_chain_1000_deep_reads() -> None:
    """Reads walk the hierarchy without recursion: lru_gen, memory.stat, /proc/vmstat."""
    k = SimKernel("v6.10")
    path = CGROOT
    for _ in range(1000):
        path += "/d"
        k.mkdir(path)
    text = k.read(LRU_GEN)
    assert text.count("memcg ") == 1001
    assert "/d" * 1000 + "\n" in text
    assert "anon " in k.read(path + "/memory.stat")
    assert "nr_inactive_anon" in k.read("/proc/vmstat")
    assert k.memcg(path[len(CGROOT):]).path == "/d" * 1000


# -- item 5: mkdir names -------------------------------------------------------------------
def test_mkdir_newline_einval(k: SimKernel) -> None:
    """cgroup_mkdir() refuses '\\n' in a name: no fake `memcg 1` line can be planted."""
    before = k.read(LRU_GEN)
    with pytest.raises(OSError) as e:
        k.mkdir(CGROOT + "/evil\nmemcg 1 /")
    assert e.value.errno == errno.EINVAL
    assert k.read(LRU_GEN) == before


def test_mkdir_path_max(k: SimKernel) -> None:
    """getname() refuses a path of PATH_MAX (4096) bytes or more: ENAMETOOLONG.
    v6.12 kernfs has no NAME_MAX check, so a 300-byte name under PATH_MAX is accepted."""
    k.mkdir(CGROOT + "/" + "n" * 300)
    assert k.exists(CGROOT + "/" + "n" * 300)
    long = CGROOT + "/" + "m" * (4096 - len(CGROOT) - 1)
    assert len(long) == 4096
    with pytest.raises(OSError) as e:
        k.mkdir(long)
    assert e.value.errno == errno.ENAMETOOLONG
    k.mkdir(long[:-1])  # 4095 bytes + NUL fits


# -- differing answers: lru_gen ---------------------------------------------------------------
@pytest.mark.parametrize("data", ["", ",", ";;\n", " \t\n", "\0+ 2 0 4", ",\0+ 2 0 4"])
def test_lru_gen_write_without_command_einval(k: SimKernel, data: str) -> None:
    """lru_gen_seq_write() starts from err = -EINVAL: no command, no success."""
    rejects(k, errno.EINVAL, LRU_GEN, data)


# -- differing answers: cgroup number grammar ---------------------------------------------
@pytest.mark.parametrize("data", ["+5", "1_0", " 1 0", "0x", "1K2", "max x", "1 M", "-1", "١"])
def test_memory_max_grammar_einval(k: SimKernel, data: str) -> None:
    """page_counter_memparse(): "max" or a whole memparse() number, after strstrip()."""
    rejects(k, errno.EINVAL, MAX, data)


def test_memory_min_accepts_max(k: SimKernel) -> None:
    """memory_min_write() passes "max" to page_counter_memparse() too."""
    assert k.write(MIN, "max\n") == 4 and k.read(MIN) == "max\n"
    assert k.write(MIN, "0") == 1 and k.read(MIN) == "0\n"


@pytest.mark.parametrize("data, shown", [
    (str(1 << 64), "0\n"), (str((1 << 64) + 8192), "8192\n"), ("16E", "0\n"),
    ("8E", "max\n"), (str((1 << 63) - 4096), "max\n"),
    (str((1 << 63) - 8192), f"{(1 << 63) - 8192}\n"), ("0x10000", "65536\n"),
    ("0200000", "65536\n"), ("1k", "0\n"), ("4097", "4096\n"), ("\n", "0\n"),
])
def test_memory_max_memparse_64bit(k: SimKernel, data: str, shown: str) -> None:
    """memparse() wraps in 64 bits and page_counter_memparse() caps at PAGE_COUNTER_MAX
    (LONG_MAX / PAGE_SIZE pages), which reads back as "max"; an empty value is 0."""
    assert k.write(MAX, data) == len(data)
    assert k.read(MAX) == shown


def test_memory_reclaim_16e_reclaims_nothing(k: SimKernel) -> None:
    """16E is 0 after memparse()'s shift: nothing to reclaim, nothing reclaimed."""
    before = k.read(CGROOT + "/a/memory.current")
    assert k.write(RECLAIM, "16E") == 3
    assert k.read(CGROOT + "/a/memory.current") == before


@pytest.mark.parametrize("data, ok", [
    ("0 swappiness=+5", False), ("0 swappiness=1_0", False), ("0 swappiness=0x10", True),
    ("0 swappiness=010", True), ("0 swappiness=-", True), ("0 swappiness=-1", False),
    ("0 swappiness=201", False), ("0 swappiness=200", True), ("0 swappiness=" + "0" * 23, True),
    ("0 swappiness=" + "0" * 24, False), ("0 swappiness=5x", False), ("0\tswappiness=5", True),
    ("0 swappiness=5\tx", False),
    ("0  swappiness=5 ", True), ("0 swappiness=", False), ("1M1", False),
])
def test_memory_reclaim_swappiness_grammar(k: SimKernel, data: str, ok: bool) -> None:
    """match_token("swappiness=%d") + match_int() (lib/parser.c): simple_strtol() grammar
    (base 0, optional '-', no '+'), whole token, under 24 bytes, 0..200; tokens split on ' '."""
    if ok:
        assert k.write(RECLAIM, data) == len(data)
    else:
        rejects(k, errno.EINVAL, RECLAIM, data)


@pytest.mark.parametrize("data", ["1_0", "5\x1c", "\u20035", "-+5", "2147483648", "0x"])
def test_cgroup_procs_grammar_einval(k: SimKernel, data: str) -> None:
    """cgroup_procs_write_start(): kstrtoint(strstrip(buf), 0) or EINVAL."""
    rejects(k, errno.EINVAL, CGROOT + "/cgroup.procs", data)


def test_cgroup_procs_kstrtoint_forms(k: SimKernel) -> None:
    """kstrtoint() takes a '+' sign and radix prefixes; "-0" is 0 (no such task here)."""
    p = next(iter(k.procs.values()))
    k.mkdir(CGROOT + "/b")
    assert k.write(CGROOT + "/b/cgroup.procs", f"+{p.pid}\n") == len(str(p.pid)) + 2
    assert p.memcg.path == "/b"
    assert k.write(CGROOT + "/a/cgroup.procs", hex(p.pid)) == len(hex(p.pid))
    assert p.memcg.path == "/a"


@pytest.mark.parametrize("name", ["memory.max", "memory.min", "memory.reclaim", "cgroup.procs",
                                  "cgroup.subtree_control"])
def test_cgroup_write_over_page_size_e2big(k: SimKernel, name: str) -> None:
    """cgroup_kf_ops.atomic_write_len = PAGE_SIZE: a longer write is E2BIG, even if blank."""
    rejects(k, errno.E2BIG, f"{CGROOT}/a/{name}", " " * 4097)
    assert k.write(f"{CGROOT}/a/memory.max", " " * 4095 + "1") == 4096


def test_cgroup_nul_ends_the_string(k: SimKernel) -> None:
    """kernfs NUL-terminates the buffer; the handlers parse a C string."""
    assert k.write(MAX, "1M\0junk") == 7 and k.read(MAX) == f"{1 << 20}\n"


def test_subtree_control_tokens(k: SimKernel) -> None:
    """cgroup_subtree_control_write(): space-separated +name/-name tokens."""
    sub = CGROOT + "/a/cgroup.subtree_control"
    assert k.write(sub, " +memory  -memory \n") == 19
    rejects(k, errno.EINVAL, sub, "memory")
    rejects(k, errno.EINVAL, sub, "+memory\t-memory")


# -- memcg ids ---------------------------------------------------------------------------
def test_memcg_ids_lowest_free_and_ebusy() -> None:
    """xa_alloc(XA_LIMIT(1, MEM_CGROUP_ID_MAX)): lowest free id; none left is EBUSY.
    65 534 mkdirs take seconds (the old scan never got there in 300 s)."""
    k = SimKernel("v6.10")
    t = time.perf_counter()
    for i in range(2, 0x10000):
        k.mkdir(f"{CGROOT}/m{i}")
    assert time.perf_counter() - t < 120
    assert k.memcg("/m65535").id == 65535
    with pytest.raises(OSError) as e:
        k.mkdir(CGROOT + "/one-too-many")
    assert e.value.errno == errno.EBUSY
    k.rmdir(CGROOT + "/m300")
    k.rmdir(CGROOT + "/m7")
    k.mkdir(CGROOT + "/again")
    k.mkdir(CGROOT + "/again2")
    assert (k.memcg("/again").id, k.memcg("/again2").id) == (7, 300)
    check_invariants(k)


# -- page_idle/bitmap --------------------------------------------------------------------
BITMAP = "/sys/kernel/mm/page_idle/bitmap"


def test_page_idle_bitmap_kernfs_rules(k: SimKernel) -> None:
    """page_idle_bitmap_read/_write (mm/page_idle.c) behind kernfs (fs/kernfs/file.c):
    a read at or past max_pfn is empty, a write there ENXIO; at most PAGE_SIZE bytes
    move per call (a longer write is short); negative offsets are EINVAL (ksys_pread64)."""
    end = k.mem.max_pfn // 8
    assert k.pread(BITMAP, 8, end) == b"" and k.pread(BITMAP, 4096, end + 4096) == b""
    assert k.pread(BITMAP, 0, 0) == b""
    assert len(k.pread(BITMAP, 1 << 20, 0)) == 4096
    assert len(k.pread(BITMAP, 4100, 0)) == 4096  # the 8-byte check sees the capped count
    assert len(k.pread(BITMAP, 64, end - 16)) == 16
    assert k.pwrite(BITMAP, bytes(8192), 0) == 4096
    for call, args in ((k.pread, (BITMAP, 8, -8)), (k.pwrite, (BITMAP, bytes(8), -8)),
                       (k.pread, (BITMAP, 12, 0)), (k.pwrite, (BITMAP, bytes(8), end)),
                       (k.pread, (BITMAP, 8, 4))):
        with pytest.raises(OSError) as e:
            call(*args)
        assert e.value.errno == (errno.ENXIO if args[-1] == end else errno.EINVAL)
