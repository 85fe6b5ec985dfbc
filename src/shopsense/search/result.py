"""What one search returns: :class:`SearchResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shopsense.ranking.ranked import RankedItem


@dataclass
class SearchResult:
    """Products for one query, best first, with what matched and facet counts."""

    query: str
    items: list[str]
    scores: list[float]
    matched_fields: list[list[str]]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    did_you_mean: str | None = None  # the spelling correction, or a better query when this one finds little
    showing_results_for: str | None = None  # the corrected text the results are for (None: the query itself)
    #: how a query that found nothing was relaxed (search/relax.py), e.g. "without 'xyzzy'"; None: it was not
    relaxed: str | None = None
    total: int = 0  # candidates that passed the filters
    request_id: str | None = None
    products: list[dict[str, Any]] = field(default_factory=list)

    def ranked(self) -> list[RankedItem]:
        """The results as list items (source ``search``, the matched fields as the explanation)."""
        return [
            RankedItem(i, s, "search", "matched " + ", ".join(m) if m else None)
            for i, s, m in zip(self.items, self.scores, self.matched_fields, strict=True)
        ]

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (what the CLI prints): items as ``{item_id, score, source, explanation}``."""
        return {
            "query": self.query,
            "items": [{k: v for k, v in r.as_dict().items() if k != "title"} for r in self.ranked()],
            "facets": self.facets,
            "did_you_mean": self.did_you_mean,
            "showing_results_for": self.showing_results_for,
            "relaxed": self.relaxed,
            "total": self.total,
            "request_id": self.request_id,
        }
