"""Online recommendations: the served model version + the shopper's latest events, read per request.

A request reads the shopper's newest events from the knowledge store, so a view or a search a moment
ago already shapes the list (no retraining). It runs as named stages (:mod:`.recommender`):
history -> candidates -> rank -> rules -> diversity -> explanations, then the new-product slot.
Shoppers without item history go down a configurable fallback chain (:mod:`.fallbacks`: query
match, popular in the request's category, trending).

>>> rec = Recommender.from_store(store, settings)
>>> rec.recommend(RecommendRequest(user_id="u1", k=5, category="Kitchen"))
"""

from __future__ import annotations

from shopsense.engine_config import OnlineConfig
from shopsense.ranking.ranked import RankedItem
from shopsense.recommend.recommender import Recommender
from shopsense.recommend.request import RecommendRequest

__all__ = ["OnlineConfig", "RankedItem", "RecommendRequest", "Recommender"]
