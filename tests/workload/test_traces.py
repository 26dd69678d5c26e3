"""Trace files: oracleGeneral byte for byte, CSV, bad files, objects onto pages, `mglru replay`."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from mglru.cli import main
from mglru.workload.traces import (
    Trace,
    TraceError,
    read_csv,
    read_oracle_general,
    read_trace,
    to_pages,
    write_oracle_general,
)


def test_oracle_general_layout_byte_for_byte(tmp_path):
    path = str(tmp_path / "t.bin")
    write_oracle_general(path, [1, 1, 2], [7, 9, 7], [4096, 100, 5000])
    data = open(path, "rb").read()
    assert len(data) == 3 * 24
    # uint32 time, uint64 id, uint32 size, int64 next access (request index, -1 none)
    assert struct.unpack("<IQIq", data[:24]) == (1, 7, 4096, 2)
    assert struct.unpack("<IQIq", data[24:48]) == (1, 9, 100, -1)
    assert struct.unpack("<IQIq", data[48:]) == (2, 7, 5000, -1)
    tr = read_oracle_general(path)
    assert tr.time.tolist() == [1, 1, 2] and tr.obj_id.tolist() == [7, 9, 7]
    assert tr.size.tolist() == [4096, 100, 5000] and not tr.write.any()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([0, 3, 5, 2**64 - 1]), max_size=30))
def test_next_access_is_the_next_request_of_the_object(tmp_path_factory, ids):
    path = str(tmp_path_factory.mktemp("t") / "t.bin")
    n = len(ids)
    write_oracle_general(path, [0] * n, ids, [4096] * n)
    data = open(path, "rb").read()
    got = [struct.unpack_from("<IQIq", data, 24 * r)[3] for r in range(n)]
    want = [next((j for j in range(r + 1, n) if ids[j] == ids[r]), -1) for r in range(n)]
    assert got == want


def test_libcachesim_reads_our_files(tmp_path):
    lcs = pytest.importorskip("libcachesim")
    path = str(tmp_path / "t.oracleGeneral")
    write_oracle_general(path, [3, 4, 4], [11, 12, 11], [4096, 8192, 4096])
    reqs = [(r.clock_time, r.obj_id, r.obj_size)
            for r in lcs.TraceReader(path, lcs.TraceType.ORACLE_GENERAL_TRACE)]
    assert reqs == [(3, 11, 4096), (4, 12, 8192), (4, 11, 4096)]


@pytest.mark.parametrize("nbytes", [1, 23, 25, 47])
def test_truncated_oracle_general_names_the_offset(tmp_path, nbytes):
    path = tmp_path / "bad.bin"
    write_oracle_general(str(path), [0, 0], [1, 2], [1, 1])
    path.write_bytes(path.read_bytes()[:nbytes])
    off = nbytes // 24 * 24
    with pytest.raises(TraceError, match=f"truncated record at byte offset {off} "):
        read_oracle_general(str(path))


def test_empty_and_backwards_oracle_general(tmp_path):
    empty = tmp_path / "empty.bin"
    empty.write_bytes(b"")
    with pytest.raises(TraceError, match="byte offset 0"):
        read_oracle_general(str(empty))
    back = str(tmp_path / "back.bin")
    write_oracle_general(back, [5, 6, 4], [1, 2, 3], [1, 1, 1])
    with pytest.raises(TraceError, match="byte offset 48 "):
        read_oracle_general(back)


def test_csv_columns_any_order_and_ops(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("op,size,obj_id,time\nget,100,5,0\nset,9000,6,1\n\nGET,1,5,2\n")
    tr = read_csv(str(path))
    assert tr.obj_id.tolist() == [5, 6, 5] and tr.size.tolist() == [100, 9000, 1]
    assert tr.write.tolist() == [False, True, False] and tr.time.tolist() == [0, 1, 2]
    assert read_trace(str(path)).obj_id.tolist() == [5, 6, 5]


def test_csv_bad_line_names_its_offset(tmp_path):
    path = tmp_path / "t.csv"
    head, good = "time,obj_id,size\n", "0,1,4096\n"
    path.write_text(head + good + "1,xyz,4096\n")
    with pytest.raises(TraceError, match=f"byte offset {len(head) + len(good)}:"):
        read_csv(str(path))
    path.write_text("time,size\n0,1\n")
    with pytest.raises(TraceError, match="obj_id column"):
        read_csv(str(path))


def test_objects_get_contiguous_pages_in_first_appearance_order():
    tr = Trace(np.zeros(4, np.int64), np.array([9, 4, 9, 4], np.uint64),
               np.array([4096 * 2, 1, 4096 * 2, 1]), np.zeros(4, bool))
    pages, req, span = to_pages(tr)
    assert span == 3
    assert pages.tolist() == [0, 1, 2, 0, 1, 2] and req.tolist() == [0, 0, 1, 2, 2, 3]
    unit, ureq, uspan = to_pages(tr, unit=True)
    assert unit.tolist() == [0, 1, 0, 1] and ureq.tolist() == [0, 1, 2, 3] and uspan == 2


def _pages_by_sorting(trace, unit=False):
    """The mapping worked out with sorts (np.unique), as an independent reference."""
    uniq, first, inv = np.unique(trace.obj_id, return_index=True, return_inverse=True)
    rank = np.empty(len(uniq), np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(uniq))
    obj = rank[inv]
    if unit:
        return obj, np.arange(len(obj)), len(uniq)
    obj_size = np.zeros(len(uniq), np.int64)
    for r, o in enumerate(obj):  # the last size seen wins
        obj_size[o] = trace.size[r]
    npages = np.maximum(1, -(-obj_size // 4096))
    start = np.concatenate(([0], np.cumsum(npages)[:-1])).astype(np.int64)
    pages = [start[o] + p for o in obj for p in range(npages[o])]
    req = [r for r, o in enumerate(obj) for _ in range(npages[o])]
    return np.array(pages, np.int64), np.array(req, np.int64), int(npages.sum())


_ids = st.one_of(st.integers(0, 40), st.sampled_from([0, 1, 2**63, 2**64 - 1, 2**64 - 2]),
                 st.integers(0, 2**64 - 1))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(_ids, st.integers(0, 3 * 4096 + 1)), max_size=60), st.booleans())
def test_pages_match_the_sorting_reference(reqs, unit):
    """Object numbers in order of first appearance, each object's last size, its pages
    contiguous: the hash table's pass gives what sorting gives, ids 0 and 2**64-1 included."""
    ids = np.array([i for i, _ in reqs], np.uint64)
    tr = Trace(np.zeros(len(reqs), np.int64), ids, np.array([z for _, z in reqs], np.int64),
               np.zeros(len(reqs), bool))
    got, want = to_pages(tr, unit=unit), _pages_by_sorting(tr, unit)
    assert got[0].tolist() == want[0].tolist() and got[1].tolist() == want[1].tolist()
    assert got[2] == want[2]


@pytest.mark.parametrize("objects", [511, 512, 513, 5000])
def test_pages_when_the_object_table_grows(objects):
    """The table starts at 1 024 slots and doubles when half full: objects around that
    point and well past it keep their first-appearance numbers."""
    rng = np.random.default_rng(objects)
    ids = rng.integers(0, 2**63, objects, dtype=np.uint64)
    seq = np.concatenate([ids, ids[rng.permutation(objects)], ids[:3]])
    tr = Trace(np.zeros(len(seq), np.int64), seq, np.full(len(seq), 4096, np.int64),
               np.zeros(len(seq), bool))
    pages, req, span = to_pages(tr)
    assert span == objects
    assert pages[:objects].tolist() == list(range(objects))
    assert pages.tolist() == _pages_by_sorting(tr)[0].tolist()
    assert req.tolist() == list(range(len(seq)))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 9), st.booleans()), max_size=40), st.booleans())
def test_first_touch_writes(accesses, by_request):
    """An access writes when its request writes or it is its page's first touch."""
    from mglru.workload._trace_kernel import first_touch_writes

    pages = np.array([p for p, _ in accesses], np.int64)
    w = np.array([x for _, x in accesses], bool)
    seen, want = set(), []
    for p, x in accesses:
        want.append(int(x or p not in seen))
        seen.add(p)
    if by_request:  # each access its own request, reached through req
        req = np.arange(len(pages))[::-1].copy()
        got = first_touch_writes(pages, req, w[::-1].copy(), 10)
    else:
        got = first_touch_writes(pages, None, w, 10)
    assert got.tolist() == want


@pytest.mark.parametrize("values, runs", [([], 0), ([5], 1), ([5, 5], 1), ([1, 2], 2),
                                          ([0, 0, 1, 1, 1, 7], 3)])
def test_distinct_runs(values, runs):
    from mglru.workload._trace_kernel import distinct_runs

    assert distinct_runs(np.array(values, np.int64)) == runs


def _zipf_trace(path, n=3000, objects=600):
    from mglru.workload.generators import zipf

    write_oracle_general(str(path), np.arange(n) // 500, zipf(objects, n, seed=2) + 1,
                         np.full(n, 4096))


@pytest.mark.parametrize("vm", [False, True])
def test_replay_cli_json(tmp_path, vm):
    trace, out = tmp_path / "z.oracleGeneral", tmp_path / "r.json"
    _zipf_trace(trace)
    args = ["replay", str(trace), "--memory", "1M", "--json", str(out)] + (["--vm"] if vm else [])
    assert main(args) == 0
    r = json.loads(out.read_text())
    # the envelope every mglru JSON document carries, then the report's own keys
    assert r["schema"] == "mglru.replay/1" and r["configuration"]["memory_bytes"] == 1 << 20
    assert set(r) - {"mglru_version", "schema", "configuration"} == {
        "requests", "misses", "miss_ratio", "faults", "refaults", "evictions", "seconds",
        "requests_per_s", "read_seconds", "setup_seconds"}
    # the trace's reading and the set-up are timed apart from the replay's seconds
    assert r["read_seconds"] >= 0 and r["setup_seconds"] > 0 and r["seconds"] > 0
    objects = len(np.unique(read_oracle_general(str(trace)).obj_id))
    # every object misses once at least; 1 MiB (256 pages) cannot hold 600 of them
    assert r["requests"] == 3000 and objects < r["misses"] < 3000
    assert r["miss_ratio"] == r["misses"] / 3000
    assert r["evictions"] > 0 and r["refaults"] > 0
    if not vm:
        assert r["faults"] == r["misses"]


def test_replay_cli_compare(tmp_path, capsys):
    pytest.importorskip("libcachesim")
    trace, out = tmp_path / "z.oracleGeneral", tmp_path / "r.json"
    _zipf_trace(trace)
    assert main(["replay", str(trace), "--memory", "1M", "--compare", "lru,clock",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "lru" in text and "clock" in text
    r = json.loads(out.read_text())
    assert [c["algorithm"] for c in r["compare"]] == ["lru", "clock"]
    lru = r["compare"][0]
    # same trace, same capacity in pages: the miss ratios are of the same size
    assert 0.5 * lru["miss_ratio"] < r["miss_ratio"] < 2 * lru["miss_ratio"]


def test_replay_cli_bad_input(tmp_path, capsys):
    bad = tmp_path / "bad.oracleGeneral"
    bad.write_bytes(b"\0" * 30)
    assert main(["replay", str(bad), "--memory", "1M"]) != 0
    err = capsys.readouterr().err
    assert "byte offset 24" in err and "Traceback" not in err
    assert main(["replay", str(bad), "--memory", "lots"]) != 0
    assert main(["replay", str(bad), "--memory", "1M", "--compare", "opt"]) != 0
    assert "unknown algorithm" in capsys.readouterr().err


@pytest.mark.parametrize("vm", [False, True])
def test_replay_in_steps_is_one_replay(tmp_path, vm):
    """A replay that reports its progress runs in steps and ends where one run does."""
    from mglru.workload.replay import replay

    trace = tmp_path / "z.oracleGeneral"
    _zipf_trace(trace)
    tr = read_oracle_general(str(trace))
    seen = []
    stepped = replay(tr, 1 << 20, "v6.14", vm=vm, warm_up=False,
                     progress=(7, lambda done, n: seen.append((done, n))))
    whole = replay(tr, 1 << 20, "v6.14", vm=vm, warm_up=False)
    keys = ("requests", "misses", "faults", "refaults", "evictions")
    assert [stepped[key] for key in keys] == [whole[key] for key in keys]
    assert len(seen) == 7 and seen[-1] == (3000, 3000)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_replay_cli_shows_progress(tmp_path, monkeypatch, caplog):
    import logging

    monkeypatch.setattr("mglru.cli.replay._PROGRESS_HOST", 1000)
    trace = tmp_path / "z.oracleGeneral"
    _zipf_trace(trace)
    with caplog.at_level(logging.INFO, logger="mglru"):
        assert main(["replay", str(trace), "--memory", "1M"]) == 0
    lines = [r.getMessage() for r in caplog.records if "accesses" in r.getMessage()]
    assert len(lines) == 20 and "3,000 of 3,000 accesses" in lines[-1]


def test_replay_refuses_times_that_go_back():
    """A trace built in memory, not read from a file, still gets its times checked."""
    from mglru.workload.replay import replay

    tr = Trace(np.array([0, 2, 1], np.int64), np.array([1, 2, 3], np.uint64),
               np.full(3, 4096, np.int64), np.zeros(3, bool))
    with pytest.raises(ValueError, match="access 2 goes back in time"):
        replay(tr, 1 << 20, "v6.14", warm_up=False)


def test_engine_advance_checks_its_stop():
    from mglru import SimKernel
    from mglru.workload import Engine, host_stream

    k = SimKernel("v6.14")
    p = k.spawn()
    s = host_stream(p, p.mmap(1 << 20), np.arange(10), writes=True, rate=1e6)
    eng = Engine(k)
    eng.advance(s, 4)
    assert s.pos == 4
    for bad in (3, 11):
        with pytest.raises(ValueError, match="stop must be in"):
            eng.advance(s, bad)
    eng.advance(s, 10)
    assert s.pos == 10 and s.faults == 10
