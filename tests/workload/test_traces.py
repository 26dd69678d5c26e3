"""Trace files: oracleGeneral byte for byte, CSV, bad files, objects onto pages, `mglru replay`."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

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
        "requests_per_s"}
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
