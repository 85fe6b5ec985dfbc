"""Most-popular peer: the same list for everyone, ordered by interaction count."""

from __future__ import annotations

from typing import Self

import numpy as np
import scipy.sparse as sp

from shopsense.data.dataset import Dataset


class MostPopular:
    """Items by number of interactions in the training data (ties: lower item index first).

    ``counted_on`` replaces the counting data: the S3-Rec reference code counts popularity over ALL
    interactions (test targets included), which is how its published PopRec numbers were made.
    That variant leaks the test set and exists only to check the protocol against the literature.
    """

    def __init__(self, counted_on: Dataset | None = None, name: str | None = None) -> None:
        self.counted_on = counted_on
        self.name = name or ("pop-all" if counted_on is not None else "pop")
        self.scores_: np.ndarray | None = None

    def fit(self, train: Dataset) -> Self:
        src = self.counted_on if self.counted_on is not None else train
        self.scores_ = src.item_popularity().astype(np.float64)
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self.scores_ is None:
            from shopsense.exceptions import NotFittedError

            raise NotFittedError(f"{self.name}: call fit() first")
        # The ranking is the same for everyone: walk it and keep each row's first k non-excluded items
        # (deterministic: ties keep the lower item index). Only k + the longest exclusion row can be needed.
        longest = int(np.diff(exclude.indptr).max()) if exclude.nnz else 0
        m = min(len(self.scores_), k + longest)
        cand = np.argsort(-self.scores_, kind="stable")[:m]
        ok = exclude[:, cand].toarray() == 0
        pos = np.cumsum(ok, axis=1) - 1  # rank among allowed items
        out = np.full((len(user_idx), k), -1, dtype=np.int64)
        r, c = np.nonzero(ok & (pos < k))
        out[r, pos[r, c]] = cand[c]
        return out
