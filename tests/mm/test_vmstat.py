"""/proc/vmstat and memory.stat: the kernel's names, who counts what, and the gauges.

Mirrors mglru/mm/vmstat.py. Expected values come from independent sources:
the pages a test itself touched, memory.current, the generation table of
/sys/kernel/debug/lru_gen, and the difference of counters around one action.
"""

from __future__ import annotations

import errno

import pytest

from mglru import SimKernel

CG = "/sys/fs/cgroup"
PAGE = 4096
MIB = 1 << 20


def _kv(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        name, value = line.split(" ")
        out[name] = int(value)
    return out


def _vmstat(k):
    return _kv(k.read("/proc/vmstat"))


def _mstat(k, cg):
    return _kv(k.read(f"{CG}/{cg}/memory.stat"))


def _setup(config="v6.14", mib=8, cg="a"):
    k = SimKernel(config=config, seed=0)
    k.mkdir(f"{CG}/{cg}")
    p = k.spawn(memcg=f"/{cg}")
    addr = p.mmap(mib * MIB)
    p.access(addr, mib * MIB, write=True)
    return k, p, addr


def _gen_table(k, memcg_id):
    """(max_seq, {seq: anon pages}) of one memcg's node 0 from debugfs lru_gen."""
    rows, cur = {}, None
    for line in k.read("/sys/kernel/debug/lru_gen").splitlines():
        f = line.split()
        if f[0] == "memcg":
            cur = int(f[1])
        elif cur == memcg_id and f[0] != "node":
            rows[int(f[0])] = int(f[2])
    return max(rows), rows


def test_vmstat_keys_are_the_kernels_in_order():
    """Every line is `name value`; the names and their order are mm/vmstat.c's."""
    k, _, _ = _setup()
    names = [line.split()[0] for line in k.read("/proc/vmstat").splitlines()]
    assert names[:5] == ["nr_inactive_anon", "nr_active_anon", "nr_inactive_file",
                         "nr_active_file", "nr_unevictable"]
    order = ["workingset_refault_anon", "nr_anon_pages", "pswpin", "pswpout", "pgfault",
             "pgmajfault", "pgsteal_kswapd", "pgsteal_direct", "pgscan_kswapd", "pgscan_direct",
             "pgscan_anon", "pgscan_file", "pgsteal_anon", "pgsteal_file", "oom_kill"]
    assert [n for n in names if n in order] == order
    assert "pgsteal_proactive" not in names
    assert len(set(names)) == len(names)


def test_proactive_counters_appear_from_v6_15():
    """v6.15 splits memory.reclaim's counts out of _direct into _proactive."""
    k, _, _ = _setup("v6.15")
    names = [line.split()[0] for line in k.read("/proc/vmstat").splitlines()]
    k_names = list(_mstat(k, "a"))
    for what in ("pgsteal", "pgscan"):
        assert names.index(f"{what}_proactive") == names.index(f"{what}_khugepaged") + 1
        assert k_names.index(f"{what}_proactive") == k_names.index(f"{what}_khugepaged") + 1


@pytest.mark.parametrize("config, item", [("v6.14", "direct"), ("v6.15", "proactive")])
def test_memory_reclaim_counts_on_the_memcg_not_in_global_reclaimer_counters(config, item):
    """Cgroup reclaim: memcg pgsteal_<reclaimer>; /proc/vmstat only pgsteal_anon|file."""
    k, _, _ = _setup(config)
    v0, m0 = _vmstat(k), _mstat(k, "a")
    current0 = int(k.read(f"{CG}/a/memory.current"))
    k.write(f"{CG}/a/memory.reclaim", str(MIB))
    v1, m1 = _vmstat(k), _mstat(k, "a")
    reclaimed = (current0 - int(k.read(f"{CG}/a/memory.current"))) // PAGE
    assert reclaimed >= MIB // PAGE
    assert m1[f"pgsteal_{item}"] - m0[f"pgsteal_{item}"] == reclaimed
    assert m1["pgsteal"] - m0["pgsteal"] == reclaimed
    assert v1["pgsteal_anon"] - v0["pgsteal_anon"] == reclaimed
    assert v1["pswpout"] - v0["pswpout"] == reclaimed
    for r in ("kswapd", "direct", "khugepaged"):
        assert v1[f"pgsteal_{r}"] == v0[f"pgsteal_{r}"] and v1[f"pgscan_{r}"] == v0[f"pgscan_{r}"]
    # MGLRU's pgscan counts isolated pages: at least what was reclaimed
    assert m1["pgscan"] - m0["pgscan"] >= reclaimed
    assert v1["pgscan_anon"] - v0["pgscan_anon"] == m1["pgscan"] - m0["pgscan"]


def test_debugfs_eviction_is_global_direct_reclaim():
    """`-` has no target memcg: pgsteal_direct in /proc/vmstat and on the lruvec's memcg."""
    k, _, _ = _setup("v6.14")
    memcg_id = k.memcg("/a").id
    for _ in range(2):
        max_seq, _ = _gen_table(k, memcg_id)
        k.write("/sys/kernel/debug/lru_gen", f"+ {memcg_id} 0 {max_seq} 1 1")
    max_seq, _ = _gen_table(k, memcg_id)
    v0, m0 = _vmstat(k), _mstat(k, "a")
    k.write("/sys/kernel/debug/lru_gen", f"- {memcg_id} 0 {max_seq - 2} 1 256")
    v1, m1 = _vmstat(k), _mstat(k, "a")
    n = v1["pgsteal_direct"] - v0["pgsteal_direct"]
    assert n >= 256
    assert m1["pgsteal_direct"] - m0["pgsteal_direct"] == n
    assert v1["pgsteal_anon"] - v0["pgsteal_anon"] == n


def test_memory_stat_is_hierarchical():
    """A parent's events and sizes include its children's."""
    k = SimKernel(config="v6.14", seed=0)
    k.mkdir(f"{CG}/p")
    k.mkdir(f"{CG}/p/c")
    child = k.spawn(memcg="/p/c")
    parent = k.spawn(memcg="/p")
    for proc, mib in ((child, 4), (parent, 2)):
        addr = proc.mmap(mib * MIB)
        proc.access(addr, mib * MIB, write=True)
    k.write(f"{CG}/p/c/memory.reclaim", str(MIB))
    c, p = _mstat(k, "p/c"), _mstat(k, "p")
    assert c["pgfault"] == 4 * MIB // PAGE and p["pgfault"] == 6 * MIB // PAGE
    assert p["pgsteal"] == c["pgsteal"] > 0
    assert p["anon"] == int(k.read(f"{CG}/p/memory.current"))
    assert c["anon"] == int(k.read(f"{CG}/p/c/memory.current"))


def test_faults_minor_and_major():
    """pgfault per PTE that faults (not for present pages); swap-ins are major faults."""
    k, p, addr = _setup("v6.14", mib=4)
    v0, m0 = _vmstat(k), _mstat(k, "a")
    p.access(addr, 4 * MIB, write=True)                    # all present: no fault
    assert _vmstat(k)["pgfault"] == v0["pgfault"] and _mstat(k, "a")["pgfault"] == m0["pgfault"]
    k.write(f"{CG}/a/memory.reclaim", str(MIB))
    swapped = _vmstat(k)["pswpout"]
    assert swapped > 0
    v1 = _vmstat(k)
    p.access(addr, 4 * MIB)
    v2, m2 = _vmstat(k), _mstat(k, "a")
    assert v2["pgmajfault"] - v1["pgmajfault"] == swapped == v2["pswpin"] - v1["pswpin"]
    assert v2["pgfault"] - v1["pgfault"] == swapped
    assert m2["pgmajfault"] == swapped


def test_lru_sizes_follow_the_two_youngest_generations():
    """active = pages in max_seq and max_seq - 1 (lru_gen_is_active), from debugfs lru_gen."""
    k, p, addr = _setup("v6.14", mib=8)
    memcg_id = k.memcg("/a").id
    for step in range(4):
        max_seq, rows = _gen_table(k, memcg_id)
        active = rows.get(max_seq, 0) + rows.get(max_seq - 1, 0)
        m, v = _mstat(k, "a"), _vmstat(k)
        assert m["active_anon"] == active * PAGE, step
        assert m["active_anon"] + m["inactive_anon"] == m["anon"] == sum(rows.values()) * PAGE
        assert v["nr_active_anon"] == active and v["nr_anon_pages"] == sum(rows.values())
        k.write("/sys/kernel/debug/lru_gen", f"+ {memcg_id} 0 {max_seq} 1 1")
        if step == 1:
            p.access(addr, 2 * MIB)                      # a quarter gets young again


def test_workingset_refaults_by_type():
    """Swapped-out anon pages read back: workingset_refault_anon, not _file."""
    k, p, addr = _setup("v6.14", mib=4)
    k.write(f"{CG}/a/memory.reclaim", str(MIB))
    v0, m0 = _vmstat(k), _mstat(k, "a")
    p.access(addr, 4 * MIB)
    v1, m1 = _vmstat(k), _mstat(k, "a")
    refaults = v1["workingset_refault_anon"] - v0["workingset_refault_anon"]
    assert refaults == v1["pswpin"] - v0["pswpin"] > 0
    assert m1["workingset_refault_anon"] - m0["workingset_refault_anon"] == refaults
    assert v1["workingset_refault_file"] == v0["workingset_refault_file"]


def test_memory_stat_is_read_only():
    """Writing memory.stat fails with EACCES and changes nothing."""
    k, _, _ = _setup()
    before = k.read(f"{CG}/a/memory.stat")
    with pytest.raises(OSError) as e:
        k.write(f"{CG}/a/memory.stat", "anon 0\n")
    assert e.value.errno == errno.EACCES
    assert k.read(f"{CG}/a/memory.stat") == before
    assert k.exists(f"{CG}/memory.stat")                 # the root has one too


def test_a_pmd_folio_counts_as_512_pages():
    """THP: anon in memory.stat is the charged size, head and tails together."""
    k = SimKernel(config="v6.14", seed=0)
    k.mkdir(f"{CG}/t")
    p = k.spawn(memcg="/t")
    addr = p.mmap(8 * MIB, thp=True)
    p.access(addr, 8 * MIB, write=True)
    m = _mstat(k, "t")
    assert m["anon"] == int(k.read(f"{CG}/t/memory.current")) == 8 * MIB
    assert m["pgfault"] == 8 * MIB // (2 * MIB)          # one fault per PMD
    assert _vmstat(k)["nr_anon_pages"] == 8 * MIB // PAGE
