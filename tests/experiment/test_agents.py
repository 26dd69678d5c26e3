"""Proactive-reclaim agents evict what their rule says, through the kernel's files only."""

from __future__ import annotations

import errno

import pytest

from mglru import SimKernel
from mglru.experiment.agents import AgeThreshold, NoAgent, RefaultFeedback, make_agent
from mglru.experiment.metrics import read_counters
from mglru.mm.page import PAGE_SIZE
from mglru.tools.lru_gen import read_memcg_stats

STAT = "/sys/fs/cgroup/a/memory.stat"


def _age(k):
    st = read_memcg_stats(k, "/a")
    k.write("/sys/kernel/debug/lru_gen", f"+ {st.memcg_id} 0 {st.nodes[0].max_seq} 100 1\n")


def _three_generations(preset):
    """A at t=0 (10 pages), B at t=1000 (20), C at t=2000 (10), aged after each; now 2500 ms.

    Generations then: A in one born at 0, B in one born at 0 (it was max_seq
    when B was walked at 1000), C in one born at 1000, an empty one born at 2000.
    """
    k = SimKernel(preset, node_bytes=(64 << 20,), debug=True)
    k.mkdir("/sys/fs/cgroup/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(40 * PAGE_SIZE)
    for first, n, wait in ((0, 10, 1000), (10, 20, 1000), (30, 10, 500)):
        p.access(a + first * PAGE_SIZE, n * PAGE_SIZE, write=True)
        _age(k)
        k.tick(wait)
    gens = [(g.age_ms, g.nr_pages) for g in read_memcg_stats(k, "/a").nodes[0].gens]
    assert gens == [(2500, 10), (2500, 20), (1500, 10), (500, 0)]
    return k


def _current_pages(k):
    return int(k.read("/sys/fs/cgroup/a/memory.current")) // PAGE_SIZE


@pytest.mark.parametrize("preset", ["v6.10", "v6.12"])
@pytest.mark.parametrize(("threshold", "evicted"),
                         [(2499, 30), (2500, 0), (1499, 40), (1500, 30)])
def test_age_threshold_evicts_generations_older_than_the_threshold(preset, threshold, evicted):
    """The agent's aging adds an empty generation and folds the oldest into the next
    (4 = MAX_NR_GENS), leaving A+B aged 2500, C aged 1500, two younger empty ones;
    generations strictly older than the threshold go, at most up to max_seq - 2."""
    k = _three_generations(preset)
    agent = AgeThreshold(["/a"], threshold_ms=threshold)
    agent(k, k.clock_ns)
    assert _current_pages(k) == 40 - evicted
    assert read_counters(k.read(STAT))["pgsteal"] == evicted
    assert sum(e[4] for e in agent.evictions) == evicted
    assert not agent.errors


def test_age_threshold_through_memory_reclaim_takes_the_same_number_of_pages():
    """With evict="memory.reclaim" the pages of the old generations are written as bytes;
    the kernel reclaims at least that (it works in SWAP_CLUSTER_MAX batches, so here all 40)."""
    k = _three_generations("v6.12")
    agent = AgeThreshold(["/a"], threshold_ms=2000, evict="memory.reclaim")
    agent(k, k.clock_ns)
    assert agent.evictions[0][4] == 30
    assert _current_pages(k) <= 10


def test_age_threshold_survives_eexist_and_counts_it(monkeypatch):
    """A `+` the kernel refuses with EEXIST (max_seq moved on) is counted, not raised."""
    k = _three_generations("v6.12")
    real = k.write

    def write(path, text):
        if text.startswith("+"):
            raise OSError(errno.EEXIST, "File exists", path)
        return real(path, text)

    monkeypatch.setattr(k, "write", write)
    agent = AgeThreshold(["/a"], threshold_ms=2000)
    agent(k, k.clock_ns)
    assert agent.errors == {"EEXIST": 1}


def test_age_threshold_raises_on_einval(monkeypatch):
    """EINVAL means the agent's own command is wrong: it is not swallowed."""
    k = _three_generations("v6.12")
    real = k.write

    def write(path, text):
        if text.startswith("-"):
            raise OSError(errno.EINVAL, "Invalid argument", path)
        return real(path, text)

    monkeypatch.setattr(k, "write", write)
    with pytest.raises(OSError) as e:
        AgeThreshold(["/a"], threshold_ms=2000)(k, k.clock_ns)
    assert e.value.errno == errno.EINVAL


def _refault_setup():
    k = SimKernel("v6.12", node_bytes=(64 << 20,), debug=True)
    k.mkdir("/sys/fs/cgroup/a")
    p = k.spawn(memcg="/a")
    a = p.mmap(64 * PAGE_SIZE)
    p.access(a, 64 * PAGE_SIZE, write=True)
    return k, p, a


def _run_feedback(target):
    """Three calls 1 s apart; before each later call every page is touched again,
    so the pages the previous step evicted refault."""
    k, p, a = _refault_setup()
    agent = RefaultFeedback(["/a"], step_mib=32 * PAGE_SIZE / (1 << 20),
                            target_refaults_per_s=target)
    for _ in range(3):
        k.tick(1000)
        agent(k, k.clock_ns)
        p.access(a, 64 * PAGE_SIZE, write=True)
    return k, agent


def test_refault_feedback_steps_while_at_or_under_the_target():
    """Evicted pages refault within the next second: rate = pages of the last step / s."""
    k, probe = _run_feedback(1e9)
    steps = [h[3] for h in probe.history]
    assert steps == [True, True, True]
    first = probe.history[1][2]  # refaults/s seen at the second call
    assert first > 0
    # at exactly that rate it still steps; just under it, it backs off once
    _, agent = _run_feedback(first)
    assert [h[3] for h in agent.history] == [True, True, True]
    _, agent = _run_feedback(first - 0.01)
    assert [h[3] for h in agent.history] == [True, False, True]
    assert agent.history[2][2] == 0.0  # nothing was evicted, nothing refaulted


def test_refault_feedback_counts_eagain_and_goes_on():
    """memory.reclaim of an empty memcg fails with EAGAIN; the agent keeps running."""
    k = SimKernel("v6.12", node_bytes=(64 << 20,), debug=True)
    k.mkdir("/sys/fs/cgroup/a")
    agent = RefaultFeedback(["/a"], step_mib=1, target_refaults_per_s=10)
    agent(k, 0)
    k.tick(100)
    agent(k, k.clock_ns)
    assert agent.errors == {"EAGAIN": 2}


def test_no_agent_writes_nothing():
    """NoAgent leaves the kernel alone."""
    k, _p, _a = _refault_setup()
    before = k.read(STAT)
    NoAgent()(k, 0)
    assert k.read(STAT) == before


def test_make_agent_rejects_unknown_names_and_parameters():
    """Typos fail with the valid choices listed."""
    with pytest.raises(ValueError, match="valid agents: none, age-threshold, refault-feedback"):
        make_agent("age-treshold", ["/a"])
    with pytest.raises(ValueError, match="valid: threshold_ms"):
        make_agent("age-threshold", ["/a"], step_mib=1)
    agent = make_agent("refault-feedback", ["/a"], step_mib=2, target_refaults_per_s=5)
    assert isinstance(agent, RefaultFeedback) and agent.step_bytes == 2 << 20


@pytest.mark.parametrize(("threshold", "evicted", "max_seq", "errors"),
                         [(1000, 30, 7, {}), (2499, 30, 7, {}), (2500, 0, 6, {"ERANGE": 1})])
def test_age_threshold_without_force_scan_evicts_before_aging(threshold, evicted, max_seq,
                                                              errors):
    """Without force_scan the agent evicts first (max_seq is then 6, so at most seq 4:
    A+B), then ages into the room that left; with nothing old enough there is no room
    and run_aging() refuses with ERANGE (MAX_NR_GENS generations), which is counted."""
    k = _three_generations("v6.12")
    agent = AgeThreshold(["/a"], threshold_ms=threshold, force_scan=False)
    agent(k, k.clock_ns)
    assert _current_pages(k) == 40 - evicted
    assert read_memcg_stats(k, "/a").nodes[0].max_seq == max_seq
    assert agent.errors == errors
