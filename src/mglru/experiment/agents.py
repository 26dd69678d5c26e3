"""Proactive-reclaim agents: user-space programs that age and reclaim through kernel files.

Kernel ABI: mm/vmscan.c: lru_gen_seq_write() (`+`/`-` commands of
/sys/kernel/debug/lru_gen), mm/memcontrol.c: memory_reclaim() (memory.reclaim),
memory_stat_show() (memory.stat); v6.10-v6.16.

An agent is called as `agent(k, now_ns)`, the workload Engine's callback
signature, and touches the kernel only through the `Kernel` protocol
(`read`/`write`), so the same agent runs on `SimKernel` and on a real host.

- `AgeThreshold` is how MGLRU's working-set estimation is used for VMs: every
  interval it ages each memcg (`+ memcg_id nid max_seq swappiness force_scan`,
  max_seq read from lru_gen first) and then evicts the generations whose age
  is above a threshold (`- memcg_id nid seq [swappiness [nr_to_reclaim]]`, or
  their page count written to memory.reclaim).
- `RefaultFeedback` writes memory.reclaim in small steps while the refault
  rate (memory.stat workingset_refault_anon + workingset_refault_file per
  second) stays at or below a target, and skips the step otherwise.
- `NoAgent` does nothing.

Errors are handled as a long-running agent would: a write the kernel refuses
for a passing reason (EAGAIN: memory.reclaim found too little; EEXIST/ERANGE:
no new generation this time; EINTR, EBUSY) is counted in `errors` by errno
name and the agent goes on; any other error (EINVAL: a bad command, ENOENT: a
memcg gone) is a bug in the agent's set-up and is raised.

Future optimizations:
1. read lru_gen once per interval for all memcgs instead of once per memcg.
"""

from __future__ import annotations

import errno
from collections import Counter
from typing import Protocol

from mglru.abi.kernel import DEFAULT_CGROUP_ROOT, Kernel
from mglru.mm.page import PAGE_SIZE
from mglru.tools.lru_gen import (
    CommandError,
    aging_command,
    eviction_command,
    read_memcg_stats,
    run_command,
)

__all__ = ["Agent", "NoAgent", "AgeThreshold", "RefaultFeedback", "AGENTS", "make_agent",
           "TRANSIENT_ERRNOS"]

#: errnos an agent counts and survives (see the module docstring)
TRANSIENT_ERRNOS = (errno.EAGAIN, errno.EEXIST, errno.ERANGE, errno.EINTR, errno.EBUSY)


class Agent(Protocol):
    """A periodic user-space agent: `agent(k, now_ns)` every interval."""

    #: the name `make_agent` knows it by
    name: str
    #: interval between calls in simulated ms (the Engine's `every_ms`)
    interval_ms: float
    #: errno name -> writes refused for a passing reason
    errors: Counter

    def __call__(self, k: Kernel, now_ns: int) -> None:
        """Act once at simulated time `now_ns`."""
        ...


def _cgroup_file(memcg: str, name: str) -> str:
    return f"{DEFAULT_CGROUP_ROOT}/{memcg.strip('/')}/{name}"


def _note(errors: Counter, e: OSError) -> None:
    """Count a transient errno, re-raise anything else."""
    if e.errno not in TRANSIENT_ERRNOS:
        raise e
    errors[errno.errorcode[e.errno]] += 1


class NoAgent:
    """Does nothing (the baseline: only the kernel's own reclaim runs)."""

    name = "none"

    def __init__(self, interval_ms: float = 1000.0) -> None:
        self.interval_ms = interval_ms
        self.errors: Counter = Counter()

    def __call__(self, k: Kernel, now_ns: int) -> None:
        """Nothing to do."""


class AgeThreshold:
    """Age every interval, then evict the generations older than a threshold.

    Per memcg and node listed in lru_gen: write `+ id nid max_seq swappiness
    force_scan` with max_seq as just read (mm/vmscan.c: run_aging()), read
    lru_gen again and evict up to the youngest generation whose age_ms is
    strictly above `threshold_ms` (`- id nid seq swappiness`: run_eviction()
    evicts min_seq..seq). The kernel refuses `seq + 2 > max_seq` (the two
    youngest generations are not evictable), so the target is capped there.
    With `evict="memory.reclaim"` the pages of those generations are written
    to memory.reclaim instead (the kernel then picks the coldest pages itself).

    Args:
        memcgs: cgroup paths below the cgroup root ("/vm0").
        threshold_ms: generations older than this are evicted.
        interval_ms: the call period (informational; the Engine calls).
        swappiness: of both commands (0 ages and evicts file pages only).
        force_scan: aging walks every mm and every PTE table (lru_gen_util's
            choice). Without it the walk takes only mms used since the last walk
            and the PTE tables the Bloom filters kept, and run_aging() refuses to
            age with MAX_NR_GENS generations (ERANGE, before v6.14): the agent
            then evicts first, empty old generations included, to make room.
        evict: "debugfs" or "memory.reclaim".
    """

    name = "age-threshold"

    def __init__(self, memcgs: list[str], *, threshold_ms: float = 2000.0,
                 interval_ms: float = 1000.0, swappiness: int = 100, force_scan: bool = True,
                 evict: str = "debugfs") -> None:
        if evict not in ("debugfs", "memory.reclaim"):
            raise ValueError(f"evict must be 'debugfs' or 'memory.reclaim', got {evict!r}")
        if threshold_ms < 0:
            raise ValueError(f"threshold_ms must be >= 0, got {threshold_ms}")
        self.memcgs = list(memcgs)
        self.threshold_ms = threshold_ms
        self.interval_ms = interval_ms
        self.swappiness = swappiness
        self.force_scan = force_scan
        self.evict = evict
        self.errors: Counter = Counter()
        #: (now_ns, memcg, nid, evicted up to seq, pages of those generations) per eviction
        self.evictions: list[tuple[int, str, int, int, int]] = []

    def __call__(self, k: Kernel, now_ns: int) -> None:
        """Age, then evict the old generations of every memcg (evict first without force_scan)."""
        for memcg in self.memcgs:
            if self.force_scan:
                self._age(k, memcg)
                self._evict(k, memcg, now_ns)
            else:
                self._evict(k, memcg, now_ns)
                self._age(k, memcg)

    def _age(self, k: Kernel, memcg: str) -> None:
        stats = read_memcg_stats(k, memcg)
        for node in stats.nodes:
            if node.max_seq is None:
                continue
            cmd = aging_command(stats.memcg_id, node.nid, node.max_seq, self.swappiness,
                                self.force_scan)
            try:
                run_command(k, cmd)
            except CommandError as e:
                _note(self.errors, e)

    def _evict(self, k: Kernel, memcg: str, now_ns: int) -> None:
        stats = read_memcg_stats(k, memcg)
        for node in stats.nodes:
            old = [g for g in node.gens if g.age_ms > self.threshold_ms]
            if not old or node.max_seq is None:
                continue
            seq = min(old[-1].seq, node.max_seq - 2)
            pages = sum(g.nr_pages for g in node.gens if g.seq <= seq)
            if seq < node.gens[0].seq or (not pages and self.force_scan):
                continue  # without force_scan even empty ones go: aging needs the room
            try:
                if self.evict == "debugfs":
                    run_command(k, eviction_command(stats.memcg_id, node.nid, seq,
                                                    self.swappiness))
                else:
                    k.write(_cgroup_file(memcg, "memory.reclaim"),
                            f"{pages * PAGE_SIZE} swappiness={self.swappiness}")
            except OSError as e:
                _note(self.errors, e)
                continue
            self.evictions.append((now_ns, memcg, node.nid, seq, pages))


class RefaultFeedback:
    """Reclaim a small step per interval while refaults stay at or under a target rate.

    The rate of an interval is (refaults now - refaults at the previous call)
    / (simulated seconds since it), with refaults = workingset_refault_anon +
    workingset_refault_file of the memcg's memory.stat (hierarchical). The
    first call has no rate yet and steps. A rate above the target skips the
    step (backs off); the next interval under the target steps again.

    Args:
        memcgs: cgroup paths below the cgroup root.
        step_mib: bytes written to memory.reclaim per step, in MiB.
        target_refaults_per_s: the highest refault rate that still steps.
        interval_ms: the call period (informational; the Engine calls).
    """

    name = "refault-feedback"

    def __init__(self, memcgs: list[str], *, step_mib: float = 1.0,
                 target_refaults_per_s: float = 100.0, interval_ms: float = 1000.0) -> None:
        if step_mib <= 0 or target_refaults_per_s < 0:
            raise ValueError(f"need step_mib > 0 and target_refaults_per_s >= 0, got "
                             f"{step_mib}, {target_refaults_per_s}")
        self.memcgs = list(memcgs)
        self.step_bytes = int(step_mib * (1 << 20)) // PAGE_SIZE * PAGE_SIZE
        self.target = target_refaults_per_s
        self.interval_ms = interval_ms
        self.errors: Counter = Counter()
        self._last: dict[str, tuple[int, int]] = {}
        #: (now_ns, memcg, rate or None, stepped) per memcg and call
        self.history: list[tuple[int, str, float | None, bool]] = []

    def __call__(self, k: Kernel, now_ns: int) -> None:
        """Measure each memcg's refault rate and step when it is at or under the target."""
        for memcg in self.memcgs:
            refaults = _refaults(k.read(_cgroup_file(memcg, "memory.stat")))
            last = self._last.get(memcg)
            self._last[memcg] = (now_ns, refaults)
            rate = None
            if last is not None and now_ns > last[0]:
                rate = (refaults - last[1]) * 1e9 / (now_ns - last[0])
            step = rate is None or rate <= self.target
            if step:
                try:
                    k.write(_cgroup_file(memcg, "memory.reclaim"), str(self.step_bytes))
                except OSError as e:
                    _note(self.errors, e)
            self.history.append((now_ns, memcg, rate, step))


def _refaults(memory_stat: str) -> int:
    """workingset_refault_anon + workingset_refault_file of a memory.stat text."""
    total = 0
    for line in memory_stat.splitlines():
        key, _, value = line.partition(" ")
        if key in ("workingset_refault_anon", "workingset_refault_file"):
            total += int(value)
    return total


#: agent name -> class
AGENTS = {cls.name: cls for cls in (NoAgent, AgeThreshold, RefaultFeedback)}

#: parameters each agent takes besides `memcgs` (NoAgent takes none of them but interval_ms)
_PARAMS = {
    "none": ("interval_ms",),
    "age-threshold": ("threshold_ms", "interval_ms", "swappiness", "force_scan", "evict"),
    "refault-feedback": ("step_mib", "target_refaults_per_s", "interval_ms"),
}


def make_agent(name: str, memcgs: list[str] | None = None, **params: object) -> Agent:
    """Build an agent by name.

    Args:
        name: "age-threshold", "refault-feedback" or "none".
        memcgs: the cgroup paths it acts on (ignored by "none").
        **params: the agent's keyword parameters.

    Raises:
        ValueError: an unknown agent or parameter (the valid ones are listed).
    """
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; valid agents: {', '.join(AGENTS)}")
    unknown = sorted(set(params) - set(_PARAMS[name]))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for agent {name!r}; "
                         f"valid: {', '.join(_PARAMS[name])}")
    if name == "none":
        return NoAgent(**params)  # type: ignore[arg-type]
    return AGENTS[name](list(memcgs or []), **params)  # type: ignore[arg-type]
