"""The typed request of a recommendation, the same from the route or the CLI to the engine (the
result is a list of :class:`~shopsense.ranking.ranked.RankedItem`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from shopsense.ranking.rules import Filters
from shopsense.recommend.surfaces import ITEM_SURFACES, SURFACES, Surface


@dataclass(frozen=True)
class RecommendRequest:
    """One shopper's list. ``category`` narrows the list to a category and, for a shopper without
    history, is the context of the popular-in-category fallback; ``query`` is a context query (a
    shopper without history gets its best text matches); ``diversity`` None: the settings' weight."""

    user_id: str
    k: int = 10
    filters: Filters = field(default_factory=Filters)
    category: str | None = None
    query: str | None = None
    diversity: float | None = None
    surface: Surface = "for_you"
    item_id: str | None = None  # the product of a product page's surface

    def __post_init__(self) -> None:
        if self.surface not in SURFACES:
            raise ValueError(f"unknown surface {self.surface!r}; valid: {', '.join(SURFACES)}")
        if self.surface in ITEM_SURFACES and not self.item_id:
            raise ValueError(f"surface {self.surface!r} needs an item_id (the product of the page)")
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.diversity is not None and not 0 <= self.diversity <= 1:
            raise ValueError(f"diversity must be in [0, 1], got {self.diversity}")

    @property
    def rules(self) -> Filters:
        """The filters with the request's category added to the included ones."""
        if not self.category:
            return self.filters
        return self.filters.model_copy(update={"include_categories": (*self.filters.include_categories, self.category)})
