"""Generators: seeded, in range, and with the statistics they promise."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from mglru.workload import generators as g


@given(st.sampled_from(sorted(g.PATTERNS)), st.integers(1, 3000), st.integers(0, 500),
       st.integers(0, 2**32))
def test_deterministic_and_in_range(pattern, n_pages, n, seed):
    a, wa = g.generate(pattern, n_pages, n, seed=seed)
    b, wb = g.generate(pattern, n_pages, n, seed=seed)
    assert a.dtype == np.int64 and len(a) == n == len(wa)
    assert np.array_equal(a, b) and np.array_equal(wa, wb)
    if n:
        assert 0 <= a.min() and a.max() < n_pages


def test_zipf_skew_matches_alpha():
    n_pages, n, alpha = 1000, 400_000, 0.9
    pages = g.zipf(n_pages, n, alpha=alpha, seed=5)
    counts = np.sort(np.bincount(pages, minlength=n_pages))[::-1]
    w = np.arange(1, n_pages + 1) ** -alpha
    expect = n * w / w.sum()
    # the most popular pages get their Zipf share (within 3 %)
    assert np.allclose(counts[:5], expect[:5], rtol=0.03)
    assert not np.array_equal(g.zipf(n_pages, 100, seed=1), g.zipf(n_pages, 100, seed=2))


def test_zipf_alpha_zero_is_uniform():
    counts = np.bincount(g.zipf(10, 100_000, alpha=0.0, seed=0), minlength=10)
    assert counts.min() > 9_000 and counts.max() < 11_000


def test_hot_cold_phases_move_the_hot_set():
    pages = g.hot_cold(10_000, 200_000, hot_fraction=0.01, hot_probability=0.9, phases=2, seed=3)
    first, second = pages[:100_000], pages[100_000:]
    hot1 = np.argsort(np.bincount(first, minlength=10_000))[-100:]
    hot2 = np.argsort(np.bincount(second, minlength=10_000))[-100:]
    assert np.isin(first, hot1).mean() > 0.88
    assert len(np.intersect1d(hot1, hot2)) < 10


def test_sequential_wraps():
    assert g.sequential(4, 10, start=2).tolist() == [2, 3, 0, 1, 2, 3, 0, 1, 2, 3]


def test_key_value_values_are_contiguous_and_read_mostly():
    pages, writes = g.key_value(4096, 80_000, value_pages=4, write_ratio=0.1, seed=9)
    req = pages.reshape(-1, 4)
    assert (np.diff(req, axis=1) == 1).all() and (req[:, 0] % 4 == 0).all()
    w = writes.reshape(-1, 4)
    assert (w == w[:, :1]).all()  # a request reads or writes its whole value
    assert 0.08 < w[:, 0].mean() < 0.12


@pytest.mark.parametrize("run", [1, 7, 512, 10_000])
def test_guest_layout_is_a_permutation_with_runs(run):
    n = 3000
    frames = g.guest_layout(n, run=run, seed=4)
    assert np.array_equal(np.sort(frames), np.arange(n))
    steps = np.diff(frames) == 1
    breaks = np.flatnonzero(~steps)
    if run >= n:
        assert steps.all()
    else:  # contiguous inside each run of `run` guest-virtual pages
        assert all(steps[i * run: min(n, (i + 1) * run) - 1].all() for i in range(n // run))
        assert len(breaks) >= 0.5 * (n // run)  # runs land apart (rarely next to each other)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown pattern"):
        g.generate("nope", 10, 10)
    with pytest.raises(ValueError):
        g.zipf(0, 10)
    with pytest.raises(ValueError):
        g.hot_cold(10, 10, hot_fraction=0)
    with pytest.raises(ValueError):
        g.guest_layout(10, run=0)


def test_zipf_clustered_puts_rank_r_on_page_r():
    """clustered: the same draws as ranks, page r the r-th most popular."""
    pages = g.zipf(1000, 50_000, alpha=1.2, seed=4, clustered=True)
    counts = np.bincount(pages, minlength=1000)
    assert counts[0] == counts.max()
    assert counts[:10].sum() > counts[10:20].sum() > counts[500:510].sum()
    scattered = g.zipf(1000, 50_000, alpha=1.2, seed=4)
    assert sorted(np.bincount(scattered, minlength=1000)) == sorted(counts)


def test_hot_cold_clustered_hot_set_is_one_run():
    """clustered: each phase's hot pages are hot_fraction * n_pages contiguous pages."""
    pages = g.hot_cold(1000, 20_000, hot_fraction=0.1, hot_probability=1.0, phases=2, seed=5,
                     clustered=True)
    for half in (pages[:10_000], pages[10_000:]):
        hot = np.unique(half)
        assert len(hot) == 100 and hot[-1] - hot[0] == 99
