"""The mean-field waits of aggregated granularity: lines, qrwlock readers and writers.

`mglru.timing.fluid` plans a batch with these formulas from the other threads'
stream records (`mglru.timing.streams`).

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
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mglru.timing.streams import LineStreams, LockStreams
    from mglru.timing.threads import Thread

__all__ = ["line_env", "transfer_p", "lock_env", "gap_moments", "writer_wait", "reader_wait"]

#: the largest stalled fraction a reader is given (a writer never holds 100 %)
_MAX_STALL = 0.98


def line_env(ls: LineStreams, th: Thread,
             now: int) -> tuple[int, float, float, float, float]:
    """The other threads' touch streams on a line: (n, rate, load, M/D/1 wait, remote share).

    The remote share is the part of their rate from other sockets: the share
    of my transfers that cross the interconnect (`mglru.timing.topology`).
    """
    ls.purge(now)
    n, lam, rho, s2, s_sum = ls.others(th)
    if n <= 0 or lam <= 0:
        return 0, 0.0, 0.0, 0.0, 0.0
    wait = s2 / (2.0 * (1.0 - rho)) if rho < 1.0 else s_sum
    return n, lam, rho, min(wait, s_sum), ls.remote_share(th)


def transfer_p(env: tuple[int, float, float, float, float], window: float) -> float:
    """Probability that another thread touched the line within `window` ns."""
    n, lam = env[0], env[1]
    if n == 0:
        return 0.0
    x = lam * window if window > 0 else 0.0
    if n == 1:
        return x if x < 1.0 else 1.0
    return -math.expm1(-x)


def lock_env(ls: LockStreams, th: Thread, reader: bool) -> tuple:
    """The other threads' streams on a lock, reduced to what the wait formulas need."""
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


def gap_moments(lam: float, hold: float, u: float, g: float) -> tuple[float, float]:
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


def writer_wait(env: tuple, u: float, active: float,
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
            m1, m2 = gap_moments(lam, hold, u, n * convoy + hold - u)
            wait, wait2 = m1, m2
        else:
            pk = (1.0 - p) ** n
            m1, m2 = gap_moments(lam, hold, u, -1.0)
            wait, wait2 = pk * m1, pk * m2
            cum = pk
            k = 0
            odds = p / (1.0 - p)
            while cum < 0.9999 and k < n:
                pk *= odds * (n - k) / (k + 1)
                k += 1
                cum += pk
                m1, m2 = gap_moments(lam, hold, u, k * convoy + hold - u)
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


def reader_wait(env: tuple, c: float, convoy: float) -> tuple[float, float]:
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
