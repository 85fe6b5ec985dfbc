"""Popularity: time-decayed popularity, trending (recent growth) and popular within a category.

What a user with no history gets, and a feature for everyone else. Decay is measured back from the
newest event in the training data, so the model means the same thing whenever it is trained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import PopularConfig
from shopsense.models.base import Histories, Model
from shopsense.topk import top_k

DAY = 86_400.0


class PopularModel(Model):
    """Time-decayed popularity, trending and popular-in-category."""

    name = "popular"
    config_class = PopularConfig
    config: PopularConfig

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self.popularity = np.zeros(0, np.float32)
        self.trend = np.zeros(0, np.float32)
        self.counts = np.zeros(0, np.float32)  # plain interaction counts
        self.category = np.zeros(0, np.int64)  # category index per item, -1 = none
        self.categories: list[str] = []

    def _fit(self, ds: Dataset, item_vectors: np.ndarray | None) -> None:
        cfg = self.config
        df = ds.interactions
        items = df[C.ITEM_IDX].to_numpy()
        ts = df[C.TIMESTAMP].to_numpy(dtype=np.float64)
        w = df[C.WEIGHT].to_numpy(dtype=np.float64) if cfg.weighted else np.ones(len(df))
        now = ts.max() if len(ts) else 0.0
        age_days = (now - ts) / DAY
        decay = np.ones(len(df)) if cfg.half_life_days is None else 0.5 ** (age_days / cfg.half_life_days)
        n = ds.n_items
        self.popularity = np.bincount(items, weights=w * decay, minlength=n).astype(np.float32)
        self.counts = np.bincount(items, minlength=n).astype(np.float32)
        win = cfg.trend_window_days
        recent = np.bincount(items, weights=w * (age_days <= win), minlength=n)
        before = np.bincount(items, weights=w * ((age_days > win) & (age_days <= 2 * win)), minlength=n)
        # growth with a prior: an item going 0 -> 1 is not "trending" the way 50 -> 100 is
        self.trend = (recent * np.log1p(recent) / (before + 1.0 + recent.mean())).astype(np.float32)
        cats = ds.products[C.CATEGORY] if C.CATEGORY in ds.products.columns else pd.Series([None] * n)
        codes, uniques = pd.factorize(pd.Series(cats, dtype=object).map(top_category), use_na_sentinel=True)
        self.category = np.asarray(codes, dtype=np.int64)
        self.categories = [str(c) for c in uniques]

    def _score(self, histories: Histories) -> np.ndarray:
        row = self.trend if self.config.mode == "trending" else self.popularity
        return np.broadcast_to(row, (len(histories), self.n_items)).copy()

    def top(self, k: int, *, category: str | None = None, trending: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The k most popular (or trending) items, optionally within a top-level category."""
        self._check_fitted()
        s = (self.trend if trending else self.popularity).astype(np.float64).copy()
        if category is not None:
            code = self.category_code(category)
            s[self.category != code] = -np.inf
        return top_k(s, k)

    def category_code(self, category: str) -> int:
        """Index of a category (its top level, case-insensitive); -2 when unknown."""
        key = (top_category(category) or "").lower()
        for i, c in enumerate(self.categories):
            if c.lower() == key:
                return i
        return -2

    def _state(self) -> dict[str, np.ndarray]:
        return {"popularity": self.popularity, "trend": self.trend, "counts": self.counts, "category": self.category}

    def _set_state(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None:
        self.popularity = np.asarray(state["popularity"], np.float32)
        self.trend = np.asarray(state["trend"], np.float32)
        self.counts = np.asarray(state["counts"], np.float32)
        self.category = np.asarray(state["category"], np.int64)
        self.categories = list(extra.get("categories", []))

    def _extra(self) -> dict[str, Any]:
        return {"categories": self.categories}


def top_category(path: Any) -> str | None:
    """``"Kitchen > Appliances > Kettles"`` -> ``"Kitchen"`` (None for missing values)."""
    if not isinstance(path, str) or not path.strip():
        return None
    for sep in (">", "|", "/"):
        if sep in path:
            return path.split(sep, 1)[0].strip() or None
    return path.strip()
