"""Lists for shoppers without item history: a named chain of fallbacks, tried in order.

In the manner of Gorse's fallback recommenders: ``query_match`` (the request's query or the
shopper's latest search, matched against product text), ``popular_in_category`` (the request's
category), ``trending`` (trending and popular blended; always applies). The chain is
``[online] fallbacks`` in the settings. The same popular lists fill a list the filters left short.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from shopsense.engine_config import Fallback
from shopsense.models.base import member_of
from shopsense.models.popular import PopularModel
from shopsense.ranking.rules import Catalog, Filters, allowed
from shopsense.topk import top_k


@dataclass
class Ranked:
    """Candidates best first: item indices, scores and the source of each."""

    items: np.ndarray
    scores: np.ndarray
    sources: list[str]

    def __len__(self) -> int:
        return len(self.items)

    def where(self, keep: np.ndarray) -> Ranked:
        return Ranked(self.items[keep], self.scores[keep], [s for s, k in zip(self.sources, keep, strict=True) if k])

    def take(self, order: np.ndarray) -> Ranked:
        return Ranked(self.items[order], self.scores[order], [self.sources[i] for i in order])


class Fallbacks:
    """The fallback chain over one served version's popularity, text vectors and catalog."""

    def __init__(
        self, popular: PopularModel, catalog: Catalog, vectors: np.ndarray | None, ann: Any, min_list: int
    ) -> None:
        self.popular = popular
        self.catalog = catalog
        self.vectors = vectors  # the model items' text vectors (query_match)
        self.ann = ann  # the content model's index over them, for large catalogs (None: exact)
        self.min_list = min_list
        self._category_cache: dict[str, np.ndarray] = {}
        self._trending_cache: Ranked | None = None

    def first(self, chain: tuple[Fallback, ...], pool: int, category: str | None, query: np.ndarray | None) -> Ranked:
        """The list of the first fallback of ``chain`` that applies (trending always does)."""
        for name in chain:
            found = self.run(name, pool, category, query)
            if found is not None:
                return found
        return self.trending(pool)

    def run(self, name: Fallback, pool: int, category: str | None, query: np.ndarray | None) -> Ranked | None:
        if name == "query_match":
            return self.query_match(pool, query)
        if name == "popular_in_category":
            return self.popular_in_category(pool, category)
        return self.trending(pool)

    # ------------------------------------------------------------------ the fallbacks
    def query_match(self, pool: int, query: np.ndarray | None) -> Ranked | None:
        """The query's best text matches, nudged by popularity; None without a query or text."""
        if query is None or self.vectors is None:
            return None
        counts = self.popular.counts
        bonus = np.log1p(counts) / max(float(np.log1p(counts.max())), 1e-9)
        n = min(pool, len(self.vectors))
        if self.ann is not None:  # large catalog: the index, not a product per item
            items, sims = self.ann.search_positions(query, n)
        else:
            sim = self.vectors @ query
            items = top_k(sim + 0.05 * bonus, n)[0]
            sims = sim[items]
        score = sims + 0.05 * bonus[items]
        order = np.argsort(-score, kind="stable")
        return Ranked(items[order], score[order].astype(np.float32), ["search"] * len(items))

    def popular_in_category(self, pool: int, category: str | None) -> Ranked | None:
        if not category:
            return None
        items = self.in_category(category)[:pool]
        return Ranked(items, self.popular.popularity[items].astype(np.float32), ["popular_in_category"] * len(items))

    def trending(self, pool: int) -> Ranked:
        """Trending first, then popular: a stable blend of both ranks (the same for every request)."""
        if self._trending_cache is None:
            pop = self.popular
            tr = np.argsort(-pop.trend, kind="stable")
            po = np.argsort(-pop.popularity, kind="stable")
            rank_tr, rank_po = np.empty(len(tr)), np.empty(len(po))
            rank_tr[tr], rank_po[po] = np.arange(len(tr)), np.arange(len(po))
            blend = 1.0 / (10 + rank_tr) + 1.0 / (10 + rank_po)
            items = top_k(blend, max(self.min_list, 1000))[0]
            src = ["trending" if rank_tr[i] <= rank_po[i] else "popular" for i in items]
            self._trending_cache = Ranked(items, blend[items].astype(np.float32), src)
        t = self._trending_cache
        return Ranked(t.items[:pool], t.scores[:pool], t.sources[:pool])

    # ------------------------------------------------------------------ filling a short list
    def fill(self, ranked: Ranked, k: int, category: str | None, filters: Filters, seen: set[int]) -> Ranked:
        """``ranked`` followed by the most popular allowed products not in it (scored below it)."""
        if category:
            extra, how = self.in_category(category), "popular_in_category"
        else:
            extra, how = self.trending(len(self.popular.counts)).items, "popular"
        extra = extra[~member_of(extra, ranked.items)]
        extra = extra[allowed(extra, self.catalog, filters, seen)][: k - len(ranked)]
        low = float(ranked.scores.min()) if len(ranked) else 0.0
        fill = low - 1.0 - np.arange(len(extra), dtype=np.float32)
        return Ranked(
            np.concatenate([ranked.items, extra]).astype(np.int64),
            np.concatenate([ranked.scores, fill]).astype(np.float32),
            [*ranked.sources, *[how] * len(extra)],
        )

    def in_category(self, category: str) -> np.ndarray:
        """Model items of a category (any level of the path), most popular first; cached per category."""
        key = category.strip().lower()
        if key not in self._category_cache:
            n = len(self.popular.counts)
            mask = self.catalog.in_categories(np.arange(n), [category])
            items = np.flatnonzero(mask)
            if len(self._category_cache) >= 1024:  # bounded: categories come from requests
                self._category_cache.clear()
            self._category_cache[key] = items[np.argsort(-self.popular.popularity[items], kind="stable")]
        return self._category_cache[key]
