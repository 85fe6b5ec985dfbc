"""Matrix-factorisation peers from the ``implicit`` library: ALS and BPR."""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from shopsense.data.dataset import Dataset
from shopsense.exceptions import NotFittedError
from shopsense.topk import top_k


def _single_blas_thread() -> Any:
    # implicit runs its own threads; a multi-threaded BLAS underneath oversubscribes the cores
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, "blas")


class _FactorPeer:
    name = "factors"

    def __init__(self, **params: Any) -> None:
        self.params = params
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None

    def _make(self) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _matrix(self, train: Dataset) -> sp.csr_matrix:
        return train.user_item_matrix(weighted=False, binary=True)

    def fit(self, train: Dataset) -> Self:
        model = self._make()
        with _single_blas_thread():
            model.fit(self._matrix(train), show_progress=False)
        self.user_factors = np.asarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.asarray(model.item_factors, dtype=np.float32)
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        if self.user_factors is None or self.item_factors is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        scores = self.user_factors[user_idx] @ self.item_factors.T
        return top_k(scores, k, exclude=exclude, overwrite=True)[0]


class ALS(_FactorPeer):
    """Implicit-feedback ALS (Hu, Koren, Volinsky 2008) on binary interactions scaled by ``alpha``."""

    name = "als"

    def __init__(
        self, factors: int = 64, regularization: float = 0.01, alpha: float = 10.0, iterations: int = 15, seed: int = 0
    ) -> None:
        super().__init__(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations, seed=seed)

    def _make(self) -> Any:
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        return AlternatingLeastSquares(
            factors=p["factors"],
            regularization=p["regularization"],
            alpha=p["alpha"],
            iterations=p["iterations"],
            random_state=p["seed"],
        )


class BPR(_FactorPeer):
    """Bayesian personalised ranking (Rendle et al. 2009) with SGD."""

    name = "bpr"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        iterations: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            seed=seed,
        )

    def _make(self) -> Any:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self.params
        return BayesianPersonalizedRanking(
            factors=p["factors"],
            learning_rate=p["learning_rate"],
            regularization=p["regularization"],
            iterations=p["iterations"],
            random_state=p["seed"],
        )
