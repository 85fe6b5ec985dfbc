"""What a query finds before anything personal, kept in memory for the queries a shop sees again.

About half of a shop's searches repeat a popular query. The spelling correction, both retrievers,
the candidates' features, the facets and "did you mean" depend only on the query text, the filters,
the index, its settings and the query encoder, so a repeated query reuses them; what depends on the
shopper (their affinity column, the joint ranker's use of their items, the personal boosts) and the
relaxation of a query that found nothing (it reads the shopper's profile) are computed per request,
as before. A search answers the same with or without the memory (a test compares them). A catalog
change or a training brings a new engine, so a new, empty memory; the settings are part of the key;
pictures and deleted searches (they feed "did you mean") empty it. A query is kept from its second
time (:class:`QueryMemory`). Size: ``[search] query_memory`` queries per process, about 45 KB each
at the default candidate counts.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from shopsense.config import SearchConfig
from shopsense.lru import LRU
from shopsense.search.features import INDEX

if TYPE_CHECKING:
    from shopsense.search.engine import Candidates, SearchEngine


@dataclass(frozen=True)
class QueryPart:
    """One query's non-personal answer: its corrected text, candidates (affinity column 0), facet
    counts over them and the "did you mean" (or the correction) the response names."""

    fixed: str | None
    cand: Candidates
    facets: dict[str, Any]
    did_you_mean: str | None


class QueryMemory:
    """The answers of up to ``size`` queries, the least recently asked forgotten first. A query is
    remembered from its second time only: most queries a shop sees are asked once, and keeping each
    would push the popular ones out (a bare LRU of 512 holds about 7 seconds of a busy worker's new
    queries). The first time only its key is noted, among the last ``4 x size`` keys."""

    def __init__(self, size: int) -> None:
        self.parts: LRU[QueryPart] = LRU(size)
        self.seen: LRU[bool] = LRU(4 * size)

    def get(self, key: Hashable) -> QueryPart | None:
        return self.parts.get(key)

    def offer(self, key: Hashable, part: QueryPart) -> None:
        """Remember ``part`` if its query was asked before, else note that it was asked."""
        if self.seen.get(key):
            self.parts.put(key, part)
        else:
            self.seen.put(key, True)

    def clear(self) -> None:
        self.parts.clear()
        self.seen.clear()

    def __len__(self) -> int:
        return len(self.parts)


def query_part(engine: SearchEngine, query: str, filters: Mapping[str, Any] | None) -> QueryPart:
    """The query's non-personal answer from ``engine``, from its memory when it was asked before."""
    key = key_of(query, filters, engine.config, engine.encoder)
    hit = engine.remembered.get(key) if key is not None else None
    if hit is not None:
        return hit
    mask = engine.index.columns.mask(filters)  # validates the filters too
    fixed = engine.correct(query)
    part = described(engine, query, fixed, mask, engine.candidates(query, mask=mask, corrected=fixed))
    if key is not None:
        engine.remembered.offer(key, part)
    return part


def described(
    engine: SearchEngine, query: str, fixed: str | None, mask: np.ndarray | None, cand: Candidates
) -> QueryPart:
    """``cand`` with the facet counts over them and the "did you mean" of ``query`` (corrected to
    ``fixed``) inside the filters' ``mask``."""
    from shopsense.search.suggest import did_you_mean

    threshold = engine.config.did_you_mean_min_results
    suggestion = did_you_mean(engine.index, fixed or query, threshold, mask, cand.rows) or fixed
    return QueryPart(fixed, cand, engine.index.columns.facets(cand.rows), suggestion)


def key_of(query: str, filters: Mapping[str, Any] | None, config: SearchConfig, encoder: Any) -> Hashable | None:
    """The memory's key: the text as typed, the filters given (lists as tuples), the settings as they
    are now (a caller may change them in place: 4 microseconds to write them out) and which encoder
    turns the text into a vector; None for filter values that cannot be a key (such a search is not kept)."""
    given = [(k, tuple(v) if isinstance(v, list | tuple) else v) for k, v in (filters or {}).items() if v is not None]
    key = (query, tuple(sorted(given, key=lambda kv: kv[0])), config.model_dump_json(), id(encoder))
    try:
        hash(key)
    except TypeError:
        return None
    return key


def with_affinity(cand: Candidates, vectors: np.ndarray | None, profile: np.ndarray | None) -> Candidates:
    """``cand`` with its affinity column for a shopper's ``profile`` (as :meth:`SearchEngine.candidates`
    fills it); the shared candidates are not changed."""
    if profile is None or vectors is None or not len(cand.rows):
        return cand
    features = cand.features.copy()
    features[:, INDEX["affinity"]] = vectors[cand.rows] @ profile
    return replace(cand, features=features)
