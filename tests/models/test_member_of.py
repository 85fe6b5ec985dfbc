"""member_of agrees with np.isin (top_k moved to tests/test_topk.py)."""

from __future__ import annotations

import numpy as np


def test_member_of_matches_isin() -> None:
    from shopsense.models.base import member_of

    rng = np.random.default_rng(0)
    for n, m in [(0, 5), (5, 0), (100, 30), (30, 100), (1, 1)]:
        a, b = rng.integers(0, 60, n), rng.integers(0, 60, m)
        np.testing.assert_array_equal(member_of(a, b), np.isin(a, b))
