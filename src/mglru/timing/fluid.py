"""Aggregated granularity: a whole `Batch` as one event, timed by a mean-field model.

Mechanism. In aggregated mode a `Batch` of n iterations does not touch the
locks' real queues. Its iteration cycle `cyc` is solved from the segments'
costs plus the waits that the *other* threads' recent batches imply, and the
thread resumes after n x cyc. Each batch leaves a stream record on every lock
and line it used (rate, hold, active time), kept until the batch ends plus
`TimingSim.window_ns`; the next batches of other threads read these records.
A record's rates are scaled by the thread's duty on that object: the fraction
of its recent time (exponentially weighted over `window_ns`, the new batch
included) spent in batches using it, so a writer that locks in bursts (an aging
pass: tables, then a fixed cost) counts with its time-averaged rate. The cycle
is a fixed point (the waits depend on my own rates), solved by iteration from
the thread's previous cycle for the same body; one or two rounds usually do.
Aggregates over records are kept incrementally, so planning is O(1) in the
number of readers (O(writers) for a reader of a qrwlock).

The formulas, per acquisition (P = my cycle per acquisition, c0 = P without
this lock's wait, u = my time outside the lock per acquisition):

* cache line (FIFO server of atomics): queueing behind the others' atomics as
  M/D/1, W = sum(l_j s_j^2) / (2 (1 - sum(l_j s_j))), capped at sum(s_j) (each
  other thread at most once ahead). The atomic costs `cacheline_transfer` with
  probability p that another thread touched the line since my previous touch
  (window w): p = min(1, L w) for one other thread (periodic, random phase),
  else 1 - exp(-L w); otherwise `atomic`.
* qrwlock reader: a writer with active period A (its wait, hand-off and hold:
  readers arriving then queue behind it) every C. Per writer period I arrive
  inside it with probability min(1, A / c), c my cycle with stalls (the fixed
  point makes it self-consistent), and stay blocked for its residual:
  E[A^2] / 2E[A] if A < c, else A - c/2. The blocked fraction sigma of my time
  gives my stall per acquisition, c x sigma: for A << c the random-arrival wait
  (A/C) x residual, for A >> c "blocked while the writer is active", once per
  writer period. Readers released together by a writer take the lock word one
  after the other: a stalled reader also waits for half of the k others stalled
  with it, k = min(other readers, A x their rate), one hand-off each.
* qrwlock writer: it waits for the readers inside the lock when it arrives:
  readers that arrived in the gap u before it (rate L, hold H: the last one
  arrived E[x] before, so H - E[x] is left), else the group of readers that
  queued during its previous active period and entered at its release: each of
  the n other readers did with probability p = min(1, L A / n), so the group is
  Binomial(n, p) (a reader queues at most once: this bounds the wait when the
  writer is active almost all the time); they take the lock word one after the
  other (`cacheline_transfer` + `lock_handoff` each), the last one leaving
  K x that + H - u after the writer's request. A reader's record keeps its bare
  hold H (without its own hand-off), so the group is not charged twice. Other
  writers: M/D/1 as for lines, with their holds.
* spinlock: the exclusive (writer) term only.
* RCU read sections: no wait.

`lock_handoff` is charged with the probability of having waited; holders and
waiters' line atomics follow the line formula. Lock statistics receive the
expectations (acquisitions, contended, wait, hold), so exact and aggregated
runs report the same quantities.

Stability. The cycle of a batch starts from the solution of the thread's last
batch of the same body. Batches see each other's records one batch late, and
threads that start together (the vCPUs of the `-p` benchmark) can flip between
fast and slow batches, a period-2 oscillation of the mean field; so the waits in
a thread's records (what the others see) move only halfway (`_DAMPING`) from
its last batch's towards the new solution. Its own duration is not damped.

Justification and limits: the model is checked against exact mode on small
runs (tests/timing/test_granularity.py: within 10 % on vCPU wall and pass time
for no aging, per-call write locks and RCU at 1-4 vCPUs). Exact mode with
deterministic costs phase-locks: equal-cost threads meet the lock at the same
offsets every cycle (at 4 vCPUs a per-call writer waits on 67 % of its calls,
about 35 % with random phases). With costs jittered by +-30 %
(`TimingSim(jitter=0.3)`) exact mode has the random phases this model assumes,
and the two agree within 5 % on the writer's per-call cycle and the vCPUs'
fault time from 2 to 16 vCPUs under a per-call write lock in the benchmark's
load regime. Known gaps: a batch's duration is fixed when it starts, from
records as they are then, so a change of contention is seen one batch late;
convoys after long write holds (a write lock per PTE table) are
underestimated (vCPU wall -11 % at 4 vCPUs); with no memory-system load and
16 vCPUs, where the writer waits ~95 % of the time, per-call cycle and fault
time are 15-17 % low.

Future optimizations:
1. re-plan running batches when a writer appears (removes the one-batch lag).
2. a convoy term for the lines touched next by readers a long write hold
   released together (they stay in lockstep for a few iterations).
3. a numba planner if many distinct locks per batch make planning the hot path
   (planning is ~35 us of Python per batch on the 2-core machine).
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

from mglru.timing.locks import Rcu
from mglru.timing.steps import READ, Atomic, Batch, Work

if TYPE_CHECKING:
    from mglru.timing.locks import CacheLine, Lock
    from mglru.timing.sim import Thread, TimingSim

__all__ = ["LineStreams", "LockStreams", "run_batch", "forget"]

_ITERATIONS = 12
_TOLERANCE = 1e-4
#: the largest stalled fraction a reader is given (a writer never holds 100 %)
_MAX_STALL = 0.98
#: the share of a recorded lock wait carried over from the thread's last batch of the same body
_DAMPING = 0.5


class LineStreams:
    """Streams on one cache line (or one lock mode): per thread (rate l per ns, service s ns).

    Aggregates (n, sum l, sum l s, sum l s^2, sum s) are kept incrementally.
    Expired records are dropped lazily through a heap of expiry times.
    """

    __slots__ = ("recs", "n", "lam", "lam_s", "lam_s2", "s_sum", "_heap", "_seq")

    def __init__(self) -> None:
        self.recs: dict[Thread, tuple[float, float, int]] = {}
        self.n = 0
        self.lam = self.lam_s = self.lam_s2 = self.s_sum = 0.0
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
        else:
            self.n += 1
            self.lam += lam
            self.lam_s += lam * s
            self.lam_s2 += lam * s * s
            self.s_sum += s
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
            return
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


def forget(th: Thread) -> None:
    """Drop all streams of an exiting thread."""
    for obj in th.streams:
        obj.streams.drop(th)
    th.streams.clear()
    th.duty.clear()


def _line_env(line: CacheLine, th: Thread, now: int) -> tuple[int, float, float, float]:
    """The other threads' touch streams on `line`: (n, rate, load, M/D/1 wait)."""
    ls = line.streams
    if ls is None:
        ls = line.streams = LineStreams()
    ls.purge(now)
    n, lam, rho, s2, s_sum = ls.others(th)
    if n <= 0 or lam <= 0:
        return 0, 0.0, 0.0, 0.0
    wait = s2 / (2.0 * (1.0 - rho)) if rho < 1.0 else s_sum
    return n, lam, rho, min(wait, s_sum)


def _transfer_p(env: tuple[int, float, float, float], window: float) -> float:
    """Probability that another thread touched the line within `window` ns."""
    n, lam, _rho, _wait = env
    if n == 0:
        return 0.0
    x = lam * window if window > 0 else 0.0
    if n == 1:
        return x if x < 1.0 else 1.0
    return -math.expm1(-x)


def _lock_env(lock: Lock, th: Thread, reader: bool) -> tuple:
    """The other threads' streams on `lock`, reduced to what the wait formulas need."""
    ls = lock.streams
    if reader:
        n, lam, _lh, _lh2, _hs = ls.readers.others(th)
        return (n, lam), None, [w for w in ls.writers(th) if w[1] > 0]
    n, lam, lh, _lh2, _hs = ls.readers.others(th)
    readers = (n, lam, lh / lam) if n > 0 and lam > 0 else None
    n, lam, rho, s2, s_sum = ls.excl.others(th)
    if n > 0 and lam > 0:
        w = s2 / (2.0 * (1.0 - rho)) if rho < 1.0 else s_sum
        excl = (min(w, s_sum), min(1.0, rho))
    else:
        excl = None
    return readers, excl, None


def _gap_moments(lam: float, hold: float, u: float, g: float) -> tuple[float, float]:
    """E[m] and E[m^2] of m = max(g, hold - X, 0), X the age of the last reader arrival.

    Readers arrive at rate `lam` in the writer's gap of length `u` before its
    request; X is the time since the last of them (none with prob e^{-lam u}:
    then m = max(g, 0)). `g` is what the group of readers let in at the previous
    release leaves (-inf: no group).
    """
    g0 = g if g > 0.0 else 0.0
    none = math.exp(-lam * u)
    # below a = hold - g the last gap reader outlasts the group
    a = hold - g0
    a = 0.0 if a < 0.0 else (u if a > u else a)
    e = math.exp(-lam * a)
    i0 = 1.0 - e
    i1 = i0 / lam - a * e
    i2 = 2.0 * i0 / (lam * lam) - e * (a * a + 2.0 * a / lam)
    m1 = hold * i0 - i1 + g0 * (e - none) + g0 * none
    m2 = hold * hold * i0 - 2.0 * hold * i1 + i2 + g0 * g0 * (e - none) + g0 * g0 * none
    return m1, m2


def _writer_wait(env: tuple, u: float, active: float,
                 convoy: float = 0.0) -> tuple[float, float, float]:
    """An exclusive acquirer's expected wait, probability of waiting and E[wait^2].

    Readers (a renewal argument over my cycle: gap u outside the lock, then
    the wait, then my hold): the readers that queued during my previous active
    period `active` were let in at my release. Each of the n other readers
    (rate lam / n) queued with probability p = min(1, lam x active / n), so
    their number K is Binomial(n, p): a reader can be queued at most once,
    which bounds the wait when the writer is active almost all the time. They
    take the lock word one after the other (`convoy` each), so the last leaves
    K x convoy + hold - u after my request; readers that arrived in the gap u
    entered at once and leave hold - X after it. I wait for the last of all of
    them: E[max] is summed over K, with the gap in closed form.
    Other exclusive holders add their M/D/1 wait.
    """
    readers, excl, _writers = env
    wait = wait2 = 0.0
    pc = 0.0
    if readers is not None:
        n, lam, hold = readers
        u = u if u > 0.0 else 0.0
        p = lam * active / n
        if p >= 1.0:
            pk, k, cum = 0.0, n, 1.0
            m1, m2 = _gap_moments(lam, hold, u, n * convoy + hold - u)
            wait, wait2 = m1, m2
        else:
            pk = (1.0 - p) ** n
            m1, m2 = _gap_moments(lam, hold, u, -1.0)
            wait, wait2 = pk * m1, pk * m2
            cum = pk
            k = 0
            odds = p / (1.0 - p)
            while cum < 0.9999 and k < n:
                pk *= odds * (n - k) / (k + 1)
                k += 1
                cum += pk
                m1, m2 = _gap_moments(lam, hold, u, k * convoy + hold - u)
                wait += pk * m1
                wait2 += pk * m2
        queued = 1.0 if p >= 1.0 else 1.0 - (1.0 - p) ** n
        pc = 1.0 - (1.0 - queued) * math.exp(-lam * (u if u < hold else hold))
    if excl is not None:
        w = excl[0]
        wait2 += 2.0 * wait * w + w * w
        wait += w
        pc += excl[1]
    return wait, min(1.0, pc), wait2


def _reader_wait(env: tuple, c: float, convoy: float) -> tuple[float, float]:
    """A qrwlock reader's expected stall per acquisition and probability of stalling.

    `c` is my cycle per acquisition, stalls included (the caller's fixed point
    makes it self-consistent). Per writer period (active A, one every `cycle`),
    I arrive inside it with probability min(1, A / c) and stay blocked for its
    residual: E[A^2] / (2 E[A]) (size-biased) when A < c, else A - c / 2 (my
    first arrival in it is uniform over my cycle). sigma, the blocked fraction
    of my time, gives my stall per acquisition, c x sigma. For A < c that is the
    per-arrival wait (A / cycle) x residual; for A >> c, "blocked while the
    writer is active", once per writer period however short my cycle.
    `convoy` is the cost per other reader released with me by a writer (the
    lock word moves through each of us in turn): a stalled reader waits on
    average for half of the k others stalled in the same writer period.
    """
    sigma = 0.0
    pc = 0.0
    n_others, lam_others = env[0]
    for active, cycle, active2 in env[2]:
        k = min(n_others, active * lam_others)
        if active < c:
            res = active2 / (2.0 * active) if active > 0 else 0.0
            sigma += active / c * (res + convoy * k / 2.0) / cycle
            pc += active / cycle
        else:
            sigma += (active - c / 2.0 + convoy * k / 2.0) / cycle
            pc += c / cycle
    if sigma <= 0:
        return 0.0, 0.0
    return c * min(sigma, _MAX_STALL), min(1.0, pc)


def _shape(sim: TimingSim, body: tuple) -> list[tuple]:
    """Static facts of a batch body: (kind, seg, every, lock or line, reader?), cached."""
    entry = sim._shapes.get(id(body))
    if entry is not None and entry[0] is body:
        return entry[1]
    shape = []
    for seg in body:
        kind = type(seg)
        if kind is Work:
            shape.append((0, seg, seg.every, None, seg.ns))
        elif kind is Atomic:
            shape.append((1, seg, seg.every, seg.line, seg.count))
        elif isinstance(seg.lock, Rcu):
            shape.append((2, seg, seg.every, seg.lock, seg.ns))
        else:
            lock = seg.lock
            if lock.streams is None:
                lock.streams = LockStreams()
            if lock.line.streams is None:
                lock.line.streams = LineStreams()
            reader = seg.mode == READ and lock.kind != "spinlock"
            shape.append((4 if reader else 3, seg, seg.every, lock, seg.ns))
    if len(sim._shapes) > 4096:
        sim._shapes.clear()
    sim._shapes[id(body)] = (body, shape)
    return shape


def _duty(th: Thread, obj: object, now: int, duration: int, window: int) -> float:
    """The fraction of its recent time `th` spent in batches using `obj`.

    Exponentially weighted over `window`, including the new batch, so a writer
    that locks in bursts (an aging pass: tables, then a fixed cost) counts with
    its time-averaged rate; a thread's first batch counts fully.
    """
    hist = th.duty.get(obj)
    if hist is None:
        th.duty[obj] = [float(duration), float(duration), now + duration]
        return 1.0
    busy, span, last_end = hist
    gap = now - last_end if now > last_end else 0
    decay = math.exp(-(gap + duration) / window)
    busy = busy * decay + duration
    span = span * decay + gap + duration
    hist[0] = busy
    hist[1] = span
    hist[2] = now + duration
    return busy / span if span > 0 else 1.0


def run_batch(sim: TimingSim, th: Thread, b: Batch) -> int:
    """Plan batch `b` of thread `th` at `sim.now`; record its streams and stats.

    Returns:
        The batch's duration in ns.
    """
    now = sim.now
    costs = sim.costs
    atomic = costs.atomic
    dt = costs.cacheline_transfer - atomic
    handoff = costs.lock_handoff
    n = b.n
    offset = b.offset
    # the environment is fixed while planning: reduce it once (NOTE: the hot path)
    segs = []
    base = 0.0
    for kind, seg, every, obj, x in _shape(sim, b.body):
        cnt = n if every == 1 else (offset + n) // every - offset // every
        if cnt == 0:
            continue
        f = cnt / n
        if kind == 0 or kind == 2:
            base += f * x
            segs.append((kind, seg, f, cnt, None, None))
        elif kind == 1:
            base += f * x * atomic
            segs.append((1, seg, f, cnt, _line_env(obj, th, now), None))
        else:
            base += f * (x + 2 * atomic)
            obj.streams.purge(now)
            segs.append((kind, seg, f, cnt, _line_env(obj.line, th, now),
                         _lock_env(obj, th, kind == 4)))
    if not segs:
        return 0
    key = (id(b.body), n)
    # start from this body's last solution: contention changes little between batches
    cyc, last, last_rec = th.plans.get(key, (base, None, None))
    if last is None or len(last) != len(segs):
        last = last_rec = None
    plan = list(last) if last is not None else [None] * len(segs)
    for _ in range(_ITERATIONS):
        total = 0.0
        for i, (kind, seg, f, _cnt, lenv, kenv) in enumerate(segs):
            if kind == 0 or kind == 2:
                total += f * seg.ns
                continue
            period = cyc / f
            if kind == 1:
                lw = lenv[3]
                p = _transfer_p(lenv, period) if lenv[0] else 0.0
                t = lw + p * dt + seg.count * atomic
                plan[i] = (lw, p, t)
                total += f * t
                continue
            prev = plan[i]
            prev_w = prev[0] if prev is not None else 0.0
            # a writer granted from the queue holds the lock during its hand-off too
            prev_h = prev[1] * handoff if prev is not None else 0.0
            lw = lenv[3]
            if lenv[0]:
                pa = _transfer_p(lenv, period - seg.ns - prev_w)
                pr = _transfer_p(lenv, seg.ns + prev_w)
            else:
                pa = pr = 0.0
            sa = atomic + pa * dt
            c0 = period - prev_w
            wait2 = None
            if kind == 4:
                # readers let in by a writer pass the wait_lock on one at a time
                wait, pc = (_reader_wait(kenv, period, atomic + dt + handoff) if kenv[2]
                            else (0.0, 0.0))
            elif kenv[0] is None and kenv[1] is None:
                wait = pc = 0.0
            else:
                hold0 = lw + sa + seg.ns
                wait, pc, wait2 = _writer_wait(kenv, c0 - hold0 - prev_h, prev_w + prev_h + hold0,
                                               atomic + dt + handoff
                                               if seg.lock.kind == "qrwlock" else 0.0)
            hold = lw + sa + pc * handoff + seg.ns
            t = wait + hold + lw + atomic + pr * dt
            plan[i] = (wait, pc, hold, pa, pr, t, wait2)
            total += f * t
        converged = abs(total - cyc) <= _TOLERANCE * total
        cyc = total
        if converged:
            break
    # What the others see (my stream records) moves only halfway from my last
    # batch's waits towards the new solution. Batches see each other's records
    # one batch late; undamped, threads that start together flip between fast
    # and slow batches (a period-2 oscillation of the mean field). My own
    # duration is not damped: it follows the environment without lag.
    rec = [None] * len(segs)
    rcyc = cyc
    for i, (kind, _seg, f, _cnt, _lenv, _kenv) in enumerate(segs):
        if kind < 3:
            continue
        wait, wait2 = plan[i][0], plan[i][6]
        if last_rec is not None and last_rec[i] is not None:
            lw_, lw2 = last_rec[i]
            w = _DAMPING * lw_ + (1.0 - _DAMPING) * wait
            if wait2 is not None and lw2 is not None:
                wait2 = _DAMPING * lw2 + (1.0 - _DAMPING) * wait2
            rcyc += f * (w - wait)
            wait = w
        rec[i] = (wait, wait2)
    if len(th.plans) > 64:
        th.plans.clear()
    th.plans[key] = (cyc, plan, rec)
    duration = int(round(n * cyc))
    expires = now + duration + sim.window_ns
    duty: dict = {}
    spin = 0.0
    lines: dict = {}
    for (kind, seg, f, cnt, lenv, _kenv), pl, rc in zip(segs, plan, rec, strict=True):
        if kind == 0:
            continue
        if kind == 2:
            seg.lock.stats[READ].acquired += cnt
            continue
        if kind == 1:
            w, p, t = pl
            line = seg.line
            line.touches += cnt * seg.count
            line.transfers += cnt * p
            line.wait_ns += cnt * w
            spin += cnt * w
            lam = f * seg.count / cyc
            acc = lines.get(line)
            if acc is None:
                acc = lines[line] = [0.0, 0.0]
            acc[0] += lam
            acc[1] += lam * (t - w) / seg.count
            continue
        lock = seg.lock
        wait, pc, hold, pa, pr, _t, wait2 = pl
        lw = lenv[3]
        st = lock.stats[seg.mode]
        st.acquired += cnt
        st.contended += cnt * pc
        st.wait_ns += cnt * wait
        st.hold_ns += cnt * hold
        if lock.spinning:
            spin += cnt * (wait + 2 * lw)
        line = lock.line
        line.touches += 2 * cnt
        line.transfers += cnt * (pa + pr)
        line.wait_ns += cnt * 2 * lw
        lam = f / cyc
        acc = lines.get(line)
        if acc is None:
            acc = lines[line] = [0.0, 0.0]
        acc[0] += 2 * lam
        acc[1] += lam * (2 * atomic + (pa + pr) * dt)
        d = duty.get(lock)
        if d is None:
            d = duty[lock] = duty[lock.line] = _duty(th, lock, now, duration, sim.window_ns)
        rwait, rwait2 = rc
        active2 = None if rwait2 is None else rwait2 + 2.0 * rwait * hold + hold * hold
        # a reader's record keeps its bare hold: a writer counts the hand-offs of
        # the readers it let in itself (the convoy term of _writer_wait)
        rec_hold = hold - pc * handoff if kind == 4 else hold
        lock.streams.put(th, seg.mode, f / rcyc * d, rec_hold, rwait + hold, rcyc / f / d,
                         expires, active2)
        th.streams.add(lock)
    for line, (lam, lam_s) in lines.items():
        d = duty.get(line)
        if d is None:
            d = _duty(th, line, now, duration, sim.window_ns)
        line.streams.put(th, lam * d, lam_s / lam, expires)
        th.streams.add(line)
    th.spin_ns += spin
    return duration
