"""`mglru conformance` on the real kernels: the JSON records, a failing step, the new scenarios."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import qemu_children, require_kernel

from mglru.cli import cli
from mglru.conformance import builtin_scenarios, run_suite

pytestmark = pytest.mark.qemu


def test_aging_conforms_on_6_12(tmp_path):
    """The aging scenario matches v6.12 within the tolerance; the JSON has the stated keys."""
    require_kernel("6.12")
    before = qemu_children()
    out = tmp_path / "c.json"
    r = CliRunner().invoke(cli, ["conformance", "--kernel", "6.12", "--scenario", "aging",
                                 "--json", str(out)])
    records = json.loads(out.read_text())
    assert [(x["scenario"], x["kernel"], x["preset"]) for x in records] == [
        ("aging", "6.12", "v6.12")]
    assert set(records[0]) >= {"scenario", "kernel", "preset", "match", "differences"}
    assert records[0]["match"] is True, records[0]["differences"]
    assert r.exit_code == 0
    assert "aging            6.12    v6.12   true   0" in r.stdout
    assert qemu_children() == before


def test_failing_step_is_one_line(tmp_path):
    """A step that fails in the guest (mkdir of an existing memcg): one error line with the
    guest's errno, exit 1, no QEMU left."""
    require_kernel("6.12")
    before = qemu_children()
    f = tmp_path / "twice.toml"
    f.write_text('[[step]]\nop="mkdir"\nmemcg="/a"\n[[step]]\nop="mkdir"\nmemcg="/a"\n')
    r = CliRunner().invoke(cli, ["conformance", "--kernel", "6.12", "--scenario", str(f)])
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error")]
    assert errors == ["Error: /sys/fs/cgroup/a-twice: File exists"]
    assert "Traceback" not in r.output
    assert qemu_children() == before


#: the scenarios beyond the first nine: hierarchy, file, shmem, min_ttl, a KVM guest,
#: shmem swap-ins through the swap cache with readahead
NEW_SCENARIOS = ("memcg_hierarchy", "file_pages", "shmem", "min_ttl", "kvm_guest",
                 "shmem_readahead")


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_new_scenarios_conform(kernel):
    """Each new scenario matches its preset on the real kernel (one guest per kernel; a
    KVM guest that fails under TCG is retried on a new guest inside run_suite)."""
    require_kernel(kernel)
    before = qemu_children()
    scs = [s for s in builtin_scenarios() if s.name in NEW_SCENARIOS]
    assert len(scs) == len(NEW_SCENARIOS)
    results = run_suite([kernel], scs)
    assert {r.scenario: r.differences for r in results} == {n: [] for n in NEW_SCENARIOS}
    assert qemu_children() == before


@pytest.mark.parametrize("kernel", ["6.1", "6.12"])
def test_anon_readahead_on_null_blk(kernel):
    """A guest swapping to null_blk: anonymous swap-ins go through the swap cache. The
    strided and the in-order reads' major faults agree with the model; what differs is
    only the written-back remainder the plugged eviction leaves (a known difference)."""
    require_kernel(kernel)
    before = qemu_children()
    scs = [s for s in builtin_scenarios() if s.name == "anon_readahead"]
    [r] = run_suite([kernel], scs)
    assert not r.match and r.known
    assert not [d for d in r.differences if "pgmajfault" in d and "strided" in d], r.differences
    assert qemu_children() == before
