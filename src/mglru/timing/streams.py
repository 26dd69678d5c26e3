"""Stream records of aggregated granularity: who uses a lock or line, how often, how long.

Each batch leaves a record on every lock and line it used (rate, hold, active
time), kept until the batch ends plus `TimingSim.window_ns`; other threads'
batches read the aggregates (`mglru.timing.waits`). The planner
(`mglru.timing.fluid.Planner`) keeps one aggregate per lock and line. Aggregates
are kept incrementally, so reading them is O(1) in the number of threads.
"""

from __future__ import annotations

import heapq
from typing import TYPE_CHECKING

from mglru.timing.steps import READ

if TYPE_CHECKING:
    from mglru.timing.threads import Thread

__all__ = ["LineStreams", "LockStreams"]


class LineStreams:
    """Streams on one cache line (or one lock mode): per thread (rate l per ns, service s ns).

    Aggregates (n, sum l, sum l s, sum l s^2, sum s, and sum l per NUMA node of
    the threads) are kept incrementally. Expired records are dropped lazily
    through a heap of expiry times.
    """

    __slots__ = ("recs", "n", "lam", "lam_s", "lam_s2", "s_sum", "lam_node", "_heap", "_seq")

    def __init__(self) -> None:
        self.recs: dict[Thread, tuple[float, float, int]] = {}
        self.n = 0
        self.lam = self.lam_s = self.lam_s2 = self.s_sum = 0.0
        #: node -> sum l of the threads running there
        self.lam_node: dict[int, float] = {}
        self._heap: list[tuple[int, int, Thread]] = []
        self._seq = 0

    def put(self, th: Thread, lam: float, s: float, expires: int) -> None:
        """Set `th`'s stream."""
        recs = self.recs
        old = recs.get(th)
        if old is not None:
            olam, os_, _ = old
            self.lam += lam - olam
            self.lam_s += lam * s - olam * os_
            self.lam_s2 += lam * s * s - olam * os_ * os_
            self.s_sum += s - os_
            self.lam_node[th.node] += lam - olam
        else:
            self.n += 1
            self.lam += lam
            self.lam_s += lam * s
            self.lam_s2 += lam * s * s
            self.s_sum += s
            self.lam_node[th.node] = self.lam_node.get(th.node, 0.0) + lam
        recs[th] = (lam, s, expires)
        self._seq += 1
        heapq.heappush(self._heap, (expires, self._seq, th))

    def drop(self, th: Thread) -> None:
        """Forget `th`'s stream."""
        old = self.recs.pop(th, None)
        if old is None:
            return
        lam, s, _ = old
        self.n -= 1
        if self.n == 0:
            self.lam = self.lam_s = self.lam_s2 = self.s_sum = 0.0
            self.lam_node.clear()
            return
        self.lam_node[th.node] -= lam
        self.lam -= lam
        self.lam_s -= lam * s
        self.lam_s2 -= lam * s * s
        self.s_sum -= s

    def purge(self, now: int) -> None:
        """Drop the streams that expired at or before `now`."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            expires, _, th = heapq.heappop(heap)
            rec = self.recs.get(th)
            if rec is not None and rec[2] == expires:
                self.drop(th)

    def remote_share(self, th: Thread) -> float:
        """The share of the other threads' rate that comes from other NUMA nodes than `th`'s."""
        own = self.recs.get(th)
        lam = self.lam - (own[0] if own is not None else 0.0)
        if lam <= 0.0 or len(self.lam_node) < 2:
            return 0.0
        local = self.lam_node.get(th.node, 0.0) - (own[0] if own is not None else 0.0)
        share = 1.0 - local / lam
        return 0.0 if share < 0.0 else (1.0 if share > 1.0 else share)

    def others(self, th: Thread) -> tuple[int, float, float, float, float]:
        """(n, sum l, sum l s, sum l s^2, sum s) over threads other than `th`."""
        own = self.recs.get(th)
        if own is None:
            return self.n, self.lam, self.lam_s, self.lam_s2, self.s_sum
        lam, s, _ = own
        return (self.n - 1, self.lam - lam, self.lam_s - lam * s, self.lam_s2 - lam * s * s,
                self.s_sum - s)


class LockStreams:
    """Acquisition streams on one lock: shared and exclusive holders as aggregates.

    Each aggregate is a `LineStreams` whose service time is the hold. For the
    reader-stall formula, exclusive holders also keep (active, cycle, E[active^2])
    in `wextra`.
    """

    __slots__ = ("readers", "excl", "wextra")

    def __init__(self) -> None:
        self.readers = LineStreams()
        self.excl = LineStreams()
        self.wextra: dict[Thread, tuple[float, float, float]] = {}

    def put(self, th: Thread, mode: str, lam: float, hold: float, active: float,
            cycle: float, expires: int, active2: float | None = None) -> None:
        """Set `th`'s stream in `mode` (a thread has one mode per lock at a time).

        `active2` is E[active^2] (default: active^2, a deterministic period).
        """
        if mode == READ:
            self.excl.drop(th)
            self.readers.put(th, lam, hold, expires)
        else:
            self.readers.drop(th)
            self.excl.put(th, lam, hold, expires)
            self.wextra[th] = (active, cycle, active * active if active2 is None else active2)

    def drop(self, th: Thread) -> None:
        """Forget `th`'s stream."""
        self.readers.drop(th)
        self.excl.drop(th)
        self.wextra.pop(th, None)

    def purge(self, now: int) -> None:
        """Drop expired streams."""
        self.readers.purge(now)
        self.excl.purge(now)

    def writers(self, th: Thread) -> list[tuple[float, float, float]]:
        """(active, cycle, E[active^2]) of the exclusive holders other than `th`."""
        wextra = self.wextra
        return [wextra[w] for w in self.excl.recs if w is not th]

