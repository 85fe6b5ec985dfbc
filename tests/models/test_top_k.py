"""top_k never returns excluded or -inf items, even when k exceeds what is left (regression)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shopsense.models.base import top_k


def test_excluded_items_are_padded_not_returned() -> None:
    scores = np.array([[0.5, 0.1, 0.9, 0.3, 0.2, 0.4]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 1, 1, 0, 1]], dtype=np.float32))
    ids, vals = top_k(scores, 5, exclude)
    assert ids.tolist() == [[0, 4, 1, -1, -1]]
    assert np.isneginf(vals[0, 3:]).all()


def test_minus_inf_and_nan_scores_are_never_returned() -> None:
    scores = np.array([[-np.inf, np.nan, 1.0]], dtype=np.float32)
    ids, _ = top_k(scores, 3)
    assert ids.tolist() == [[2, -1, -1]]


def test_member_of_matches_isin() -> None:
    from shopsense.models.base import member_of

    rng = np.random.default_rng(0)
    for n, m in [(0, 5), (5, 0), (100, 30), (30, 100), (1, 1)]:
        a, b = rng.integers(0, 60, n), rng.integers(0, 60, m)
        np.testing.assert_array_equal(member_of(a, b), np.isin(a, b))
