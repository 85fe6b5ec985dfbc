"""Online recommendations: the served model version + the user's latest events read at request time.

A request reads the user's newest events from the knowledge store, so a view or a search a moment
ago already shapes the list (no retraining). Users with no item events get trending and
popular-in-context (the request's category, or its query matched against product text); with a
few events co-visitation, content and the sequential model take over through the engine. Products
with no events (new ones) whose text matches the user's interests get a reserved slot.
Then: filters and business rules, MMR diversity, and a reason for every item.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.data.dataset import ITEM_EVENT_TYPES
from shopsense.data.idmap import IdMap
from shopsense.engine_config import OnlineConfig
from shopsense.index.vector import VectorIndex
from shopsense.models.base import Histories, member_of
from shopsense.ranking import explain as X
from shopsense.ranking.pipeline import Engine
from shopsense.ranking.rules import Catalog, Filters, allowed, mmr
from shopsense.store import KnowledgeStore
from shopsense.training import active_folder

COLD_INDEX_MIN = 5_000  # products without events beyond which the new-product slot searches an index
COLD_CANDIDATES = 20  # closest new products looked at for the slot (the first the filters allow wins)


@dataclass
class Recommendation:
    item_id: str
    score: float
    source: str
    explanation: str
    title: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "item_id": self.item_id,
            "score": self.score,
            "source": self.source,
            "explanation": self.explanation,
            "title": self.title,
        }


class OnlineRecommender:
    """Serves one model version; cheap to call per request (the heavy parts load once)."""

    def __init__(
        self,
        store: KnowledgeStore,
        settings: Settings,
        folder: Path,
        config: OnlineConfig | None = None,
        encoder: Any = None,
    ):
        self.store = store
        self.settings = settings
        self.config = config or settings.online
        self.folder = folder
        self.version = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))["version"]
        self.engine = Engine.load(folder / "engine").warm()
        self.items = IdMap.load(folder / "items.json")
        self.items.to_internal([])  # builds the id lookup now, not on the first request
        self.weights = settings.event_weights.as_dict()
        content = self.engine.models.get("content")
        self.vectors: np.ndarray | None = getattr(content, "vectors", None)
        self._encoder: Any = encoder  # the query encoder; loaded on first use unless shared (the service's)
        self.reload_catalog()
        _ = self._trending

    @classmethod
    def from_store(
        cls, store: KnowledgeStore, settings: Settings, config: OnlineConfig | None = None
    ) -> OnlineRecommender:
        """The recommender of the active version (NoModelError when nothing is trained)."""
        return cls(store, settings, active_folder(store, settings), config)

    def reload_catalog(self) -> None:
        """Re-read product metadata (availability, price, category) for the rules; products added since
        training that the model does not know are embedded so they can take the new-product slot."""
        products = self.store.products()
        aligned = products.set_index(C.ITEM).reindex(self.items.external_ids).reset_index(names=C.ITEM)
        self.catalog = Catalog(aligned)
        self._category_cache: dict[str, np.ndarray] = {}
        self._trending_cache: tuple[np.ndarray, np.ndarray, list[str]] | None = None
        self.cold_items = np.flatnonzero(self.engine.popular.counts == 0) if self.engine.popular else np.zeros(0, int)
        # one contiguous block (gathering the rows of every cold item per request costs milliseconds),
        # and an HNSW index once there are many (about 2 s to build for 8k x 384, once per load)
        self.cold_vectors = None if self.vectors is None else np.ascontiguousarray(self.vectors[self.cold_items])
        self.cold_index: VectorIndex | None = None
        if self.cold_vectors is not None and len(self.cold_items) >= COLD_INDEX_MIN:
            # one slot wants a close match, not the exact best: a short graph walk (ef 32) will do
            self.cold_index = VectorIndex(exact_threshold=COLD_INDEX_MIN, ef_construction=100, ef_search=32).build(
                self.cold_vectors
            )
        new = products[~products[C.ITEM].isin(set(self.items.external_ids))]
        self.new_products = new.reset_index(drop=True)
        self.new_vectors: np.ndarray | None = None
        if len(new) and self.vectors is not None:
            from shopsense.training import product_vectors

            self.new_vectors = product_vectors(new, self.settings, self.store)

    def use_encoder(self, encoder: Any) -> None:
        """Share an already loaded text encoder (the search engine's) for the user's search queries."""
        if encoder is not None and hasattr(encoder, "encode_queries"):
            self._encoder = encoder

    # ------------------------------------------------------------------ request
    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        filters: Filters | None = None,
        category: str | None = None,
        query: str | None = None,
        diversity: float | None = None,
    ) -> list[Recommendation]:
        """The top-k products for ``user_id`` now, best first, each with a score, source and reason."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        filters = filters or Filters()
        if category:
            filters = filters.model_copy(update={"include_categories": (*filters.include_categories, category)})
        events = self.store.recent_event_columns(user_id, self.config.history)
        is_item = [
            t in ITEM_EVENT_TYPES and isinstance(i, str)
            for t, i in zip(events[C.EVENT_TYPE], events[C.ITEM], strict=True)
        ]
        item_ids = np.array([i for i, ok in zip(events[C.ITEM], is_item, strict=True) if ok], dtype=object)
        idx = self.items.to_internal(item_ids, strict=False) if len(item_ids) else np.zeros(0, np.int64)
        known = idx >= 0
        hist = idx[known]
        types = [t for t, ok in zip(events[C.EVENT_TYPE], is_item, strict=True) if ok]
        types = [t for t, k in zip(types, known, strict=True) if k]
        weights = np.array([self.weights.get(t, 1.0) for t in types], np.float32)
        queries = [
            q
            for t, q in zip(events[C.EVENT_TYPE], events[C.QUERY], strict=True)
            if t == C.SEARCH and isinstance(q, str) and q
        ]
        if query:
            queries.append(query)
        qvec = self._encode_queries(queries[-5:])
        seen = {int(i) for i, t in zip(hist, types, strict=True) if t in filters.exclude_seen}
        pool = max(self.config.pool, 5 * k)
        if len(hist):
            h = Histories([hist], [weights], None, [qvec])
            items, scores, sources = self.engine.rank(h, pool, [np.array(sorted(seen), np.int64)])
            n_ok = len(sources[0])  # rows are best-first and -1 padded after the last candidate
            items, scores, src = items[0][:n_ok], scores[0][:n_ok], list(sources[0])
        else:
            items, scores, src = self._cold_user(pool, category, qvec)
        ok = allowed(items, self.catalog, filters, seen)
        items, scores = items[ok], scores[ok]
        src = [s for s, o in zip(src, ok, strict=True) if o]
        if len(items) < k:  # the filters left too few: popular products that pass them fill the list
            items, scores, src = self._fill(items, scores, src, k, category, filters, seen)
        weight = self.config.diversity if diversity is None else diversity
        order = mmr(items, scores, self.vectors, k, weight)
        items, scores, src = items[order], scores[order], [src[i] for i in order]
        out = [
            Recommendation(
                item_id=str(self.items.external_ids[i]),
                score=float(s),
                source=so,
                explanation=X.explain(
                    so,
                    int(i),
                    hist,
                    types,
                    self.catalog.title,
                    model=self.engine.models.get(so),
                    vectors=self.vectors,
                    query=queries[-1] if queries else None,
                    category=category,
                ),
                title=str(self.catalog.title[i]),
            )
            for i, s, so in zip(items, scores, src, strict=True)
        ]
        return self._with_cold_slot(out, hist, types, qvec, filters, seen, k)[:k]

    # ------------------------------------------------------------------ helpers
    def _encode_queries(self, queries: list[str]) -> np.ndarray | None:
        if not queries or self.vectors is None:
            return None
        if self._encoder is None:  # loaded once: building a sentence-transformers model costs seconds
            from shopsense.features.text import TextEncoder

            self._encoder = TextEncoder(self.settings.encoder).use_store(self.store)
        return self._encoder.encode_queries(queries)

    def _cold_user(
        self, pool: int, category: str | None, qvec: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """No item history: the query's best text matches, popular in the request's category, trending."""
        pop = self.engine.popular
        assert pop is not None
        bonus = np.log1p(pop.counts) / max(float(np.log1p(pop.counts.max())), 1e-9)
        if qvec is not None and self.vectors is not None:
            ann = getattr(self.engine.models.get("content"), "ann", None)
            if ann is not None:  # large catalog: the index, not a product per item
                items, sims = ann.search_positions(qvec[-1], min(pool, len(self.vectors)))
                score = sims + 0.05 * bonus[items]
            else:
                sim = self.vectors @ qvec[-1]
                items = _best(sim + 0.05 * bonus, min(pool, len(sim)))
                score = sim[items] + 0.05 * bonus[items]
            order = np.argsort(-score, kind="stable")
            return items[order], score[order].astype(np.float32), ["search"] * len(items)
        if category:
            items = self._popular_in(category)[:pool]
            return items, pop.popularity[items].astype(np.float32), ["popular_in_category"] * len(items)
        items, blend, src = self._trending
        return items[:pool], blend[:pool], src[:pool]

    def _fill(
        self,
        items: np.ndarray,
        scores: np.ndarray,
        src: list[str],
        k: int,
        category: str | None,
        filters: Filters,
        seen: set[int],
    ) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """``items`` followed by the most popular allowed products not among them (below their scores)."""
        if category:
            extra, how = self._popular_in(category), "popular_in_category"
        else:
            extra, how = self._trending[0], "popular"
        extra = extra[~member_of(extra, items)]
        extra = extra[allowed(extra, self.catalog, filters, seen)][: k - len(items)]
        low = float(scores.min()) if len(scores) else 0.0
        fill = low - 1.0 - np.arange(len(extra), dtype=np.float32)
        return (
            np.concatenate([items, extra]).astype(np.int64),
            np.concatenate([scores, fill]).astype(np.float32),
            [*src, *[how] * len(extra)],
        )

    @property
    def _trending(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Trending first, then popular: a stable blend of both ranks (the same for every request)."""
        if self._trending_cache is None:
            pop = self.engine.popular
            assert pop is not None
            tr = np.argsort(-pop.trend, kind="stable")
            po = np.argsort(-pop.popularity, kind="stable")
            rank = np.empty(len(tr)), np.empty(len(po))
            rank[0][tr], rank[1][po] = np.arange(len(tr)), np.arange(len(po))
            blend = 1.0 / (10 + rank[0]) + 1.0 / (10 + rank[1])
            items = np.argsort(-blend, kind="stable")[: max(self.config.pool, 1000)]
            src = ["trending" if rank[0][i] <= rank[1][i] else "popular" for i in items]
            self._trending_cache = (items, blend[items].astype(np.float32), src)
        return self._trending_cache

    def _popular_in(self, category: str) -> np.ndarray:
        """Items of a category (any level of the path), most popular first; cached per category."""
        key = category.strip().lower()
        if key not in self._category_cache:
            pop = self.engine.popular
            assert pop is not None
            mask = self.catalog.in_categories(np.arange(len(self.catalog)), [category])
            items = np.flatnonzero(mask)
            if len(self._category_cache) >= 1024:  # bounded: categories come from requests
                self._category_cache.clear()
            self._category_cache[key] = items[np.argsort(-pop.popularity[items], kind="stable")]
        return self._category_cache[key]

    def _with_cold_slot(
        self,
        out: list[Recommendation],
        hist: np.ndarray,
        types: list[str],
        qvec: np.ndarray | None,
        filters: Filters,
        seen: set[int],
        k: int,
    ) -> list[Recommendation]:
        """Reserve one slot for the new product (no events yet) whose text best matches the user."""
        if self.config.cold_slot is None or self.vectors is None or (not len(hist) and qvec is None):
            return out
        content = self.engine.models.get("content")
        if content is None:
            return out
        profile = content.profiles(Histories([hist], None, None, [qvec]))[0]  # type: ignore[attr-defined]
        best: tuple[float, Recommendation] | None = None
        taken = {r.item_id for r in out}
        ok = np.zeros(0, np.int64)
        if self.cold_index is not None:
            top, sims = self.cold_index.search_positions(profile, COLD_CANDIDATES)
            ok = np.flatnonzero(allowed(self.cold_items[top], self.catalog, filters, seen))
        elif len(self.cold_items) and self.cold_vectors is not None:
            all_sims = self.cold_vectors @ profile
            top = _best(all_sims, min(COLD_CANDIDATES, len(all_sims)))
            sims = all_sims[top]
            ok = np.flatnonzero(allowed(self.cold_items[top], self.catalog, filters, seen))
        if len(ok):
            j = int(ok[0])
            i = int(self.cold_items[top[j]])
            reason = X.explain("cold", i, hist, types, self.catalog.title, vectors=self.vectors)
            best = (
                float(sims[j]),
                Recommendation(
                    str(self.items.external_ids[i]), float(sims[j]), "cold", reason, str(self.catalog.title[i])
                ),
            )
        if self.new_vectors is not None and len(self.new_vectors):
            sims = self.new_vectors @ profile
            j = int(np.argmax(sims))
            if best is None or sims[j] > best[0]:
                row = self.new_products.iloc[j]
                reason = "new: matches your interests"
                if len(hist):
                    near = int(hist[int(np.argmax(self.vectors[hist] @ self.new_vectors[j]))])
                    reason = f"new: similar to {X._quote(self.catalog.title[near])}"
                available = bool(row.get(C.AVAILABLE, True)) if not pd.isna(row.get(C.AVAILABLE, True)) else True
                if available or not filters.only_available:
                    best = (
                        float(sims[j]),
                        Recommendation(str(row[C.ITEM]), float(sims[j]), "cold", reason, str(row.get(C.TITLE, ""))),
                    )
        if best is None or best[0] < self.config.cold_min_similarity or best[1].item_id in taken:
            return out
        pos = min(self.config.cold_slot, len(out), k - 1)
        return [*out[:pos], best[1], *out[pos:]]


def _best(values: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` largest values, best first."""
    part = np.argpartition(-values, n - 1)[:n]
    return part[np.argsort(-values[part], kind="stable")]
