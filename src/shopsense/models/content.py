"""Content profile: a recency-weighted mean of the text vectors the user touched and searched for.

Score = cosine between that profile and each product's text vector, so products with no events
(cold items) are recommended to users whose interests match their text, and a search a moment ago
(query vector in the history) already moves the profile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from shopsense.data.dataset import Dataset
from shopsense.engine_config import ContentConfig
from shopsense.exceptions import ConfigError
from shopsense.models.base import Histories
from shopsense.models.indexed import VectorModel


def in_item_space(query_vectors: np.ndarray, width: int) -> np.ndarray:
    """Text vectors of queries as vectors of the item space: item vectors with product pictures fused
    in (:mod:`shopsense.images`) start with their text part, so a query pads with zeros (its cosine
    with a product is the text cosine scaled by the text's share)."""
    q = np.asarray(query_vectors)
    if q.shape[-1] >= width:
        return q
    pad = [(0, 0)] * (q.ndim - 1) + [(0, width - q.shape[-1])]
    return np.pad(q, pad)


def content_profile(
    vectors: np.ndarray,
    rows: np.ndarray,
    weights: np.ndarray | None,
    query_vectors: np.ndarray | None,
    config: ContentConfig,
) -> np.ndarray:
    """The one user profile (recommendations and search personalise on it): the L2-normalised,
    recency-weighted mean of the vectors of the user's items (``rows`` into ``vectors``, oldest
    first, scaled by their event weights) and of their searched queries (oldest first); zeros
    without either. Query vectors narrower than ``vectors`` (text vectors, where the item vectors
    have image vectors fused in after their text part, :mod:`shopsense.images`) are padded with zeros."""
    cfg = config
    acc = np.zeros(vectors.shape[1], np.float64)
    h = np.asarray(rows, dtype=np.int64)[-cfg.max_history :]
    if len(h):
        w = cfg.recency_decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64)
        if cfg.event_weighted and weights is not None:
            ew = np.asarray(weights, np.float64)[-cfg.max_history :]
            w = w * np.where(ew > 0, ew / max(ew.max(), 1e-9), 1.0)
        acc += w @ vectors[h]
    if query_vectors is not None and len(query_vectors) and cfg.query_weight > 0:
        q = in_item_space(np.asarray(query_vectors, np.float64), vectors.shape[1])
        acc += (cfg.query_weight * cfg.recency_decay ** np.arange(len(q) - 1, -1, -1, dtype=np.float64)) @ q
    norm = np.linalg.norm(acc)
    return (acc / norm).astype(np.float32) if norm > 0 else np.zeros(vectors.shape[1], np.float32)


class ContentModel(VectorModel):
    """Recency-weighted text profile of the user vs. product text vectors."""

    name = "content"
    config_class = ContentConfig
    config: ContentConfig

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.vectors = np.zeros((0, 0), np.float32)

    def _fit(self, ds: Dataset, item_vectors: np.ndarray | None) -> None:
        if item_vectors is None:
            raise ConfigError("content model needs item_vectors (text vectors of the catalog)")
        self.set_vectors(item_vectors)

    def set_vectors(self, item_vectors: np.ndarray) -> None:
        """Replace the catalog vectors (new products) without refitting anything else."""
        self.vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.n_items = len(self.vectors)
        self._forget_index()

    def profiles(self, histories: Histories) -> np.ndarray:
        """(n, d) L2-normalised user profiles (zeros for users with no items and no queries)."""
        out = np.zeros((len(histories), self.vectors.shape[1]), np.float32)
        for i, h in enumerate(histories.items):
            w = None if histories.weights is None else histories.weights[i]
            q = None if histories.queries is None else histories.queries[i]
            out[i] = content_profile(self.vectors, h, w, q, self.config)
        return out

    def user_vectors(self, histories: Histories) -> np.ndarray:
        return self.profiles(histories)

    def item_vectors(self) -> np.ndarray:
        return self.vectors

    def _state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors}

    def _set_state(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.set_vectors(state["vectors"])
