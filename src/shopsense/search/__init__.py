"""Product search: hybrid lexical + semantic retrieval, learned re-ranking, filters, facets,
typo tolerance, autocomplete and personalisation, on the shared knowledge store.

>>> engine = build_from_store(store, settings)                    # index the store's catalog
>>> search("whirpool microwve", store=store, settings=settings, user_id="u1").items  # logged
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.search.collaborative import ItemAffinity, active_affinity
from shopsense.search.engine import SearchConfig, SearchEngine, SearchResult
from shopsense.search.personal import log_click, log_search
from shopsense.search.reranker import clicks_to_judgements
from shopsense.store import KnowledgeStore

__all__ = [
    "ItemAffinity",
    "SearchConfig",
    "SearchEngine",
    "SearchResult",
    "build_from_store",
    "default_index_path",
    "load_or_build",
    "log_click",
    "search",
]


def default_index_path(settings: Settings) -> Path:
    """Where the CLI keeps the search engine built from the store: ``<home>/search``."""
    return Path(settings.home) / "search"


def build_from_store(
    store: KnowledgeStore,
    settings: Settings,
    *,
    config: SearchConfig | None = None,
    semantic: bool = True,
    train_from_clicks: bool = True,
) -> SearchEngine:
    """Index the store's catalog (vectors through the store's embedding cache), with popularity and
    past queries from its events, configured by ``settings.search`` unless ``config``; train the re-ranker from logged search clicks when there are any."""
    products = store.products()
    events = store.events(include_opted_out=False)  # opted-out shoppers' searches and clicks shape nothing
    item_events = events[events[C.ITEM].notna() & (events[C.EVENT_TYPE] != C.SEARCH)]
    counts = item_events[C.ITEM].value_counts()
    popularity = products[C.ITEM].map(counts).fillna(0).to_numpy(dtype=np.float32)
    queries = events.loc[events[C.EVENT_TYPE] == C.SEARCH, C.QUERY].dropna().astype(str).tolist()
    encoder = None
    if semantic:
        from shopsense.features.text import TextEncoder

        encoder = TextEncoder(settings.encoder)
    config = config or settings.search
    engine = SearchEngine.build(products, encoder, store=store, config=config, popularity=popularity, queries=queries)
    if train_from_clicks:
        q, qrels = clicks_to_judgements(events)
        if len(q) >= 10:  # too few logged searches teach noise
            engine.fit_reranker(q, qrels, gain_offset=0.0)
    return engine.use_affinity(active_affinity(store, settings, engine.config.collaborative_sources))


def load_or_build(
    store: KnowledgeStore, settings: Settings, path: Path | None = None, *, rebuild: bool = False
) -> SearchEngine:
    """The engine saved at ``path`` (default :func:`default_index_path`), built from the store first when
    missing; ``settings.search`` applies to its queries."""
    from shopsense.features.text import TextEncoder

    p = path or default_index_path(settings)
    if rebuild or not (p / "params.json").exists():
        engine = build_from_store(store, settings)
        engine.save(p)
        return engine
    engine = SearchEngine.load(p, encoder=TextEncoder(settings.encoder)).configure(settings.search)
    return engine.use_affinity(active_affinity(store, settings, engine.config.collaborative_sources))


def search(
    query: str,
    *,
    store: KnowledgeStore,
    settings: Settings,
    user_id: str | None = None,
    filters: Mapping[str, Any] | None = None,
    k: int = 10,
    log: bool = True,
    engine: SearchEngine | None = None,
) -> SearchResult:
    """Search the store's catalog (building the index on first use) and, with ``log``, write the
    search event and what it showed (the library and CLI path; the service queues both)."""
    engine = engine or load_or_build(store, settings)
    res = engine.search(query, user_id=user_id, filters=filters, k=k, store=store, with_products=True)
    if log:
        log_search(store, query, res.request_id or "", user_id, res.items, res.scores)
    return res
