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
        cfg = self.config
        d = self.vectors.shape[1]
        out = np.zeros((len(histories), d), np.float32)
        for i, h in enumerate(histories.items):
            h = h[-cfg.max_history :]
            acc = np.zeros(d, np.float64)
            if len(h):
                w = cfg.recency_decay ** np.arange(len(h) - 1, -1, -1, dtype=np.float64)
                if cfg.event_weighted and histories.weights is not None:
                    ew = histories.weights[i][-cfg.max_history :].astype(np.float64)
                    w = w * np.where(ew > 0, ew / max(ew.max(), 1e-9), 1.0)
                acc += w @ self.vectors[h]
            q = None if histories.queries is None else histories.queries[i]
            if q is not None and len(q) and cfg.query_weight > 0:
                qw = cfg.query_weight * cfg.recency_decay ** np.arange(len(q) - 1, -1, -1, dtype=np.float64)
                acc += qw @ np.asarray(q, np.float64)
            norm = np.linalg.norm(acc)
            if norm > 0:
                out[i] = acc / norm
        return out

    def user_vectors(self, histories: Histories) -> np.ndarray:
        return self.profiles(histories)

    def item_vectors(self) -> np.ndarray:
        return self.vectors

    def _state(self) -> dict[str, np.ndarray]:
        return {"vectors": self.vectors}

    def _set_state(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.set_vectors(state["vectors"])
