"""Fixtures for the user-space tool tests (helpers live in lru_gen_fixtures)."""

from __future__ import annotations

import pytest
from lru_gen_fixtures import two_node_kernel

from mglru import SimKernel


@pytest.fixture
def kernel2() -> SimKernel:
    """See `two_node_kernel` (seed-v4)."""
    return two_node_kernel()
