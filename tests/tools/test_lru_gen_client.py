"""The lru_gen client over the simulated kernel: lookups, aging and eviction commands."""

from __future__ import annotations

import errno

import pytest
from lru_gen_fixtures import RecordingKernel, two_node_kernel

from mglru import SimKernel
from mglru.tools.lru_gen import (
    CommandError,
    MemcgNotFound,
    age_memcg,
    aging_command,
    evict_memcg,
    eviction_command,
    lru_gen_do_aging,
    read_memcg_stats,
)

LRU_GEN = "/sys/kernel/debug/lru_gen"


def test_memcg_lookup_by_id_path_and_name(kernel2):
    """Ids, paths and lru_gen_util names ("a/b" = "/a/b") find the same memcg."""
    b = kernel2.memcg("/a/b")
    for ref in (b.id, "/a/b", "a/b"):
        assert read_memcg_stats(kernel2, ref).memcg_id == b.id
    assert read_memcg_stats(kernel2, "/").memcg_id == 1


def test_unknown_memcg_lists_what_is_there(kernel2):
    """The error names the memcg asked for and the ones lru_gen lists."""
    with pytest.raises(MemcgNotFound) as info:
        read_memcg_stats(kernel2, "access_tracking_perf_test")
    assert "'access_tracking_perf_test'" in str(info.value)
    assert "1 /, 2 /a, 3 /a/b" in str(info.value)
    with pytest.raises(MemcgNotFound, match="no memcg id 9"):
        read_memcg_stats(kernel2, 9)


def test_checklist_41_do_aging_writes_one_command_per_node(kernel2):
    """41: `+ <id> <node> <max listed gen> 1 1` per node, each in its own write."""
    k = RecordingKernel(kernel2)
    a = kernel2.memcg("/a")
    before = [kernel2.lruvec(a, nid).max_seq for nid in (0, 1)]
    after = lru_gen_do_aging(k, "a")
    assert k.writes == [(LRU_GEN, f"+ {a.id} 0 {before[0]} 1 1\n"),
                        (LRU_GEN, f"+ {a.id} 1 {before[1]} 1 1\n")]
    assert [n.max_seq for n in after.nodes] == [s + 1 for s in before]
    # the pages written before aging were young: they moved into the aged max_seq
    assert after.nr_pages(before[0]) == 256 + 512


def test_checklist_41_do_aging_fails_on_a_write_error():
    """41: a rejected command is an error that keeps the kernel's errno and names the command.

    Before v6.14, `+` without force_scan on MAX_NR_GENS generations is -ERANGE.
    """
    k = SimKernel("v6.10", node_bytes=(64 << 20,))
    assert len(read_memcg_stats(k, "/").nodes[0].gens) == 4
    with pytest.raises(CommandError) as info:
        lru_gen_do_aging(k, "/", force_scan=False)
    e = info.value
    assert e.errno == errno.ERANGE and e.command == "+ 1 0 3 1 0"
    assert str(e).startswith(f"{LRU_GEN}: command '+ 1 0 3 1 0' failed: ")
    assert "(ERANGE)" in str(e) and "MAX_NR_GENS" in str(e)


def test_aging_a_seq_above_max_seq_is_einval():
    """A stale or wrong seq comes back as EINVAL with the command in the message."""
    from mglru.tools.lru_gen import run_command

    k = SimKernel("seed-v4", node_bytes=(64 << 20,))
    with pytest.raises(CommandError) as info:
        run_command(k, aging_command(1, 0, 99))
    assert info.value.errno == errno.EINVAL
    assert "'+ 1 0 99 1 1'" in str(info.value) and "seq above max_seq" in str(info.value)


def test_age_memcg_returns_commands_and_new_stats():
    """The CLI's building block: the commands written and the stats read afterwards."""
    k = two_node_kernel("v6.14")
    commands, after = age_memcg(k, 2, swappiness=60, force_scan=True)
    assert commands == ["+ 2 0 3 60 1\n", "+ 2 1 3 60 1\n"]
    assert [n.max_seq for n in after.nodes] == [4, 4]


def test_swappiness_max_is_passed_through_to_the_kernel():
    """`max` is the kernel's to accept (v6.16+) or reject (EINVAL before)."""
    commands, after = age_memcg(two_node_kernel("v6.16"), "/a", swappiness="max")
    assert commands[0] == "+ 2 0 3 max 1\n" and after.node(0).max_seq == 4
    with pytest.raises(CommandError) as info:
        age_memcg(two_node_kernel("v6.14"), "/a", swappiness="max")
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize(("args", "expected"), [
    ((2, 0, 5), "- 2 0 5\n"),
    ((2, 1, 5, 0), "- 2 1 5 0\n"),
    ((2, 1, 5, "max", 4096), "- 2 1 5 max 4096\n"),
])
def test_eviction_command_format(args, expected):
    """`- memcg node seq [swappiness [nr_to_reclaim]]` (spec §5.4)."""
    assert eviction_command(*args) == expected


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"nr_to_reclaim": 10}, "needs swappiness"),
    ({"swappiness": -1}, "non-negative integer or 'max', got -1"),
    ({"swappiness": "min"}, "got 'min'"),
    ({"swappiness": 0, "nr_to_reclaim": -5}, "non-negative, got -5"),
])
def test_eviction_command_rejects_bad_fields(kwargs, message):
    """Positional fields cannot be skipped; values are checked before writing."""
    with pytest.raises(ValueError, match=message):
        eviction_command(2, 0, 5, **kwargs)


def test_evict_defaults_to_each_nodes_oldest_seq(kernel2):
    """Without --seq each node evicts up to its oldest listed seq, in its own write."""
    k = RecordingKernel(kernel2)
    b = kernel2.memcg("/a/b")
    mins = [min(kernel2.lruvec(b, nid).min_seq) for nid in (0, 1)]
    try:
        evict_memcg(k, "/a/b")
    except CommandError as e:  # the simulated kernel may not model eviction yet
        assert e.errno == errno.EINVAL
    assert k.writes[0] == (LRU_GEN, f"- {b.id} 0 {mins[0]}\n")


def test_evict_too_young_names_the_limit(kernel2):
    """seq + 2 > max_seq is EINVAL; the message says the largest evictable seq."""
    k = RecordingKernel(kernel2)
    a = kernel2.memcg("/a")
    max_seq = kernel2.lruvec(a, 1).max_seq
    with pytest.raises(CommandError) as info:
        evict_memcg(k, "/a", seq=max_seq, nid=1, swappiness=0, nr_to_reclaim=10)
    assert k.writes == [(LRU_GEN, f"- {a.id} 1 {max_seq} 0 10\n")]
    assert info.value.errno == errno.EINVAL
    assert f"eviction needs seq <= max_seq - 2 = {max_seq - 2} on node 1" in str(info.value)


def test_evict_unknown_node(kernel2):
    """A node the memcg does not list is a KeyError naming the nodes it has."""
    with pytest.raises(KeyError, match=r"has no node 3; nodes: \[0, 1\]"):
        evict_memcg(kernel2, "/a", nid=3)
