"""Shared fixtures and the Hypothesis profile."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from mglru import SimKernel

settings.register_profile(
    "default", deadline=None, max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("ci", parent=settings.get_profile("default"), derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

LRU_GEN = "/sys/kernel/debug/lru_gen"
LRU_GEN_FULL = "/sys/kernel/debug/lru_gen_full"
ENABLED = "/sys/kernel/mm/lru_gen/enabled"


@pytest.fixture
def k() -> SimKernel:
    """A small v6.10 kernel (one 1 GiB node) with debug warnings raising."""
    return SimKernel("v6.10", node_bytes=(1 << 30,), debug=True)
