"""What a served recommender does per request (the ``[online]`` settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from shopsense.config import StrictModel

Fallback = Literal["query_match", "popular_in_category", "trending"]
#: the fallbacks a shopper without item history can get, in the order tried by default
FALLBACKS: tuple[Fallback, ...] = ("query_match", "popular_in_category", "trending")


class OnlineConfig(StrictModel):
    history: int = Field(50, ge=1, description="latest events read per request")
    pool: int = Field(
        50,
        ge=1,
        description="ranked candidates kept before filters and diversity (at least 5 x k); popular fill the rest",
    )
    diversity: float = Field(0.0, ge=0, le=1, description="MMR weight (0 = pure relevance)")
    cold_slot: int | None = Field(2, ge=0, description="position of the reserved slot for a new product (None: off)")
    cold_min_similarity: float = Field(0.5, ge=-1, le=1, description="text similarity a new product needs for the slot")
    fallbacks: tuple[Fallback, ...] = Field(
        FALLBACKS,
        min_length=1,
        description="for shoppers without item history, tried in order: the first that applies answers "
        "(query_match: the request's or the shopper's latest search against product text; "
        "popular_in_category: the request's category; trending: trending and popular blended, always applies)",
    )
