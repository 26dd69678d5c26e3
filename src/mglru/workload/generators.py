"""Seeded access-pattern generators: page indices (and write flags) in [0, n_pages).

Every generator takes a `seed` and returns the same arrays for the same
arguments. Page indices are offsets into a region (a task's mapping or a
guest's "virtual" pages); `guest_layout` maps guest-virtual pages onto guest
frames with a chosen locality.

    pages = zipf(1 << 18, 10_000_000, alpha=0.9, seed=1)
    pages, writes = key_value(1 << 18, 1_000_000, seed=2)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["uniform", "zipf", "hot_cold", "sequential", "key_value", "guest_layout", "PATTERNS",
           "generate"]

Pages = npt.NDArray[np.int64]


def _check(n_pages: int, n: int) -> None:
    if n_pages <= 0:
        raise ValueError(f"n_pages must be positive, got {n_pages}")
    if n < 0:
        raise ValueError(f"the number of accesses must be >= 0, got {n}")


def uniform(n_pages: int, n: int, *, seed: int = 0) -> Pages:
    """Each access picks a page uniformly at random."""
    _check(n_pages, n)
    return np.random.default_rng(seed).integers(0, n_pages, n, dtype=np.int64)


def zipf(n_pages: int, n: int, *, alpha: float = 0.9, seed: int = 0,
         clustered: bool = False) -> Pages:
    """Zipf(alpha) popularity over `n_pages` pages (rank r has weight r**-alpha).

    Ranks are placed on pages by a seeded permutation, so popular pages are
    scattered over the region as in a real cache; `clustered` puts rank r on
    page r instead (the hot pages are the first ones, as in an array read by
    popularity). Any alpha >= 0 (0 = uniform).
    """
    _check(n_pages, n)
    if alpha < 0:
        raise ValueError(f"alpha must be >= 0, got {alpha}")
    rng = np.random.default_rng(seed)
    cdf = np.cumsum(np.arange(1, n_pages + 1, dtype=np.float64) ** -alpha)
    cdf /= cdf[-1]
    ranks = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), n_pages - 1)
    if clustered:
        return ranks.astype(np.int64)
    return rng.permutation(n_pages)[ranks].astype(np.int64)


def hot_cold(n_pages: int, n: int, *, hot_fraction: float = 0.1, hot_probability: float = 0.9,
             phases: int = 1, seed: int = 0, clustered: bool = False) -> Pages:
    """A hot set gets `hot_probability` of the accesses; it moves at each phase change.

    The accesses are split into `phases` equal phases; each phase draws a new
    hot set of `hot_fraction * n_pages` pages (a random contiguous-free subset,
    or with `clustered` one run of contiguous pages at a random offset).
    """
    _check(n_pages, n)
    if not 0 < hot_fraction <= 1 or not 0 <= hot_probability <= 1 or phases < 1:
        raise ValueError("need 0 < hot_fraction <= 1, 0 <= hot_probability <= 1, phases >= 1")
    rng = np.random.default_rng(seed)
    n_hot = max(1, int(hot_fraction * n_pages))
    out = np.empty(n, np.int64)
    bounds = np.linspace(0, n, phases + 1).astype(np.int64)
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        if clustered:
            hot = int(rng.integers(0, n_pages - n_hot + 1)) + np.arange(n_hot, dtype=np.int64)
        else:
            hot = rng.choice(n_pages, n_hot, replace=False)
        m = hi - lo
        is_hot = rng.random(m) < hot_probability
        out[lo:hi] = np.where(is_hot, hot[rng.integers(0, n_hot, m)], rng.integers(0, n_pages, m))
    return out


def sequential(n_pages: int, n: int, *, start: int = 0, seed: int = 0) -> Pages:
    """A scan: pages start, start+1, ... wrapping around the region (seed unused)."""
    _check(n_pages, n)
    return (start + np.arange(n, dtype=np.int64)) % n_pages


def key_value(n_pages: int, n: int, *, value_pages: int = 1, alpha: float = 0.99,
              write_ratio: float = 0.05, seed: int = 0) -> tuple[Pages, npt.NDArray[np.bool_]]:
    """A read-mostly key-value store: Zipf keys, each value `value_pages` contiguous pages.

    Returns (pages, writes): a request touches all pages of its value; a
    fraction `write_ratio` of the requests are updates (writes).
    """
    _check(n_pages, n)
    if value_pages < 1 or value_pages > n_pages or not 0 <= write_ratio <= 1:
        raise ValueError("need 1 <= value_pages <= n_pages and 0 <= write_ratio <= 1")
    rng = np.random.default_rng(seed)
    n_keys = n_pages // value_pages
    n_req = -(-n // value_pages)
    keys = zipf(n_keys, n_req, alpha=alpha, seed=int(rng.integers(1 << 62)))
    upd = rng.random(n_req) < write_ratio
    pages = (keys[:, None] * value_pages + np.arange(value_pages)).reshape(-1)[:n]
    return pages.astype(np.int64), np.repeat(upd, value_pages)[:n]


def guest_layout(n_pages: int, *, run: int = 512, seed: int = 0) -> Pages:
    """Guest-virtual page -> guest frame: contiguous runs of `run` frames, runs scattered.

    `run=1` scatters every page; `run >= n_pages` is the identity. Index the
    result with guest-virtual page numbers to get gfns (the frames are a
    permutation of [0, n_pages)).
    """
    if n_pages <= 0 or run < 1:
        raise ValueError(f"need n_pages > 0 and run >= 1, got {n_pages}, {run}")
    rng = np.random.default_rng(seed)
    full = n_pages // run
    frames = (rng.permutation(full)[:, None] * run + np.arange(run)).reshape(-1)
    # a partial last run keeps the last guest-virtual pages, so runs stay aligned
    tail = np.arange(full * run, n_pages)
    return np.concatenate((frames, tail)).astype(np.int64)


#: pattern name -> generator(n_pages, n, seed=...) returning pages or (pages, writes)
PATTERNS = {
    "uniform": uniform,
    "zipf": zipf,
    "hotcold": hot_cold,
    "seq": sequential,
    "kv": key_value,
}


def generate(pattern: str, n_pages: int, n: int, *, seed: int = 0,
             writes: bool = False) -> tuple[Pages, npt.NDArray[np.bool_]]:
    """(pages, writes) of a named pattern; `writes` applies to patterns without their own."""
    try:
        gen = PATTERNS[pattern]
    except KeyError:
        raise ValueError(f"unknown pattern {pattern!r}; valid: {', '.join(PATTERNS)}") from None
    out = gen(n_pages, n, seed=seed)
    if isinstance(out, tuple):
        return out
    return out, np.full(n, writes, bool)
