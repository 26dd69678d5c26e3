"""Fuzz of /sys/kernel/debug/lru_gen writes (spec §5.4, §8.4; §9 items 31, 32, 34).

Buffers mix well-formed commands, near misses (bad ids, nodes, seqs,
swappiness tokens, trailing garbage, missing fields) and random text, joined
by every separator. `strategies.WriteOracle` predicts, independently of the
model's parser, which command fails first and with which errno. The kernel
must return that errno, and its state must equal a twin kernel's to which
only the commands before the failing one were written, one per write (the
kernel keeps earlier commands' effects; a bad command changes nothing). A
fully valid write returns its byte count.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st
from kernel_checks import CGROOT, LRU_GEN, age, check_invariants, eviction_available, snapshot
from strategies import WriteOracle, lru_gen_writes

from mglru import SimKernel

PAGE = 4096
PRESETS = ("v6.10", "v6.14", "v6.16")


def setup_kernel(preset: str) -> SimKernel:
    """memcgs 1 (/), 2 (/a), 3 (/a/b) on two nodes, some pages, lruvec (2, 0) aged once."""
    k = SimKernel(preset, node_bytes=(64 << 20, 64 << 20), debug=True)
    k.mkdir(CGROOT + "/a")
    k.mkdir(CGROOT + "/a/b")
    p = k.spawn(memcg="/a", node=0)
    a = p.mmap(64 * PAGE)
    p.access(a, 64 * PAGE, write=True)
    q = k.spawn(memcg="/a/b", node=1)
    b = q.mmap(32 * PAGE)
    q.access(b, 32 * PAGE, write=True)
    q.read(k.open_file("f", 16 * PAGE), 0, 16 * PAGE)
    age(k, 2, 0)
    k.tick(10)
    return k


def oracle_for(k: SimKernel) -> WriteOracle:
    max_seq = {(lv.memcg.id, lv.nid): lv.max_seq for lv in k.iter_lruvecs()}
    assert all(lv.max_seq - lv.min_seq[t] == 3 for lv in k.iter_lruvecs() for t in (0, 1))
    return WriteOracle(max_seq=max_seq, nr_nodes=2,
                       swappiness_max_token=k.cfg.swappiness_max_token,
                       aging_rc_eexist=k.cfg.aging_rc_eexist, eviction=eviction_available(),
                       memcg_ids=frozenset(m.id for m in k.memcgs.root.iter_preorder()))


@pytest.mark.parametrize("preset", PRESETS)
@settings(max_examples=100)
@given(data=st.data())
def test_fuzz_lru_gen_writes(preset: str, data) -> None:
    """Every rejected write fails with the predicted errno and leaves exactly the
    effects of the commands before the failing one; a valid write returns len."""
    k = setup_kernel(preset)
    oracle = oracle_for(k)
    buf, pieces, failed, err = data.draw(lru_gen_writes(oracle), label="write")
    try:
        n = k.write(LRU_GEN, buf)
    except OSError as e:
        assert failed is not None, f"rejected with errno {e.errno}, expected success"
        assert e.errno == err, f"piece {pieces[failed]!r}: errno {e.errno}, expected {err}"
    else:
        assert failed is None, f"accepted; expected errno {err} at {pieces[failed]!r}"
        assert n == len(buf.encode())
    twin = setup_kernel(preset)
    for piece in pieces[: len(pieces) if failed is None else failed]:
        assert twin.write(LRU_GEN, piece) == len(piece)
    assert snapshot(k) == snapshot(twin)
    for (memcg_id, nid), max_seq in oracle.max_seq.items():
        assert k.lruvec(memcg_id, nid).max_seq == max_seq
    check_invariants(k)
