"""The typed request of a search, the same from the route or the CLI to the searcher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SearchRequest:
    """One query: ``filters`` keys are category, brand, min_price, max_price and available
    (:mod:`shopsense.search.filters`); ``user_id`` personalises the order; ``request_id`` names the
    response (the caller's, so the logged search event and the impressions share it)."""

    query: str
    user_id: str | None = None
    k: int = 10
    filters: Mapping[str, Any] = field(default_factory=dict)
    request_id: str | None = None
