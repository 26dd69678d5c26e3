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

The waits (M/D/1 on lines and exclusive holders, a writer-period stall
model for qrwlock readers, a drain-and-group model for qrwlock writers) are
in `mglru.timing.waits`; a transfer or hand-off costs its remote price in the
share of the other threads' rate on the line that comes from other sockets
(`LineStreams.remote_share`, `mglru.timing.topology`); the records in
`mglru.timing.streams`. Each event loop has one `Planner`, which owns the
records (one aggregate per lock and line) and the threads' saved plans and duty
histories: locks and threads carry none of it.

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

import math
from typing import TYPE_CHECKING

from mglru.timing.locks import Rcu
from mglru.timing.steps import READ, Atomic, Batch, Work
from mglru.timing.streams import LineStreams, LockStreams
from mglru.timing.topology import handoff_ns, transfer_ns
from mglru.timing.waits import line_env, lock_env, reader_wait, transfer_p, writer_wait

if TYPE_CHECKING:
    from mglru.timing.costs import CostModel
    from mglru.timing.locks import CacheLine, Lock
    from mglru.timing.threads import Thread

__all__ = ["Planner"]

_ITERATIONS = 12
_TOLERANCE = 1e-4
#: the share of a recorded lock wait carried over from the thread's last batch of the same body
_DAMPING = 0.5


def _duty(hists: dict, obj: object, now: int, duration: int, window: int) -> float:
    """The fraction of its recent time a thread spent in batches using `obj`.

    `hists` is the thread's history per object. Exponentially weighted over
    `window`, including the new batch, so a writer that locks in bursts (an
    aging pass: tables, then a fixed cost) counts with its time-averaged rate;
    a thread's first batch counts fully.
    """
    hist = hists.get(obj)
    if hist is None:
        hists[obj] = [float(duration), float(duration), now + duration]
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


class Planner:
    """The aggregated-mode planner of one event loop: its stream records and saved plans.

    Args:
        costs: the cost model (atomics, line transfers, hand-offs).
        window_ns: how long a batch's records outlive it, and the averaging
            window of a thread's duty on an object.
    """

    def __init__(self, costs: CostModel, window_ns: int) -> None:
        self.costs = costs
        self.window_ns = window_ns
        #: the streams on each lock and line that batch bodies use
        self.lock_streams: dict[Lock, LockStreams] = {}
        self.line_streams: dict[CacheLine, LineStreams] = {}
        #: static facts of batch bodies, by id(body) (the body is kept to detect a recycled id)
        self._shapes: dict[int, tuple] = {}
        #: per thread: (id(body), n) -> (body, cycle, plan, recorded waits)
        self._plans: dict[Thread, dict] = {}
        #: per thread: object -> [busy, span, last end] (see `_duty`)
        self._duty: dict[Thread, dict] = {}
        #: per thread: the stream aggregates holding one of its records
        self._owned: dict[Thread, set] = {}

    def uses(self, lock: Lock) -> bool:
        """Whether a planned batch has used `lock` (it must not then be taken with acquire)."""
        return lock in self.lock_streams

    def forget(self, th: Thread) -> None:
        """Drop every stream record and plan of an exiting thread."""
        for streams in self._owned.pop(th, ()):
            streams.drop(th)
        self._duty.pop(th, None)
        self._plans.pop(th, None)

    def _line(self, line: CacheLine) -> LineStreams:
        ls = self.line_streams.get(line)
        if ls is None:
            ls = self.line_streams[line] = LineStreams()
        return ls

    def _shape(self, body: tuple) -> list[tuple]:
        """Static facts of a batch body, cached: per segment
        (kind, seg, every, ns or count, lock streams, line streams)."""
        entry = self._shapes.get(id(body))
        if entry is not None and entry[0] is body:
            return entry[1]
        shape = []
        for seg in body:
            kind = type(seg)
            if kind is Work:
                shape.append((0, seg, seg.every, seg.ns, None, None))
            elif kind is Atomic:
                shape.append((1, seg, seg.every, seg.count, None, self._line(seg.line)))
            elif isinstance(seg.lock, Rcu):
                shape.append((2, seg, seg.every, seg.ns, None, None))
            else:
                lock = seg.lock
                ls = self.lock_streams.get(lock)
                if ls is None:
                    ls = self.lock_streams[lock] = LockStreams()
                reader = seg.mode == READ and lock.kind != "spinlock"
                shape.append((4 if reader else 3, seg, seg.every, seg.ns, ls,
                              self._line(lock.line)))
        if len(self._shapes) > 4096:
            self._shapes.clear()
        self._shapes[id(body)] = (body, shape)
        return shape

    def run_batch(self, th: Thread, b: Batch, now: int) -> int:
        """Plan batch `b` of thread `th` starting at `now`; record its streams and stats.

        Returns:
            The batch's duration in ns.
        """
        costs = self.costs
        atomic = costs.atomic
        n = b.n
        offset = b.offset
        # the environment is fixed while planning: reduce it once (NOTE: the hot path)
        segs = []
        base = 0.0
        for kind, seg, every, x, ls, lls in self._shape(b.body):
            cnt = n if every == 1 else (offset + n) // every - offset // every
            if cnt == 0:
                continue
            f = cnt / n
            if kind == 0 or kind == 2:
                base += f * x
                segs.append((kind, seg, f, cnt, None, None, None, None, 0.0, 0.0))
            elif kind == 1:
                base += f * x * atomic
                lenv = line_env(lls, th, now)
                segs.append((1, seg, f, cnt, lenv, None, None, lls,
                             transfer_ns(costs, lenv[4]) - atomic, 0.0))
            else:
                base += f * (x + 2 * atomic)
                ls.purge(now)
                lenv = line_env(lls, th, now)
                # transfers and hand-offs from other sockets cross the interconnect
                segs.append((kind, seg, f, cnt, lenv, lock_env(ls, th, kind == 4), ls, lls,
                             transfer_ns(costs, lenv[4]) - atomic, handoff_ns(costs, lenv[4])))
        if not segs:
            return 0
        plans = self._plans.get(th)
        if plans is None:
            plans = self._plans[th] = {}
        key = (id(b.body), n)
        # start from this body's last solution: contention changes little between batches
        body, cyc, last, last_rec = plans.get(key, (None, base, None, None))
        if body is not b.body or len(last) != len(segs):
            # a new body (or a recycled id): start from the costs alone
            cyc, last, last_rec = base, None, None
        plan = list(last) if last is not None else [None] * len(segs)
        for _ in range(_ITERATIONS):
            total = 0.0
            for i, (kind, seg, f, _cnt, lenv, kenv, _ls, _lls, dt, handoff) in enumerate(segs):
                if kind == 0 or kind == 2:
                    total += f * seg.ns
                    continue
                period = cyc / f
                if kind == 1:
                    lw = lenv[3]
                    p = transfer_p(lenv, period) if lenv[0] else 0.0
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
                    pa = transfer_p(lenv, period - seg.ns - prev_w)
                    pr = transfer_p(lenv, seg.ns + prev_w)
                else:
                    pa = pr = 0.0
                sa = atomic + pa * dt
                c0 = period - prev_w
                wait2 = None
                if kind == 4:
                    # readers let in by a writer pass the wait_lock on one at a time
                    wait, pc = (reader_wait(kenv, period, atomic + dt + handoff) if kenv[2]
                                else (0.0, 0.0))
                elif kenv[0] is None and kenv[1] is None:
                    wait = pc = 0.0
                else:
                    hold0 = lw + sa + seg.ns
                    wait, pc, wait2 = writer_wait(kenv, c0 - hold0 - prev_h,
                                                   prev_w + prev_h + hold0,
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
        for i, (kind, _seg, f, *_rest) in enumerate(segs):
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
        if len(plans) > 64:
            plans.clear()
        plans[key] = (b.body, cyc, plan, rec)
        duration = int(round(n * cyc))
        self._record(th, now, duration, cyc, rcyc, segs, plan, rec)
        return duration

    def _record(self, th: Thread, now: int, duration: int, cyc: float, rcyc: float,
                segs: list, plan: list, rec: list) -> None:
        """Leave the batch's stream records on its locks and lines; add its stats."""
        atomic = self.costs.atomic
        window = self.window_ns
        expires = now + duration + window
        hists = self._duty.get(th)
        if hists is None:
            hists = self._duty[th] = {}
        owned = self._owned.get(th)
        if owned is None:
            owned = self._owned[th] = set()
        duty: dict = {}
        spin = 0.0
        lines: dict = {}
        for (kind, seg, f, cnt, lenv, _kenv, ls, lls, dt, handoff), pl, rc in zip(
                segs, plan, rec, strict=True):
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
                    acc = lines[line] = [0.0, 0.0, lls]
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
            if wait:
                th.lock_wait_ns[lock] = th.lock_wait_ns.get(lock, 0.0) + cnt * wait
            if lock.spinning:
                spin += cnt * (wait + 2 * lw)
            line = lock.line
            line.touches += 2 * cnt
            line.transfers += cnt * (pa + pr)
            line.wait_ns += cnt * 2 * lw
            lam = f / cyc
            acc = lines.get(line)
            if acc is None:
                acc = lines[line] = [0.0, 0.0, lls]
            acc[0] += 2 * lam
            acc[1] += lam * (2 * atomic + (pa + pr) * dt)
            d = duty.get(lock)
            if d is None:
                d = duty[lock] = duty[line] = _duty(hists, lock, now, duration, window)
            rwait, rwait2 = rc
            active2 = None if rwait2 is None else rwait2 + 2.0 * rwait * hold + hold * hold
            # a reader's record keeps its bare hold: a writer counts the hand-offs of
            # the readers it let in itself (the convoy term of writer_wait)
            rec_hold = hold - pc * handoff if kind == 4 else hold
            ls.put(th, seg.mode, f / rcyc * d, rec_hold, rwait + hold, rcyc / f / d, expires,
                   active2)
            owned.add(ls)
        for line, (lam, lam_s, lls) in lines.items():
            d = duty.get(line)
            if d is None:
                d = _duty(hists, line, now, duration, window)
            lls.put(th, lam * d, lam_s / lam, expires)
            owned.add(lls)
        th.spin_ns += spin
