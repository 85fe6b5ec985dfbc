"""The served recommender: one model version answering :class:`RecommendRequest` in named stages.

history -> candidates and ranking (the version's engine: every source proposes, the learned fusion
or ranker orders) or, without item history, the fallback chain -> rules (:func:`allowed`, then popular
products fill a short list) -> diversity (MMR) -> explanations -> the new-product slot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shopsense.config import Settings
from shopsense.data.idmap import IdMap
from shopsense.engine_config import OnlineConfig
from shopsense.models.base import Histories
from shopsense.models.content import ContentModel, content_profile
from shopsense.ranking import explain as X
from shopsense.ranking.exposure import DAY, Exposure
from shopsense.ranking.pipeline import Engine
from shopsense.ranking.ranked import RankedItem
from shopsense.ranking.return_features import cart_items
from shopsense.ranking.rules import Filters, allowed, mmr
from shopsense.recommend.catalog import ServedCatalog
from shopsense.recommend.fallbacks import Fallbacks, Ranked
from shopsense.recommend.history import HistoryReader, ShopperHistory, query_encoder
from shopsense.recommend.new_products import best_new_product, new_product_reason
from shopsense.recommend.precomputed import DEFAULT_EXCLUSIONS, PrecomputedLists, seen_rows, signature
from shopsense.recommend.precomputed import FOLDER as LISTS
from shopsense.recommend.request import RecommendRequest
from shopsense.recommend.surfaces import (
    COMPLEMENT,
    RETURN,
    Returns,
    for_you,
    return_candidates,
    return_reason,
    returnable,
)
from shopsense.store import KnowledgeStore
from shopsense.versions import encoder_settings, read_manifest, served_folder


class Recommender:
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
        self.settings = encoder_settings(settings, folder)  # the version's own text encoder, if it tuned one
        self.config = config or settings.online
        self.folder = folder
        self.version = read_manifest(folder).version
        self.engine = Engine.load(folder / "engine").warm()
        if self.engine.popular is None:
            raise ValueError(f"model version {self.version} has no popularity model: retrain it")
        self.popular = self.engine.popular
        content = self.engine.models.get("content")
        self.content = content if isinstance(content, ContentModel) else None
        self.items = IdMap.load(folder / "items.json")
        self.items.to_internal([])  # builds the id lookup now, not on the first request
        self.weights = settings.event_weights.as_dict()
        self.vectors: np.ndarray | None = getattr(self.content, "vectors", None)
        self._encoder: Any = encoder  # the query encoder; loaded on first use unless shared (the service's)
        #: what "now" is for recency and exposure (a simulation replaying a log sets its own clock)
        self.clock: Callable[[], float] = time.time
        self.reader = HistoryReader(
            store, self.items, self.weights, self.config, query_encoder(self.encoder, self.vectors)
        )
        self.lists = self._usable_lists()
        self.reload_catalog()

    @classmethod
    def from_store(cls, store: KnowledgeStore, settings: Settings, config: OnlineConfig | None = None) -> Recommender:
        """The recommender of the active version (NoModelError when nothing is trained)."""
        return cls(store, settings, served_folder(store, settings.home), config)

    def reload_catalog(self) -> None:
        """Re-read product metadata (availability, price, category) for the rules; products added since
        training are embedded so they can take the new-product slot."""
        from shopsense.images import version_images
        from shopsense.training import product_vectors

        images = version_images(self.folder)  # new products' images fused as the version fused its catalog
        self.catalog = ServedCatalog(
            self.store.products(),
            self.items,
            self.vectors,
            self.popular,
            lambda new: product_vectors(new, self.settings, self.store, images=images),
        )
        self.fallbacks = Fallbacks(
            self.popular, self.catalog.rules, self.vectors, getattr(self.content, "ann", None), self.config.pool
        )
        self.fallbacks.trending(1)  # built now, not on the first request

    def use_encoder(self, encoder: Any) -> None:
        """Share an already loaded text encoder (the search engine's) for the shopper's search queries."""
        if encoder is not None and hasattr(encoder, "encode_queries"):
            self._encoder = encoder

    # ------------------------------------------------------------------ the stages
    def recommend(self, request: RecommendRequest) -> list[RankedItem]:
        """The top-k products of the request's surface for its shopper now, best first, each with a
        score, source and reason (see :mod:`shopsense.recommend.surfaces`)."""
        history = self.history(request.user_id, request.query)
        filters = request.rules
        surface = request.surface
        if surface in ("bought_together", "complete_the_cart"):
            return self.complements(request, history, filters)
        returns = self.returns(history)
        if surface in ("continue_shopping", "buy_again"):
            keep = returnable(returns) if surface == "continue_shopping" else returns.bought & returns.rebuyable
            ranked = returns.ranked(keep)
            ranked = ranked.where(allowed(ranked.items, self.catalog.rules, filters))
            return self.explained(ranked.take(np.arange(min(len(ranked), request.k))), history, request, returns)
        seen = seen_rows(history, filters.exclude_seen)
        pool = max(self.config.pool, 5 * request.k)
        listed = self.precomputed(history, request, filters, pool)
        ranked = listed if listed is not None else self.ranked(history, pool, seen, request.category)
        if len(returns.items):
            back = returns.ranked(returnable(returns))
            ranked = for_you(ranked, self.engine.discovery_hit_rate, back, request.k, self.config.max_return_share)
            seen -= {int(i) for i in back.items}  # shown again on purpose
        ranked = self.apply_rules(ranked, request, filters, seen)
        weight = self.config.diversity if request.diversity is None else request.diversity
        ranked = ranked.take(mmr(ranked.items, ranked.scores, self.vectors, request.k, weight))
        out = self.explained(ranked, history, request, returns)
        return self.with_new_product(out, history, filters, seen, request.k)[: request.k]

    def returns(self, history: ShopperHistory) -> Returns:
        """The shopper's own items with their next-purchase probability now (none without a scorer)."""
        return return_candidates(self.engine.returns, history.events, history.now)

    def complements(self, request: RecommendRequest, history: ShopperHistory, filters: Filters) -> list[RankedItem]:
        """``bought_together`` (of the request's product) or ``complete_the_cart`` (of the cart)."""
        if self.engine.complements is None:
            return []
        if request.surface == "bought_together":
            anchors = (
                self.items.to_internal([request.item_id], strict=False) if request.item_id else np.zeros(0, np.int64)
            )
        else:  # the cart from the events themselves: a shop without a return scorer has carts too
            anchors = cart_items(history.events)
        anchors = anchors[anchors >= 0]
        items, scores = self.engine.complements.of(anchors, max(self.config.pool, 5 * request.k), exclude=anchors)
        ranked = Ranked(items, scores, [COMPLEMENT] * len(items))
        ranked = ranked.where(allowed(ranked.items, self.catalog.rules, filters))
        ranked = ranked.take(np.arange(min(len(ranked), request.k)))
        titles = self.catalog.titles
        return [
            RankedItem(
                str(self.catalog.ids[i]),
                float(sc),
                COMPLEMENT,
                f"often bought with {X.quote(titles[self._partner(int(i), anchors)])}",
                str(titles[i]),
            )
            for i, sc in zip(ranked.items, ranked.scores, strict=True)
        ]

    def _partner(self, item: int, anchors: np.ndarray) -> int:
        """The anchor bought most often with ``item`` (the first anchor when none was)."""
        pairs = self.engine.complements.pairs if self.engine.complements is not None else None
        if pairs is None or not pairs.shape[0]:
            return int(anchors[0])
        counts = np.asarray(pairs[anchors][:, item].todense()).ravel()
        return int(anchors[int(np.argmax(counts))])

    def history(self, user_id: str, query: str | None = None) -> ShopperHistory:
        """Stage 1: the shopper's latest events (:class:`~shopsense.recommend.history.HistoryReader`)."""
        return self.reader.read(user_id, query, self.clock())

    def precomputed(
        self, history: ShopperHistory, request: RecommendRequest, filters: Filters, pool: int
    ) -> Ranked | None:
        """Stages 2-3 done at training: the shopper's precomputed ranking, when it is the one a live
        ranking would give (no newer event, no query, the default exclusions; see
        :mod:`shopsense.recommend.precomputed`)."""
        if self.lists is None or request.query or not history.has_items:
            return None
        if tuple(filters.exclude_seen) != DEFAULT_EXCLUSIONS:
            return None
        return self.lists.get(history, pool)

    def ranked(self, history: ShopperHistory, pool: int, seen: set[int], category: str | None) -> Ranked:
        """Stages 2-3: the version's candidates ranked (its sources propose, fusion or the ranker
        orders), or for a shopper without item history the first fallback of the chain that applies."""
        if not history.has_items:
            latest = history.query_vectors[-1] if history.query_vectors is not None else None
            return self.fallbacks.first(self.config.fallbacks, pool, category, latest)
        h = Histories([history.rows], [history.weights], None, [history.query_vectors])
        # read only here, and only for a ranker that learned from it: the other surfaces never rank with it
        shown = [self._shown(history.user_id, history.now)] if self.engine.wants_exposure else None
        items, scores, sources = self.engine.rank(h, pool, [np.array(sorted(seen), np.int64)], shown, history.now)
        n_ok = len(sources[0])  # rows are best-first and -1 padded after the last candidate
        return Ranked(items[0][:n_ok], scores[0][:n_ok], list(sources[0]))

    def apply_rules(self, ranked: Ranked, request: RecommendRequest, filters: Filters, seen: set[int]) -> Ranked:
        """Stage 4: the filters and business rules; popular products that pass them fill a short list."""
        ranked = ranked.where(allowed(ranked.items, self.catalog.rules, filters, seen))
        if len(ranked) < request.k:
            ranked = self.fallbacks.fill(ranked, request.k, request.category, filters, seen)
        return ranked

    def explained(
        self, ranked: Ranked, history: ShopperHistory, request: RecommendRequest, returns: Returns | None = None
    ) -> list[RankedItem]:
        """Stage 6: a reason for every item, from its source and the shopper's history."""
        titles = self.catalog.titles
        last_query = history.queries[-1] if history.queries else None
        return [
            RankedItem(
                item_id=str(self.catalog.ids[i]),
                score=float(s),
                source=src,
                explanation=return_reason(returns, int(i))
                if src == RETURN and returns is not None
                else X.explain(
                    src,
                    int(i),
                    history.rows,
                    history.types,
                    titles,
                    model=self.engine.models.get(src),
                    vectors=self.vectors,
                    query=last_query,
                    category=request.category,
                ),
                title=str(titles[i]),
            )
            for i, s, src in zip(ranked.items, ranked.scores, ranked.sources, strict=True)
        ]

    def with_new_product(
        self, out: list[RankedItem], history: ShopperHistory, filters: Filters, seen: set[int], k: int
    ) -> list[RankedItem]:
        """The new-product slot: the allowed product without events that best matches the shopper."""
        cfg = self.config
        if cfg.cold_slot is None or self.content is None or self.vectors is None or self.catalog.cold_vectors is None:
            return out  # no slot, or no product without events to put in it: no profile (nor encoding)
        if not history.has_items and history.query_vectors is None:
            return out
        # unweighted by event type, as the slot has always matched: any touch says "interested"
        profile = content_profile(self.vectors, history.rows, None, history.query_vectors, self.content.config)
        found = best_new_product(self.catalog, profile, filters, seen)
        if found is None or found[1] < cfg.cold_min_similarity:
            return out
        item, sim = found
        rec = RankedItem(
            str(self.catalog.ids[item]),
            sim,
            "cold",
            new_product_reason(self.catalog, item, history.rows, history.types),
            str(self.catalog.titles[item]),
        )
        if rec.item_id in {r.item_id for r in out}:
            return out
        pos = min(cfg.cold_slot, len(out), k - 1)
        return [*out[:pos], rec, *out[pos:]]

    # ------------------------------------------------------------------ helpers
    def _shown(self, user_id: str, now: float) -> Exposure:
        """The shopper's latest impressions, for the ranker's exposure columns."""
        cfg = self.engine.exposure_config
        rows = self.store.recent_impressions(user_id, now - cfg.exposure_days * DAY, cfg.exposure_limit)
        return Exposure.of(rows, self.items.to_internal)

    def encoder(self) -> Any:
        """The query encoder, loaded on first use (building a sentence-transformers model costs seconds)."""
        if self._encoder is None:
            from shopsense.features.text import TextEncoder

            self._encoder = TextEncoder(self.settings.encoder).use_store(self.store)
        return self._encoder

    def _usable_lists(self) -> PrecomputedLists | None:
        """The version's precomputed lists when this server's online settings are the ones they were
        made under (and ``[online] precomputed`` is on); otherwise every request ranks live."""
        if not self.config.precomputed or self.engine.wants_exposure:
            return None
        lists = PrecomputedLists.load(self.folder / LISTS)
        if lists is None or lists.made_under != signature(self.config, self.weights, DEFAULT_EXCLUSIONS):
            return None
        lists.users.to_internal([])  # builds the id lookup now, not on the first request
        return lists
