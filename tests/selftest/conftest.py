"""Helpers for the access_tracking_perf_test port's tests (helpers live in selftest_helpers)."""

from __future__ import annotations

import pytest
from selftest_helpers import MEMCG

from mglru import SimKernel


@pytest.fixture
def seed_v4() -> SimKernel:
    """A fresh seed-v4 kernel (cap 0x8 on: enabled reads 0x000f)."""
    return SimKernel("seed-v4", seed=0)


@pytest.fixture
def memcg_path() -> str:
    """The test memcg's directory on the simulated kernel."""
    return MEMCG
