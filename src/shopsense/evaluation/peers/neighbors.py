"""Item-based peers: item-kNN with cosine similarity and EASE (closed-form linear item model)."""

from __future__ import annotations

import warnings
from typing import Self

import numpy as np
import scipy.sparse as sp

from shopsense.data.dataset import Dataset
from shopsense.exceptions import NotFittedError
from shopsense.topk import top_k


class ItemKNN:
    """Item-based collaborative filtering: score = sum of cosine similarities to the user's items,
    each item keeping its ``neighbors`` most similar items (``implicit``'s CosineRecommender)."""

    name = "itemknn"

    def __init__(self, neighbors: int = 100) -> None:
        self.neighbors = neighbors
        self.history: sp.csr_matrix | None = None
        self.similarity: sp.csr_matrix | None = None

    def fit(self, train: Dataset) -> Self:
        from implicit.nearest_neighbours import CosineRecommender

        x = train.user_item_matrix(weighted=False, binary=True)
        model = CosineRecommender(K=self.neighbors)
        with warnings.catch_warnings():  # implicit converts its own normalised COO copy back to CSR and warns
            warnings.simplefilter("ignore")
            model.fit(x, show_progress=False)
        self.history = x
        self.similarity = model.similarity.tocsr().astype(np.float32)
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self.history is None or self.similarity is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        scores = (self.history[user_idx] @ self.similarity).toarray()
        # items with no similarity to the history score 0; they still fill the list after the rest
        return top_k(scores, k, exclude=exclude, overwrite=True)[0]


class EASE:
    """Embarrassingly Shallow Autoencoder (Steck 2019): B = I - P diagMat(1 / diag(P)), P = (X'X + lambda I)^-1,
    with diag(B) = 0. Dense items x items: fine up to a few tens of thousands of items."""

    name = "ease"

    def __init__(self, l2: float = 500.0) -> None:
        self.l2 = l2
        self.history: sp.csr_matrix | None = None
        self.weights: np.ndarray | None = None

    def fit(self, train: Dataset) -> Self:
        x = train.user_item_matrix(weighted=False, binary=True)
        g = np.asarray((x.T @ x).toarray(), dtype=np.float32)
        g[np.diag_indices_from(g)] += self.l2
        p = _spd_inverse_inplace(g)
        p /= -np.diag(p)[None, :]
        p[np.diag_indices_from(p)] = 0.0
        self.history = x
        self.weights = p
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self.history is None or self.weights is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        scores = np.asarray(self.history[user_idx] @ self.weights)
        return top_k(scores, k, exclude=exclude, overwrite=True)[0]


def _spd_inverse_inplace(a: np.ndarray, block: int = 2048) -> np.ndarray:
    """Inverse of a symmetric positive definite float32 matrix by Cholesky, in place.

    One n x n buffer instead of the three ``np.linalg.inv`` allocates (VideoGames: 17k items = 1.1 GB each).
    """
    from scipy.linalg import lapack

    if not a.flags.f_contiguous:
        a = a.T  # symmetric: the transposed view is the same matrix, in LAPACK's (Fortran) layout
    c, info = lapack.spotrf(a, lower=1, overwrite_a=1, clean=0)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: Cholesky failed (info={info}); raise l2")
    inv, info = lapack.spotri(c, lower=1, overwrite_c=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"EASE: inverse failed (info={info})")
    # only the lower triangle is the inverse: mirror it into the upper one, block by block
    n = inv.shape[0]
    for s in range(0, n, block):
        e = min(s + block, n)
        inv[s:e, e:] = inv[e:, s:e].T
        d = inv[s:e, s:e]
        inv[s:e, s:e] = np.tril(d) + np.tril(d, -1).T
    return inv if inv.flags.c_contiguous else inv.T  # symmetric: either view is the inverse
