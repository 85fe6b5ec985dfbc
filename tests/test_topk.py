"""top_k: best first, ties to the lower index, NaN / -inf / excluded / not-above entries never returned."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from shopsense.topk import top_k


def test_vector_best_first_ties_to_the_lower_index() -> None:
    ids, vals = top_k(np.array([0.5, 0.9, 0.5, 0.1, 0.9]), 4)
    assert ids.tolist() == [1, 4, 0, 2]
    assert vals.dtype == np.float32 and vals.tolist() == pytest.approx([0.9, 0.9, 0.5, 0.5])


def test_ties_at_the_cut_keep_the_lower_indices() -> None:
    scores = np.zeros(1000)  # argpartition alone picks any k of the tied entries
    assert top_k(scores, 3)[0].tolist() == [0, 1, 2]
    assert top_k(scores[None], 3)[0].tolist() == [[0, 1, 2]]


def test_vector_k_above_n_and_k_zero() -> None:
    ids, vals = top_k(np.array([1.0, 3.0]), 5)
    assert ids.tolist() == [1, 0] and len(vals) == 2
    ids, vals = top_k(np.array([1.0, 3.0]), 0)
    assert ids.shape == (0,) and vals.shape == (0,)
    assert top_k(np.array([]), 3)[0].shape == (0,)


def test_vector_drops_nan_minus_inf_and_scores_not_above() -> None:
    s = np.array([np.nan, -np.inf, 0.0, 2.0, -1.0, np.inf])
    assert top_k(s, 10)[0].tolist() == [5, 3, 2, 4]
    assert top_k(s, 10, above=0.0)[0].tolist() == [5, 3]  # BM25: only documents that match


def test_rows_pad_with_minus_one_and_minus_inf() -> None:
    ids, vals = top_k(np.array([[1.0, 2.0]]), 4)
    assert ids.tolist() == [[1, 0, -1, -1]]
    assert np.isneginf(vals[0, 2:]).all()
    ids, vals = top_k(np.array([[1.0, 2.0], [3.0, 4.0]]), 0)
    assert ids.shape == (2, 0) and vals.shape == (2, 0)


def test_rows_exclude_and_mask_nan_minus_inf() -> None:
    scores = np.array([[0.1, 0.9, 0.5, 0.5], [1.0, -np.inf, np.nan, 2.0]])
    ex = sp.csr_matrix(np.array([[0, 1, 0, 0], [0, 0, 0, 1]]))
    ids, vals = top_k(scores, 3, exclude=ex)
    assert ids.tolist() == [[2, 3, 0], [0, -1, -1]]
    assert np.isneginf(vals[1, 1:]).all()
    assert scores[0, 1] == 0.9  # not overwritten unless asked
    top_k(scores, 3, exclude=ex, overwrite=True)
    assert np.isneginf(scores[0, 1])


def test_rows_excluded_items_are_padded_not_returned_when_k_exceeds_what_is_left() -> None:
    scores = np.array([[0.5, 0.1, 0.9, 0.3, 0.2, 0.4]], dtype=np.float32)
    exclude = sp.csr_matrix(np.array([[0, 0, 1, 1, 0, 1]], dtype=np.float32))
    ids, vals = top_k(scores, 5, exclude=exclude)
    assert ids.tolist() == [[0, 4, 1, -1, -1]]
    assert np.isneginf(vals[0, 3:]).all()


def test_rows_above() -> None:
    ids, _ = top_k(np.array([[0.0, 3.0, -1.0, 1.0]]), 3, above=0.0)
    assert ids.tolist() == [[1, 3, -1]]


def test_integer_scores_and_bad_arguments() -> None:
    assert top_k(np.array([3, 1, 2]), 2)[0].tolist() == [0, 2]
    with pytest.raises(ValueError, match="k must be >= 0"):
        top_k(np.ones(3), -1)
    with pytest.raises(ValueError, match="2-D"):
        top_k(np.ones(3), 1, exclude=sp.csr_matrix((1, 3)))
    with pytest.raises(ValueError, match="1-D or 2-D"):
        top_k(np.ones((2, 2, 2)), 1)


def test_matches_a_full_sort_on_random_rows() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, (20, 50)).astype(np.float64)  # many ties
    ex = sp.random(20, 50, density=0.2, random_state=0, format="csr")
    ids, _ = top_k(scores, 7, exclude=ex)
    for r in range(20):
        s = scores[r].copy()
        s[ex[r].indices] = -np.inf
        expect = [i for i in np.lexsort((np.arange(50), -s)) if np.isfinite(s[i])][:7]
        assert ids[r][ids[r] >= 0].tolist() == expect
        assert top_k(s, 7)[0].tolist() == expect
