"""Product search: hybrid lexical + semantic retrieval, learned re-ranking, filters, facets,
typo tolerance, autocomplete and personalisation, on the shared knowledge store.

The catalog's :class:`SearchIndex` (``index.py``: built, saved, loaded) is queried by a
:class:`SearchEngine` (``engine.py``); :func:`load_or_build` is the one way to get one for a store
(the CLI and the service); :func:`search` queries and logs.

>>> engine = build_from_store(store, settings)                    # index the store's catalog
>>> search("whirpool microwve", store=store, settings=settings, user_id="u1").items  # logged
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.ranking.joint import SearchRanker
from shopsense.search.collaborative import ItemAffinity, active_affinity
from shopsense.search.engine import SearchConfig, SearchEngine, SearchResult
from shopsense.search.index import SearchIndex, built_encoder, is_saved
from shopsense.search.personal import log_click, log_search
from shopsense.search.reranker import clicks_to_judgements
from shopsense.store import KnowledgeStore

log = logging.getLogger("shopsense.search")

__all__ = [
    "ItemAffinity",
    "SearchConfig",
    "SearchEngine",
    "SearchIndex",
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
    encoder: Any = None,
    train_from_clicks: bool = True,
    active_links: bool = True,
) -> SearchEngine:
    """Index the store's catalog (vectors through the store's embedding cache, with ``encoder`` or
    one made from ``settings.encoder``), with popularity and past queries from its events, configured
    by ``settings.search`` unless ``config``; train the re-ranker from logged search clicks when there
    are any. With ``active_links``, personalise with the served version's collaborative links
    (:func:`~shopsense.search.collaborative.active_affinity`; the service links its own version)."""
    products = store.products()
    events = store.events(include_opted_out=False)  # opted-out shoppers' searches and clicks shape nothing
    item_events = events[events[C.ITEM].notna() & (events[C.EVENT_TYPE] != C.SEARCH)]
    counts = item_events[C.ITEM].value_counts()
    popularity = products[C.ITEM].map(counts).fillna(0).to_numpy(dtype=np.float32)
    queries = events.loc[events[C.EVENT_TYPE] == C.SEARCH, C.QUERY].dropna().astype(str).tolist()
    if not semantic:
        encoder = None
    elif encoder is None:
        encoder = _text_encoder(settings)
    config = config or settings.search
    engine = SearchEngine.build(products, encoder, store=store, config=config, popularity=popularity, queries=queries)
    if train_from_clicks:
        q, qrels = clicks_to_judgements(events)
        if len(q) >= 10:  # too few logged searches teach noise
            engine.fit_reranker(q, qrels, gain_offset=0.0)
    return _linked(engine, store, settings) if active_links else engine


def load_or_build(
    store: KnowledgeStore,
    settings: Settings,
    path: Path | None = None,
    *,
    version: Path | None = None,
    encoder: Any = None,
    rebuild: bool = False,
    active_links: bool = True,
) -> SearchEngine:
    """The search engine saved in the model ``version`` folder (its own ``<version>/search``, written
    by training) or else at ``path`` (default :func:`default_index_path`), with ``settings.search``
    applied to its queries; built from the store and saved at ``path`` when neither holds one, or
    with ``rebuild``. ``encoder`` encodes the queries (and the products when building; the service
    passes its shared one), else one is made from ``settings.encoder``. ``active_links``: as in
    :func:`build_from_store`."""
    p = path or default_index_path(settings)
    folders = [version / "search"] if version is not None else []
    saved = None if rebuild else _saved_index([*folders, p])
    if saved is None:
        # one process builds, the others wait and load what it saved: the workers of one server
        # starting on a home without an index all got here, and building into one folder at once,
        # one of them failed (a file gone under it) and answered 503 to every search
        with build_lock(p):
            if not rebuild and is_saved(p):
                saved = p
            else:
                engine = build_from_store(store, settings, encoder=encoder, active_links=active_links)
                engine.save(p)
                return engine
    encoder = _encoder_for_index(saved, encoder if encoder is not None else _text_encoder(settings), store)
    engine = SearchEngine.load(saved, encoder=encoder)
    engine.configure(settings.search)
    return _linked(engine, store, settings) if active_links else engine


def _saved_index(folders: list[Path]) -> Path | None:
    """The index to load among ``folders`` (the version's own first, then the home's): the first saved
    one, except that a newer home index built with the same encoder as the version's own wins (a
    catalog change rebuilds the home's index with the version's encoder: it has the new products)."""
    saved = [f for f in folders if is_saved(f)]
    if len(saved) == 2 and built_encoder(saved[0]) == built_encoder(saved[1]):
        return max(saved, key=lambda f: (f / "params.json").stat().st_mtime_ns)
    return saved[0] if saved else None


@contextmanager
def build_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock, shared by every process on this machine, on building the index at
    ``path`` (a ``.lock`` file beside it; no lock where ``fcntl`` is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _text_encoder(settings: Settings) -> Any:
    from shopsense.features.text import TextEncoder

    return TextEncoder(settings.encoder)


def _encoder_for_index(path: Path, encoder: Any, store: KnowledgeStore) -> Any:
    """The encoder for the queries of the index at ``path``: ``encoder``, unless the index's product
    vectors came from the same model through another backend (an index built before
    ``[encoder] backend`` changed): then that backend's, so that query and product vectors never
    mix. The service shares this encoder with its other engines; a rebuild or a training switches."""
    built_with, mine = built_encoder(path), getattr(encoder, "model_id", None)
    config = getattr(encoder, "config", None)
    if not built_with or not mine or built_with == mine or config is None:
        return encoder
    from shopsense.features.text import TextEncoder

    other = TextEncoder.of_model_id(built_with, config)
    if other is None:
        return encoder  # another model altogether: loading says so
    log.warning(
        "the search index at %s was built with %s, not the configured %s: its queries are encoded with "
        "the index's encoder until it is rebuilt (shopsense search-index, or the next training)",
        path,
        built_with,
        mine,
    )
    return other.use_store(store)


def _linked(engine: SearchEngine, store: KnowledgeStore, settings: Settings) -> SearchEngine:
    engine.use_affinity(active_affinity(store, settings, engine.config.collaborative_sources))
    engine.use_joint(served_joint(engine, store, settings))
    return engine.use_images(served_images(engine, store, settings))


def served_joint(engine: SearchEngine, store: KnowledgeStore, settings: Settings) -> SearchRanker | None:
    """The served version's joint ranker over ``engine``'s rows (:mod:`shopsense.ranking.joint`), or
    None when it has none (search then ranks with its re-ranker) or it cannot be read."""
    from shopsense import versions
    from shopsense.data.idmap import IdMap
    from shopsense.ranking.pipeline import Engine

    served = versions.served_version(store, settings.home)
    if served is None or served.folder is None:
        return None
    try:
        found = Engine.load_search_ranking(served.folder / "engine")
        if found is None:
            return None
        ranker, side = found
        return SearchRanker(ranker, side, IdMap.load(served.folder / "items.json"), engine.index.item_ids)
    except Exception as e:  # search still answers with its own ranking
        log.warning("the joint ranker of model version %s not used in search: %s", served.version, e)
        return None


def served_images(engine: SearchEngine, store: KnowledgeStore, settings: Settings) -> Any:
    """The served version's product pictures over ``engine``'s rows (text -> image retrieval), or
    None when it kept none or they cannot be read (search then uses text alone)."""
    from shopsense import versions
    from shopsense.search.images import ImageRetriever

    served = versions.served_version(store, settings.home)
    if served is None or served.folder is None:
        return None
    try:
        index = engine.index
        return ImageRetriever.from_version(served.folder, settings, index.row_of, index.n_products, store)
    except Exception as e:  # search by text still answers
        log.warning("product pictures of model version %s not used in search: %s", served.version, e)
        return None


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
