"""The prefetch hint compiles for every array type the loops use and changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from mglru.mm._prefetch import prefetch


@njit
def _touch_all(a):
    for i in range(len(a)):
        prefetch(a, i)
    return a.sum()


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.uint32, np.int32, np.int64])
def test_prefetch_reads_and_writes_nothing(dtype):
    a = np.arange(1000, dtype=dtype) % 251
    before = a.copy()
    assert _touch_all(a) == before.sum()
    assert np.array_equal(a, before)


def test_prefetch_refuses_what_it_cannot_address():
    @njit
    def two_d(a):
        prefetch(a, 0)

    with pytest.raises(TypingError):
        two_d(np.zeros((2, 2), np.uint8))
