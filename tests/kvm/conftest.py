"""Fixtures of the KVM tests (helpers live in kvm_helpers.py)."""

from __future__ import annotations

import pytest
from kvm_helpers import Setup, make_vm


@pytest.fixture
def setup() -> Setup:
    """seed-v4, x86 TDP, 4 MiB of guest memory, no guest TLB."""
    return make_vm()
