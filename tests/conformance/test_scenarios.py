"""Conformance scenarios on the model alone: parsing, the runner, the comparison (no QEMU)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from mglru.conformance import (
    KERNEL_PRESETS,
    ScenarioError,
    Snapshot,
    Trace,
    UnsupportedStep,
    builtin_scenarios,
    compare_traces,
    load_scenario,
    run_scenario,
)
from mglru.conformance.compare import tolerance
from mglru.conformance.run import tagged
from mglru.conformance.suite import KNOWN_DIFFERENCES, ConformanceResult
from mglru.kernel import SimKernel
from mglru.presets import PRESETS


def sim(preset: str = "v6.12") -> SimKernel:
    return SimKernel(preset, node_bytes=(2 << 30,))


def test_builtin_scenarios_parse_and_cover_the_basics():
    """At least 12 scenarios: the basics, memcg hierarchy, file, shmem, min_ttl, KVM."""
    scs = {s.name: s for s in builtin_scenarios()}
    assert len(scs) >= 12
    assert {"fresh_faults", "aging", "evict_oldest", "refault", "stale_seqs",
            "memcg_hierarchy", "file_pages", "shmem", "min_ttl", "kvm_guest"} <= set(scs)
    for s in scs.values():
        assert any(step.op == "snapshot" for step in s.steps), s.name
        assert s.description
    ops = {name: {step.op for step in s.steps} for name, s in scs.items()}
    assert "vm_touch" in ops["kvm_guest"] and "read_file" in ops["file_pages"]
    assert any(st.args["shared"] for st in scs["shmem"].steps if st.op == "mmap")
    assert any(st.op == "write" and st.args["path"] == "/sys/kernel/mm/lru_gen/min_ttl_ms"
               for st in scs["min_ttl"].steps)
    assert len(scs["memcg_hierarchy"].memcgs) == 3


@pytest.mark.parametrize("preset", ["v6.1", "v6.12"])
@pytest.mark.parametrize("name", [s.name for s in builtin_scenarios()])
def test_every_scenario_runs_on_the_model(name, preset):
    """Each shipped scenario runs on both presets: every snapshot lists its memcgs."""
    sc = {s.name: s for s in builtin_scenarios()}[name]
    t = run_scenario(sim(preset), sc)
    assert len(t.snapshots) == sum(step.op == "snapshot" for step in sc.steps)
    for snap in t.snapshots:
        assert set(snap.gens) == set(sc.memcgs)
        assert snap.order == [m for m in sc.memcgs if snap.gens[m] is not None]


def test_kernel_preset_table():
    """Every real kernel maps to an existing preset."""
    assert set(KERNEL_PRESETS) == {"6.1", "6.12"}
    assert all(p in PRESETS for p in KERNEL_PRESETS.values())
    assert all(k in KERNEL_PRESETS for _, k in KNOWN_DIFFERENCES)


@pytest.mark.parametrize("text, words", [
    ('[[step]]\nop = "fly"\n', "unknown op 'fly'"),
    ('[[step]]\nop = "mkdir"\n', "missing memcg"),
    ('[[step]]\nop = "mkdir"\nmemcg = "/a"\ncolour = 1\n', "unknown field colour"),
    ("[[step]\n", "bad"),
    ('swap = "floppy"\n', "swap must be one of ram, nullb"),
    ('colour = 1\n', "unknown key colour"),
])
def test_bad_scenarios(text, words):
    """Unknown ops and fields, missing fields and bad TOML are one-line ScenarioErrors."""
    with pytest.raises(ScenarioError) as e:
        load_scenario("bad", text)
    assert "\n" not in str(e.value)
    if words != "bad":
        assert words in str(e.value)


def test_model_trace_is_deterministic_and_records_errnos():
    """Two runs on fresh kernels agree; the stale/future seq commands keep their errnos."""
    sc = {s.name: s for s in builtin_scenarios()}["stale_seqs"]
    a, b = run_scenario(sim(), sc), run_scenario(sim(), sc)
    assert compare_traces(a, b) == []
    assert [r[2] for r in a.results] == ["ok", "EINVAL", "EINVAL"]


def test_rmdir_and_write_results_are_recorded():
    """A busy rmdir records EBUSY and the scenario goes on; a memcg file write records ok."""
    sc = {s.name: s for s in builtin_scenarios()}
    assert [r[2] for r in run_scenario(sim(), sc["rmdir_busy"]).results] == ["EBUSY", "ok"]
    t = run_scenario(sim(), sc["memory_reclaim"])
    assert t.results[-1][1:] == ("write: 8M", "ok")
    bad = load_scenario("w", '[[step]]\nop = "write"\ntext = "1"\n')
    with pytest.raises(ScenarioError, match="either path, or memcg and file"):
        run_scenario(sim(), bad)


def test_runner_cleans_up_memcgs():
    """The scenario's memcgs are removed afterwards (the guest runs the next one)."""
    k = sim()
    sc = {s.name: s for s in builtin_scenarios()}["fresh_faults"]
    run_scenario(k, sc)
    assert not k.exists("/sys/fs/cgroup" + tagged("/a", sc.name))


@pytest.mark.parametrize("text, words", [
    ('[[step]]\nop = "mmap"\ntask = "t"\nregion = "r"\n', "give size"),
    ('[[step]]\nop = "mmap"\ntask = "t"\nregion = "r"\nsize = "1M"\nfile = "f"\n',
     "give size"),
    ('[[step]]\nop = "mmap"\ntask = "t"\nregion = "r"\nfile = "f"\nthp = true\n',
     "always shared and never THP"),
    ('[[step]]\nop = "file"\nfile = "f"\nsize = "1M"\nfs = "nfs"\n', "fs must be one of"),
])
def test_bad_new_steps(text, words):
    """mmap takes a size or a file; a file step names a known file system."""
    with pytest.raises(ScenarioError, match=words):
        load_scenario("bad", text)


def _pages(snap, memcg="/a"):
    """(anon, file) pages of a memcg in a snapshot, and anon by seq."""
    gens = snap.gens[memcg]
    return (sum(g[1] for g in gens), sum(g[2] for g in gens)), {g[0]: g[1] for g in gens}


def test_file_and_shmem_columns():
    """Disk file pages are in the file column and swappiness 0 evicts them; shmem (shared
    anonymous and tmpfs) is in the anon column: swappiness 0 keeps it, 200 swaps it."""
    scs = {s.name: s for s in builtin_scenarios()}
    f = run_scenario(sim("v6.12"), scs["file_pages"])
    assert _pages(f.snapshots[0])[0] == (0, 2048)          # read(2) of 8 MiB
    assert _pages(f.snapshots[1])[0] == (0, 4096)          # + 8 MiB faulted through mmap
    assert _pages(f.snapshots[-1])[0][1] < 4096 and f.snapshots[-1].stat["/a"]["pgsteal"] > 0
    s = run_scenario(sim("v6.12"), scs["shmem"])
    names = [x.name for x in s.snapshots]
    after = dict(zip(names, s.snapshots, strict=True))
    assert _pages(after["after-faults"])[0] == (6144, 0)
    assert after["after-faults"].stat["/a"]["shmem"] == 24 << 20
    assert _pages(after["after-swappiness-0"])[0] == (6144, 0)
    assert _pages(after["after-swappiness-200"])[0] == (0, 0)


def test_read_steps_and_knobs_written_back():
    """A read step records the text; min_ttl_ms rounds through HZ and is restored after."""
    sc = {s.name: s for s in builtin_scenarios()}["min_ttl"]
    k = SimKernel("v6.12", node_bytes=(2 << 30,), hz=250)
    t = run_scenario(k, sc)
    reads = [r[2] for r in t.results if r[1].startswith("read ")]
    assert reads == ["0", "1004", "60000"]   # 1001 ms = 250.25 jiffies -> 251 -> 1004 ms
    assert dict((r[1], r[2]) for r in t.results)["write: -1"] == "EINVAL"
    assert k.read("/sys/kernel/mm/lru_gen/min_ttl_ms") == "0\n"
    assert t.snapshots[0].stat["/a"]["pgsteal"] >= 1024   # reclaimed, not killed
    assert k.oom_events == []


def test_hierarchy_lists_parent_first_and_reclaims_from_children():
    """lru_gen lists /p, /p/c1, /p/c2; memory.reclaim of /p takes 8 MiB from the children."""
    for preset in ("v6.1", "v6.12"):
        sc = {s.name: s for s in builtin_scenarios()}["memcg_hierarchy"]
        t = run_scenario(sim(preset), sc)
        last = t.snapshots[-1]
        assert last.order == ["/p", "/p/c1", "/p/c2"]
        stolen = [last.stat[m]["pgsteal"] for m in ("/p/c1", "/p/c2")]
        assert sum(stolen) == last.stat["/p"]["pgsteal"] == 2048 and min(stolen) > 0


def test_kvm_guest_aging_sees_the_secondary_mmu_from_6_12_only():
    """6.1's aging walk reads primary PTEs only, 6.12's asks the secondary MMU too; on
    both, eviction's rmap walk finds the guest's half young and keeps it."""
    sc = {s.name: s for s in builtin_scenarios()}["kvm_guest"]
    for preset, promoted in (("v6.1", 0), ("v6.12", 2048)):
        t = run_scenario(sim(preset), sc)
        snaps = {x.name: x for x in t.snapshots}
        (anon, _), by_seq = _pages(snaps["after-aging"])
        max_seq = max(by_seq)
        assert anon == 4096 and by_seq[max_seq - 1] == promoted, preset
        (anon, _), _ = _pages(snaps["after-eviction"])
        assert anon == 2048 and snaps["after-eviction"].stat["/a"]["pgsteal"] == 2048, preset


class _FlakyGuest:
    """A stand-in for a QEMU guest: the model behind the real kernel's interface, whose
    KVM guest fails the first `fails` times (as nested KVM under TCG now and then does)."""

    kind = "qemu"
    boot_seconds = 0.0
    failures = 0

    def __init__(self) -> None:
        self.inner = sim("v6.12")
        self.closed = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def uname_release(self) -> str:
        return "6.12.0-fake"

    def close(self) -> None:
        self.closed = True

    def spawn(self, memcg):
        guest = self

        class Task:
            def __init__(self, p):
                self.p, self.vm = p, None

            def __getattr__(self, name):
                return getattr(self.p, name)

            def vm_touch(self, addr, nbytes, write=False):
                if _FlakyGuest.failures:
                    _FlakyGuest.failures -= 1
                    raise OSError(5, "Input/output error")
                if self.vm is None:
                    self.vm = guest.inner.create_vm(self.p, nr_address_spaces=1)
                    self.vm.set_user_memory_region(0, 0, 0, nbytes, addr)
                self.vm.vcpu_access(0, 0, nbytes, write=write)

        t = Task(self.inner.spawn(memcg))
        return t

    def exit_task(self, t):
        self.inner.exit_task(t.p)


def test_kvm_scenario_retried_on_a_new_guest(monkeypatch):
    """A failing KVM guest: the scenario runs again on a new guest, and matches."""
    from mglru.conformance import suite

    sc = {s.name: s for s in builtin_scenarios()}["kvm_guest"]
    opened: list[_FlakyGuest] = []

    def opener(name, swap):
        opened.append(_FlakyGuest())
        return opened[-1]

    _FlakyGuest.failures = suite.KVM_ATTEMPTS - 1
    [r] = suite.run_suite(["6.12"], [sc], opener=opener)
    assert r.match, r.differences
    assert len(opened) == suite.KVM_ATTEMPTS and all(g.closed for g in opened)
    _FlakyGuest.failures = suite.KVM_ATTEMPTS
    opened.clear()
    with pytest.raises(OSError):
        suite.run_suite(["6.12"], [sc], opener=opener)
    assert len(opened) == suite.KVM_ATTEMPTS and all(g.closed for g in opened)
    _FlakyGuest.failures = 1  # a scenario without a KVM guest is never retried
    other = load_scenario("x", '[[step]]\nop="mkdir"\nmemcg="/a"\n'
                               '[[step]]\nop="mkdir"\nmemcg="/a"\n')  # EEXIST
    opened.clear()
    with pytest.raises(OSError):
        suite.run_suite(["6.12"], [other], opener=opener)
    assert len(opened) == 1
    _FlakyGuest.failures = 0


def test_vm_touch_unsupported_on_real_kernels():
    """A KVM guest step on a non-simulated backend is an UnsupportedStep naming the step."""

    class FakeReal:
        kind = "qemu"

        def __init__(self):
            self.inner = sim()

        def __getattr__(self, name):
            return getattr(self.inner, name)

    sc = load_scenario("vm", '[[step]]\nop="mkdir"\nmemcg="/a"\n[[step]]\nop="spawn"\ntask="t"\n'
                             'memcg="/a"\n[[step]]\nop="mmap"\ntask="t"\nregion="r"\nsize="1M"\n'
                             '[[step]]\nop="vm_touch"\nregion="r"\n')
    with pytest.raises(UnsupportedStep, match="vm_touch"):
        run_scenario(FakeReal(), sc)
    run_scenario(sim(), sc)  # the model has KVM


def _trace(pages: int, results=("ok",)) -> Trace:
    return Trace([Snapshot("s", {"/a": [(3, pages, 0), (4, 0, 0)]}, {})],
                 [(1, "age", r) for r in results])


@given(st.integers(0, 1 << 20), st.integers(-300, 300))
def test_tolerance_boundary(pages, delta):
    """A count agrees exactly when it is within max(64 pages, 2 %) of the model's."""
    other = max(0, pages + delta)
    diffs = compare_traces(_trace(other), _trace(pages))
    assert (diffs == []) == (abs(other - pages) <= tolerance(max(pages, other)))


def test_tolerance_values():
    """64 pages up to 3200 pages, then 2 %."""
    assert [tolerance(n) for n in (0, 1, 3200, 3250, 10000)] == [64, 64, 64, 65, 200]


def test_differences_are_readable(monkeypatch):
    """Seqs, counts and command results each give one line naming both sides."""
    k = Trace([Snapshot("after", {"/a": [(3, 1000, 0), (4, 0, 0)]}, {"/a": {"pgsteal": 500}})],
              [(2, "age: + 2 0 3 1 1", "EINVAL")])
    m = Trace([Snapshot("after", {"/a": [(2, 0, 0), (3, 0, 0)]}, {"/a": {"pgsteal": 0}})],
              [(2, "age: + 2 0 3 1 1", "ok")])
    diffs = compare_traces(k, m)
    assert diffs == [
        "step 2 age: + 2 0 3 1 1: kernel EINVAL, model ok",
        "after /a: seqs kernel 3..4, model 2..3",
        "after /a: seq 3 anon: kernel 1000, model 0 (tolerance 64)",
        "after /a: memory.stat pgsteal: kernel 500, model 0 (tolerance 64)",
    ]
    r = ConformanceResult("memory_reclaim", "6.12", "v6.12", diffs)
    assert r.to_dict()["match"] is False and not r.known and "known" not in r.to_dict()
    monkeypatch.setitem(KNOWN_DIFFERENCES, ("memory_reclaim", "6.12"), "why")
    assert r.known == "why" and r.to_dict()["known"] == "why"
    assert ConformanceResult("x", "6.12", "v6.12").to_dict() == {
        "scenario": "x", "kernel": "6.12", "preset": "v6.12", "match": True, "differences": []}


@pytest.mark.parametrize("name, device", [("shmem_readahead", "sync"),
                                          ("anon_readahead", "ssd")])
@pytest.mark.parametrize("preset", ["v6.1", "v6.12"])
def test_readahead_scenarios_on_the_model(name, device, preset):
    """Strided swap-ins read one page each; in-order ones grow the readahead window, so
    2048 pages come back with far fewer major faults; an eviction takes them again."""
    sc = {s.name: s for s in builtin_scenarios()}[name]
    assert sc.swap == ("nullb" if device == "ssd" else "ram")
    k = SimKernel(preset, node_bytes=(2 << 30,), swap_device=device)
    snaps = {s.name: s for s in run_scenario(k, sc).snapshots}
    maj = {n: s.stat["/a"]["pgmajfault"] for n, s in snaps.items()}
    assert maj["swapped-out"] == 0
    assert maj["strided-reads"] == 256  # one page per fault: no readahead hits
    seq = maj["sequential-reads"] - maj["strided-reads"]
    assert 2048 // 9 <= seq <= 2048 // 7  # about one fault per 8-page window
    assert _pages(snaps["sequential-reads"])[0][0] == 256 + 2048
    if name == "anon_readahead":  # read faults leave the folios in the swap cache
        st = snaps["sequential-reads"].stat["/a"]
        assert st["swapcached"] == st["anon"] == (256 + 2048) * 4096
    assert _pages(snaps["evicted-again"])[0][0] == 0


def test_touch_with_a_stride_touches_one_page_per_stride():
    text = ('[[step]]\nop = "spawn"\ntask = "t"\nmemcg = "/"\n'
            '[[step]]\nop = "mmap"\ntask = "t"\nregion = "r"\nsize = "1M"\n'
            '[[step]]\nop = "touch"\nregion = "r"\nwrite = true\nstride = "64K"\n')
    k = sim()
    run_scenario(k, load_scenario("stride", text))
    assert k.stats["pgfault"] == 16
