"""Search filters (category, brand, price range, availability) and facet counts.

Filters are a plain mapping, the same one the CLI (``--filter category=Kitchen``) and the HTTP API
(``?category=...&min_price=...``) build:

- ``category``: a category path or a prefix of one (``"Kitchen"`` keeps ``"Kitchen > Microwaves"``),
  case-insensitive; a list means any of them;
- ``brand``: exact brand, case-insensitive; a list means any of them;
- ``min_price`` / ``max_price``: inclusive bounds (products without a price are dropped by either);
- ``available``: ``True`` keeps products in stock.

They become one boolean mask over the catalog, applied inside both retrievers, so a filtered query
still returns k products when k exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C

FILTER_KEYS = ("category", "brand", "min_price", "max_price", "available")
FACET_FIELDS = (C.CATEGORY, C.BRAND, C.PRICE, C.AVAILABLE)
#: price facet buckets (upper bounds); the last bucket is open-ended
PRICE_BUCKETS = (10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0)
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def _as_list(v: Any) -> list[str]:
    if isinstance(v, list | tuple | set):
        return [str(x) for x in v]
    return [s for s in str(v).split("|")] if isinstance(v, str) else [str(v)]


def _as_bool(key: str, v: Any) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError(f"filter {key!r} must be true or false, not {v!r}")


def _as_float(key: str, v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        raise ValueError(f"filter {key!r} must be a number, not {v!r}") from None


class CatalogColumns:
    """The catalog columns filters and facets read, as arrays aligned with product rows."""

    def __init__(self, products: pd.DataFrame) -> None:
        n = len(products)

        def text(col: str) -> np.ndarray:
            if col not in products.columns:
                return np.full(n, "", dtype=object)
            return np.array(["" if not isinstance(v, str) else v.strip() for v in products[col]], dtype=object)

        self.category = text(C.CATEGORY)
        self.brand = text(C.BRAND)
        self.category_lower = np.array([v.lower() for v in self.category], dtype=object)
        self.brand_lower = np.array([v.lower() for v in self.brand], dtype=object)
        # value codes (values sorted by name): a facet is one bincount, not a Counter per candidate
        self._codes = {name: _codes(values) for name, values in ((C.CATEGORY, self.category), (C.BRAND, self.brand))}
        price = pd.to_numeric(products[C.PRICE], errors="coerce") if C.PRICE in products.columns else None
        self.price = np.full(n, np.nan) if price is None else price.to_numpy(dtype=float, na_value=np.nan)
        if C.AVAILABLE in products.columns:
            self.available = products[C.AVAILABLE].fillna(True).astype(bool).to_numpy()
        else:
            self.available = np.ones(n, dtype=bool)
        self.n = n

    def mask(self, filters: Mapping[str, Any] | None) -> np.ndarray | None:
        """Boolean mask of the products that pass ``filters`` (``None`` when there is no filter)."""
        if not filters:
            return None
        unknown = set(filters) - set(FILTER_KEYS)
        if unknown:
            raise ValueError(f"unknown filter {sorted(unknown)[0]!r}; valid: {', '.join(FILTER_KEYS)}")
        m = np.ones(self.n, dtype=bool)
        for key, value in filters.items():
            if value is None:
                continue
            if key == "category":
                wanted = [w.strip().lower() for w in _as_list(value) if w.strip()]
                m &= np.array(
                    [
                        any(c == w or c.startswith(w + " >") or c.startswith(w + ">") for w in wanted)
                        for c in self.category_lower
                    ],
                    dtype=bool,
                )
            elif key == "brand":
                wanted_set = {w.strip().lower() for w in _as_list(value)}
                m &= np.isin(self.brand_lower, list(wanted_set))
            elif key == "min_price":
                m &= self.price >= _as_float(key, value)
            elif key == "max_price":
                m &= self.price <= _as_float(key, value)
            elif key == "available" and _as_bool(key, value):
                m &= self.available
        return m

    def facets(self, rows: np.ndarray, top: int = 20) -> dict[str, dict[str, int]]:
        """Counts of category, brand, price bucket and availability over the matching ``rows``."""
        rows = np.asarray(rows, dtype=np.int64)
        out: dict[str, dict[str, int]] = {}
        for name, (names, codes) in self._codes.items():
            counts = np.bincount(codes[rows], minlength=len(names))
            if names[0] == "":
                counts[0] = 0  # no value: not a facet
            order = np.argsort(-counts, kind="stable")[:top]  # ties by name: the names are sorted
            top_counts = {str(names[i]): int(counts[i]) for i in order if counts[i] > 0}
            if top_counts:
                out[name] = top_counts
        prices = self.price[rows]
        prices = prices[~np.isnan(prices)]
        if len(prices):
            edges = (0.0, *PRICE_BUCKETS)
            buckets: dict[str, int] = {}
            for lo, hi in zip(edges, (*PRICE_BUCKETS, np.inf), strict=True):
                c = int(((prices >= lo) & (prices < hi)).sum())
                if c:
                    buckets[f"{lo:g}-{hi:g}" if np.isfinite(hi) else f"{lo:g}+"] = c
            out[C.PRICE] = buckets
        avail = self.available[rows]
        out[C.AVAILABLE] = {k: v for k, v in {"true": int(avail.sum()), "false": int((~avail).sum())}.items() if v}
        return out


def _codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values, each row's index among them)."""
    if len(values) == 0:
        return np.array([""], dtype=object), np.zeros(0, dtype=np.int64)
    names, codes = np.unique(values.astype(str), return_inverse=True)
    return names.astype(object), codes.astype(np.int64)


def parse_filter_args(args: list[str] | None) -> dict[str, Any]:
    """``["category=Kitchen", "min_price=10"]`` (CLI form) -> a filters mapping; repeated keys make a list."""
    out: dict[str, Any] = {}
    for a in args or []:
        if "=" not in a:
            raise ValueError(f"filter {a!r} is not key=value; valid keys: {', '.join(FILTER_KEYS)}")
        k, v = (s.strip() for s in a.split("=", 1))
        if k not in FILTER_KEYS:
            raise ValueError(f"unknown filter {k!r}; valid: {', '.join(FILTER_KEYS)}")
        if k in out and k in ("category", "brand"):
            out[k] = [*_as_list(out[k]), v]
        else:
            out[k] = v
    return out
