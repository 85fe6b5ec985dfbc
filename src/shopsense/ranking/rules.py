"""Filters and business rules applied after ranking, and MMR diversity.

Rules: drop what the user already bought or saw (which event types count is configurable),
unavailable products, categories outside an include list or inside an exclude list, prices outside
a range. Diversity: maximal marginal relevance over the text vectors with a tunable weight.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from pydantic import Field

from shopsense import columns as C
from shopsense.config import StrictModel
from shopsense.models.base import member_of


class Filters(StrictModel):
    """What a request may exclude. Category matching is case-insensitive on any level of the path."""

    exclude_seen: tuple[str, ...] = Field(
        (C.VIEW, C.CLICK, C.FAVORITE, C.ADD_TO_CART, C.PURCHASE, C.RATING),
        description="event types whose items are never recommended again to that user",
    )
    only_available: bool = True
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    price_min: float | None = Field(None, ge=0)
    price_max: float | None = Field(None, ge=0)


class Catalog:
    """Per-item columns the rules read, aligned with the model's item indices."""

    def __init__(self, products: pd.DataFrame) -> None:
        n = len(products)

        def col(name: str, default: object) -> pd.Series:
            return products[name] if name in products.columns else pd.Series([default] * n)

        self.available = col(C.AVAILABLE, True).astype(object).map(lambda v: True if v is None or v != v else bool(v))
        self.available = self.available.to_numpy(dtype=bool)
        self.price = pd.to_numeric(col(C.PRICE, np.nan), errors="coerce").to_numpy(dtype=np.float64)
        cats = col(C.CATEGORY, None).astype(object)
        self.category_levels = [_levels(c) for c in cats]
        self.category = cats.map(lambda c: c if isinstance(c, str) else "").to_numpy(dtype=object)
        self.title = (
            col(C.TITLE, "").astype(object).map(lambda t: t if isinstance(t, str) else "").to_numpy(dtype=object)
        )

    def __len__(self) -> int:
        return len(self.available)

    def in_categories(self, items: np.ndarray, categories: Sequence[str]) -> np.ndarray:
        wanted = {c.strip().lower() for c in categories}
        return np.array([bool(self.category_levels[i] & wanted) for i in items], dtype=bool)


def _levels(path: object) -> frozenset[str]:
    """Every level and prefix of a category path, lower-cased: 'A > B' -> {'a', 'b', 'a > b'}."""
    if not isinstance(path, str) or not path.strip():
        return frozenset()
    parts = [p.strip().lower() for p in path.replace("|", ">").split(">") if p.strip()]
    prefixes = {" > ".join(parts[: i + 1]) for i in range(len(parts))}
    return frozenset(parts) | prefixes | {path.strip().lower()}


def allowed(items: np.ndarray, catalog: Catalog, filters: Filters, seen: set[int] | None = None) -> np.ndarray:
    """Boolean mask over ``items`` (indices into the catalog) of what the rules let through."""
    items = np.asarray(items, dtype=np.int64)
    ok = items >= 0
    safe = np.where(ok, items, 0)
    if filters.only_available:
        ok &= catalog.available[safe]
    if seen:
        ok &= ~member_of(items, np.fromiter(seen, dtype=np.int64, count=len(seen)))
    if filters.include_categories:
        ok &= catalog.in_categories(safe, filters.include_categories)
    if filters.exclude_categories:
        ok &= ~catalog.in_categories(safe, filters.exclude_categories)
    price = catalog.price[safe]
    if filters.price_min is not None:
        ok &= price >= filters.price_min  # unknown price (NaN) fails a price filter
    if filters.price_max is not None:
        ok &= price <= filters.price_max
    return ok


def mmr(items: np.ndarray, scores: np.ndarray, vectors: np.ndarray | None, k: int, weight: float) -> np.ndarray:
    """Maximal marginal relevance: pick ``k`` of ``items`` trading relevance for dissimilarity.

    ``weight`` = 0 keeps the ranking order; 1 only cares about diversity. Relevance is the score
    rescaled to [0, 1] within the list so the trade-off means the same for any model.
    Returns positions into ``items``.
    """
    n = len(items)
    if weight <= 0 or vectors is None or n <= 1:
        return np.arange(min(k, n))
    s = np.asarray(scores, np.float64)
    finite = np.isfinite(s)
    lo, hi = (s[finite].min(), s[finite].max()) if finite.any() else (0.0, 1.0)
    rel = np.where(finite, (s - lo) / (hi - lo + 1e-12), 0.0)
    v = vectors[items]
    sim = v @ v.T
    chosen = [int(np.argmax(rel))]
    max_sim = sim[chosen[0]].copy()
    while len(chosen) < min(k, n):
        value = (1 - weight) * rel - weight * max_sim
        value[chosen] = -np.inf
        nxt = int(np.argmax(value))
        chosen.append(nxt)
        max_sim = np.maximum(max_sim, sim[nxt])
    return np.asarray(chosen)
