"""Sockets, placement and cross-socket costs. Mirrors mglru/timing/topology.py."""

from __future__ import annotations

import pytest

from mglru.timing import WRITE, TimingSim, acquire, cost, touch, zero_costs
from mglru.timing.streams import LineStreams
from mglru.timing.topology import (
    NUMA_IMBALANCE_MIN,
    ONE_SOCKET,
    SEED_HOST,
    Topology,
    handoff_ns,
    transfer_ns,
)


def test_place_keeps_a_small_imbalance_on_node_0_then_spreads():
    """Up to NUMA_IMBALANCE_MIN (2) threads stay on node 0; more alternate between sockets."""
    t = Topology(2, 4)
    assert NUMA_IMBALANCE_MIN == 2
    assert t.place(1) == (0,)
    assert t.place(2) == (0, 0)
    assert t.place(3) == (0, 1, 0)
    assert t.place(8) == (0, 1, 0, 1, 0, 1, 0, 1)
    assert ONE_SOCKET.place(5) == (0,) * 5


def test_place_rejects_more_threads_than_cpus():
    """Placement fails, naming both numbers, when the threads do not fit."""
    with pytest.raises(ValueError, match="9 busy threads do not fit 8 CPUs"):
        Topology(2, 4).place(9)


def test_seed_host_runs_112_vcpus_and_the_aging_thread():
    """The cover letter's host has room for 112 vCPUs plus its aging thread, on two sockets."""
    assert SEED_HOST.sockets == 2 and SEED_HOST.cpus > 112
    nodes = SEED_HOST.place(112)
    assert nodes.count(0) == nodes.count(1) == 56


def test_transfer_and_handoff_scale_with_the_remote_share():
    """A transfer costs local + share x (remote - local); a hand-off scales by the same ratio."""
    c = zero_costs(cacheline_transfer=50, cacheline_transfer_remote=130, lock_handoff=200)
    assert transfer_ns(c, 0.0) == 50
    assert transfer_ns(c, 0.5) == 90
    assert transfer_ns(c, 1.0) == 130
    assert handoff_ns(c, 0.0) == 200
    assert handoff_ns(c, 0.5) == pytest.approx(200 * 90 / 50)
    assert handoff_ns(c, 1.0) == pytest.approx(520)


def test_a_line_transfer_from_another_socket_costs_the_remote_transfer():
    """Exact mode: a line moves at `cacheline_transfer` on a socket, at the remote cost across."""
    sim = TimingSim(cpus=3, costs=zero_costs(atomic=1, cacheline_transfer=10,
                                             cacheline_transfer_remote=30))
    line = sim.line("memcg_counter")
    log = []

    def toucher(name, start):
        yield cost(start)
        yield touch(line)
        log.append((name, sim.now))

    sim.spawn("a", toucher("a", 0), node=0)
    sim.spawn("b", toucher("b", 100), node=0)
    sim.spawn("c", toucher("c", 200), node=1)
    sim.run()
    # a: cold line 0..1; b on a's socket: 100..110; c from the other socket: 200..230
    assert log == [("a", 1), ("b", 110), ("c", 230)]
    assert line.transfers == 2


def test_a_lock_handed_to_another_socket_pays_the_remote_hand_off():
    """Exact mode: a waiter on another socket enters a scaled hand-off after the release."""
    costs = zero_costs(cacheline_transfer=10, cacheline_transfer_remote=30, lock_handoff=100)
    times = {}
    for waiter_node in (0, 1):
        sim = TimingSim(cpus=2, costs=costs)
        lock = sim.spinlock("zone_lock")
        got = []

        def proc(name, start, hold, sim=sim, lock=lock, got=got):
            yield cost(start)
            with (yield acquire(lock, WRITE)):
                got.append((name, sim.now))
                yield cost(hold)

        sim.spawn("a", proc("a", 0, 1000), node=0)
        sim.spawn("b", proc("b", 10, 0), node=waiter_node)
        sim.run()
        times[waiter_node] = dict(got)["b"]
    # b's request at 10 took the line; a's release at 1000 takes it back (10, or 30
    # across sockets), b's grant moves it again (10 or 30), then the hand-off
    # (100, or 100 x 30 / 10 across sockets)
    assert times == {0: 1000 + 10 + 10 + 100, 1: 1000 + 30 + 30 + 300}


def test_line_streams_remote_share_counts_other_nodes_rates():
    """The remote share is the others' rate from other nodes over all the others' rate."""
    sim = TimingSim(cpus=4, costs=zero_costs())
    a, b, c = (sim.spawn(n, iter(()), node=k) for n, k in (("a", 0), ("b", 0), ("c", 1)))
    ls = LineStreams()
    ls.put(a, 1.0, 5.0, 10)
    ls.put(b, 2.0, 5.0, 10)
    ls.put(c, 3.0, 5.0, 10)
    assert ls.remote_share(a) == pytest.approx(3.0 / 5.0)   # b local, c remote
    assert ls.remote_share(c) == pytest.approx(1.0)         # a and b remote
    ls.drop(c)
    assert ls.remote_share(a) == 0.0


@pytest.mark.parametrize("n, expected", [(2, 2 * 300 + 200), (8, 8 * 300 + 200)])
def test_the_drain_per_write_acquisition_grows_with_the_readers(n, expected):
    """qrwlock writer: readers that queued behind its previous hold enter at its release and
    pass the wait_lock on one by one (kernel/locking/qrwlock.c: queued_read_lock_slowpath);
    when every reader queued (rate x active >= n) and the writer comes straight back (u = 0),
    it waits for all n hand-offs and the last reader's hold: n x convoy + hold."""
    from mglru.timing.waits import writer_wait

    lam_per_reader, hold, convoy = 1e-3, 200.0, 300.0
    env = ((n, n * lam_per_reader, hold), None, None)
    wait, p_wait, _ = writer_wait(env, 0.0, 2000.0, convoy)
    assert wait == pytest.approx(expected)
    assert p_wait == 1.0
