"""Recency-weighted neighbour peers: the engine's own item-kNN and co-visitation models, each alone.

Each peer is one of the engine's item-to-item models (``shopsense.models``) fitted by itself and
ranked by ``history @ S`` with the engine's recency weighting (the latest item counts most,
``recency_decay`` per step back). So order and recency are credited to the peers exactly as the
engine's sources credit them, and the engine's margin over them is what fusion, the other sources
and the ranker add. No twin of the models lives here: only the evaluation ``Recommender`` wrapper.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from shopsense.data.dataset import Dataset
from shopsense.exceptions import NotFittedError
from shopsense.models.base import Histories
from shopsense.models.covisit import CoVisitModel
from shopsense.models.item_item import ItemItemModel, ItemKNNModel


class ItemItemPeer:
    """An engine item-to-item model as a standalone recommender (full ranking, masked items never returned)."""

    name: str
    model_class: type[ItemItemModel]

    def __init__(self, **config: Any) -> None:
        # the engine's config class validates the settings (a bad grid value fails here, naming the field)
        self.model = self.model_class(**config)
        self.history: Histories | None = None

    def fit(self, train: Dataset) -> Self:
        """Fit the model on ``train`` and keep every user's time-ordered history to score from."""
        self.model.fit(train)
        self.history = Histories.from_dataset(train)
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        """Top-k items per user by recency-weighted neighbour scores, never an item in ``exclude``."""
        if self.history is None:
            raise NotFittedError(f"{self.name}: call fit() first")
        # items without a neighbour in the history score 0 and still fill the list after the rest,
        # as in the plain item-kNN peer
        return self.model.recommend(self.history[np.asarray(user_idx)], k, exclude=exclude)[0]


class RecencyItemKNN(ItemItemPeer):
    """The engine's item-kNN (cosine with shrinkage) scored from a recency-weighted history."""

    model_class = ItemKNNModel
    name = "itemknn-recency"


class CoVisitation(ItemItemPeer):
    """The engine's co-visitation (windowed, distance-weighted sequence pairs) scored from a recency-weighted history."""

    model_class = CoVisitModel
    name = "covisit"
