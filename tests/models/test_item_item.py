"""Item-item scoring helpers."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shopsense.models.item_item import weighted_row_sum


def test_weighted_row_sum_is_the_sparse_product_and_keeps_entries_that_cancel() -> None:
    sim = sp.random(40, 40, density=0.2, format="csr", dtype=np.float32, random_state=1)
    sim[3, 7], sim[5, 7] = 1.0, -1.0  # item 7 gets 1.0 * 1 + (-1.0) * 1 = 0 from rows 3 and 5
    rows = np.array([3, 5, 11, 20])
    weights = np.array([1.0, 1.0, 0.5, 0.25], np.float32)
    items, vals = weighted_row_sum(sim, rows, weights)
    row = (sp.csr_matrix((weights, (np.zeros(4, int), rows)), shape=(1, 40)) @ sim).tocsr()
    listed = np.unique(np.concatenate([sim[r].indices for r in rows]))
    assert items.dtype == np.int64 and vals.dtype == np.float32
    np.testing.assert_array_equal(items, listed)  # sorted, every neighbour listed once
    assert 7 in items and vals[np.searchsorted(items, 7)] == 0.0
    np.testing.assert_allclose(vals, row.toarray()[0][items], rtol=1e-6)
    empty = weighted_row_sum(sim, np.zeros(0, np.int64), np.zeros(0, np.float32))
    assert len(empty[0]) == 0 and len(empty[1]) == 0
