"""Collaborative filtering: ALS on the weighted user-item matrix (the ``implicit`` library).

Users are folded in at request time from their live history (one small least-squares solve), so a
new user or a new event needs no retraining. Items without any training event get their factors
from their text through the content -> collaborative mapping (:mod:`shopsense.models.cold`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shopsense.data.dataset import Dataset
from shopsense.engine_config import ALSConfig
from shopsense.models.base import Histories, Model
from shopsense.models.cold import ContentMapping


class ALSModel(Model):
    """Implicit-feedback ALS; users folded in from their history at scoring time."""

    name = "als"
    config_class = ALSConfig
    config: ALSConfig

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._gram: tuple[np.ndarray, np.ndarray] | None = None  # the factors in float64, and Y^T Y + reg I
        self.item_factors = np.zeros((0, 0), np.float32)

    @property
    def item_factors(self) -> np.ndarray:
        return self._item_factors

    @item_factors.setter
    def item_factors(self, factors: np.ndarray) -> None:
        self._item_factors = factors
        self._gram = None

    def _fit(self, ds: Dataset, item_vectors: np.ndarray | None) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        cfg = self.config
        x = ds.user_item_matrix(weighted=True)
        x.data = np.log1p(x.data).astype(np.float32)  # dampen heavy repeat users
        als = AlternatingLeastSquares(
            factors=cfg.factors,
            regularization=cfg.regularization,
            alpha=cfg.alpha,
            iterations=cfg.iterations,
            num_threads=cfg.threads,
            random_state=cfg.seed,
        )
        als.fit(x.tocsr(), show_progress=False)
        factors = np.asarray(als.item_factors, dtype=np.float32)
        if cfg.map_cold_items and item_vectors is not None:
            warm = np.asarray(x.sum(axis=0)).ravel() > 0
            if warm.sum() >= 2 and (~warm).any():
                mapping = ContentMapping().fit(item_vectors[warm], factors[warm])
                factors[~warm] = mapping.transform(item_vectors[~warm])
        self.item_factors = factors

    def user_factors(self, histories: Histories) -> np.ndarray:
        """Least-squares user factors from each history (the ALS user step with confidence weights)."""
        cfg = self.config
        if self._gram is None:  # once per model: at 100k items it cost some 20 ms of every request
            y = self.item_factors.astype(np.float64)
            self._gram = y, y.T @ y + cfg.regularization * np.eye(y.shape[1])
        y, yty = self._gram
        out = np.zeros((len(histories), y.shape[1]), np.float32)
        for i, h in enumerate(histories.items):
            if not len(h):
                continue
            items, inv = np.unique(h, return_inverse=True)
            w = np.bincount(inv, weights=histories.weights_of(i).astype(np.float64), minlength=len(items))
            conf = 1.0 + cfg.alpha * np.log1p(w)
            yh = y[items]
            a = yty + (yh.T * (conf - 1.0)) @ yh
            out[i] = np.linalg.solve(a, yh.T @ conf)
        return out

    def _score(self, histories: Histories) -> np.ndarray:
        return self.user_factors(histories) @ self.item_factors.T

    def _state(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors}

    def _set_state(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.item_factors = np.asarray(state["item_factors"], np.float32)
