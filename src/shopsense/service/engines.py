"""The one place where the service meets the library engines (recommend, search, similar, autocomplete).

:func:`load` builds, for one model version folder, the objects that answer requests; the routes call
:class:`Served` and never the library directly, so a change of library API is one edit here. Every
method takes the surface's typed request and returns typed results (lists of
:class:`~shopsense.ranking.ranked.RankedItem`, best first; a :class:`SearchResult`). A capability whose
library is missing raises :class:`Unavailable` (the HTTP layer answers 503 with the reason).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.index.catalog import CatalogIndex
from shopsense.ranking.joint import SearchRanker
from shopsense.ranking.ranked import RankedItem
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.search import SearchEngine
from shopsense.search.request import SearchRequest
from shopsense.search.result import SearchResult
from shopsense.store import KnowledgeStore
from shopsense.store.users import UserDeletion

log = logging.getLogger("shopsense.service")
T = TypeVar("T")


class Unavailable(RuntimeError):
    """A capability cannot answer (library not installed, nothing trained for it)."""


@dataclass
class Served:
    """What one model version serves. Catalog-based parts (similar products) are rebuilt in the
    background when the catalog changes (:meth:`refresh_catalog`) and swapped in by one assignment."""

    version: str | None  # None before any training completed (catalog-only: search, similar)
    path: Path | None
    store: KnowledgeStore
    settings: Settings
    encoder: Any | None = None  # shopsense.features.text.TextEncoder (or the ONNX one): duck-typed
    catalog: CatalogIndex | None = None
    recommender: Recommender | None = None
    searcher: SearchEngine | None = None
    missing: dict[str, str] = field(default_factory=dict)
    deletions_seen: str | None = None  # the store's deletion mark this process has caught up with
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _need(self, what: str, obj: T | None) -> T:
        if obj is None:
            raise Unavailable(self.missing.get(what, f"{what} is not available in model version {self.version}"))
        return obj

    # ------------------------------------------------------------------ answering
    def recommend(self, request: RecommendRequest) -> list[RankedItem]:
        """The shopper's list now (their latest events are read from the store per request)."""
        return self._need("recommend", self.recommender).recommend(request)

    def search(self, request: SearchRequest) -> SearchResult:
        """Search with personalisation. Nothing is written here: the caller queues the search event
        (it shapes the user's next recommendations) and the impressions with the model version."""
        engine = self._need("search", self.searcher)
        return engine.search(
            request.query,
            user_id=request.user_id,
            filters=request.filters,
            k=request.k,
            store=self.store,
            request_id=request.request_id,
        )

    def similar(self, item_id: str, k: int) -> list[RankedItem]:
        from shopsense.similar import similar

        catalog = self._need("similar", self.catalog)
        return [RankedItem(r.item_id, r.score, "content", r.reason) for r in similar(item_id, k, catalog=catalog)]

    def autocomplete(self, prefix: str, k: int) -> list[str]:
        return list(self._need("autocomplete", self.searcher).autocomplete(prefix, k))

    def forget_user(self, user_id: str, deletion: UserDeletion | None = None) -> None:
        """Drop what this process holds in memory about a deleted user: their searches (autocomplete
        and "did you mean" counts, the vectors of queries nobody else searched). Nothing else is kept
        per user (recommendations read the store per request); trained files forget the user at the
        next training (they are built from the store)."""
        if deletion is None:
            return
        if self.searcher is not None:
            self.searcher.forget_searches(deletion.searches)
        for encoder in self._encoders():
            encoder.forget_queries(deletion.forgotten_queries)
        self.deletions_seen = deletion.mark

    def catch_up_on_deletions(self) -> bool:
        """Another process (a worker, the CLI) deleted shoppers: cut autocomplete's past searches to
        what the store holds and empty the encoders' query memory (vectors come back from the store's
        cache, where the forgotten ones are gone). Cheap when nothing changed; True when it acted."""
        mark = self.store.deletion_mark()
        if mark == self.deletions_seen:
            return False
        if self.searcher is not None:
            self.searcher.limit_searches(self.store.search_queries())
        for encoder in self._encoders():
            encoder.forget_queries(encoder.remembered_queries())
        self.deletions_seen = mark  # last: a failure above is retried at the next check
        return True

    def flush_query_vectors(self) -> int:
        """Write the query vectors this version's encoders queued (see ``TextEncoder.defer_writes``)."""
        return sum(int(e.flush_query_vectors()) for e in self._encoders() if hasattr(e, "flush_query_vectors"))

    def _encoders(self) -> list[Any]:
        found = {id(e): e for e in (self.encoder, getattr(self.recommender, "_encoder", None)) if e is not None}
        return [e for e in found.values() if hasattr(e, "forget_queries")]

    def linked(self, searcher: SearchEngine) -> SearchEngine:
        """``searcher`` personalising with this version's collaborative links (co-visitation / item-kNN
        of the loaded recommender); content only when the version has none."""
        from shopsense.search.collaborative import from_recommender

        sources = searcher.config.collaborative_sources
        searcher.use_affinity(from_recommender(self.recommender, sources) if self.recommender else None)
        searcher.use_joint(self._joint(searcher))
        return searcher.use_images(self._images(searcher))

    def _joint(self, searcher: SearchEngine) -> SearchRanker | None:
        """The version's joint ranker over ``searcher``'s rows, when it won on logged search lists."""
        rec = self.recommender
        engine = rec.engine if rec is not None else None
        if rec is None or engine is None or engine.search_ranker is None or engine.side is None:
            return None
        return SearchRanker(engine.search_ranker, engine.side, rec.items, searcher.index.item_ids)

    def _images(self, searcher: SearchEngine) -> Any:
        """The version's pictures over ``searcher``'s rows (None: it kept none, or they cannot load)."""
        from shopsense.search.images import ImageRetriever

        try:
            # products added since the version was trained: their pictures are encoded here
            index = searcher.index
            return ImageRetriever.from_version(self.path, self.settings, index.row_of, index.n_products, self.store)
        except Exception as e:  # search by text still answers
            log.error("image search unavailable: %s", e)
            self.missing["search_image"] = f"image vectors of version {self.version} not loaded: {e}"
            return None

    def search_image(self, data: bytes, k: int, filters: dict[str, Any] | None = None) -> list[RankedItem]:
        """The products whose pictures look most like ``data`` (an uploaded image), best first.
        Raises :class:`~shopsense.features.image_cache.ImageFetchError` for an upload that is no image."""
        searcher = self._need("search", self.searcher)
        images = searcher.images
        if images is None:
            raise Unavailable(
                self.missing.get("search_image")
                or f"model version {self.version} has no product images: set [images] model and train"
            )
        vector = images.image_vector(data, self.settings.images.max_upload_bytes)
        mask = searcher.index.columns.mask(filters) if filters else None
        rows, sims = images.top(vector, k, mask)
        ids = searcher.index.item_ids
        titles = searcher.index.products[C.TITLE].tolist()
        return [
            RankedItem(
                str(ids[r]), float(sc), "image", "looks like your picture", "" if titles[r] is None else str(titles[r])
            )
            for r, sc in zip(rows, sims, strict=True)
        ]

    # ------------------------------------------------------------------ catalog changes
    def refresh_catalog(self, search: bool = True) -> None:
        """Rebuild the catalog index (and with ``search`` the search index) from the store, then swap
        them in; only products whose text changed are encoded again (embedding cache)."""
        with self._catalog_lock:
            try:
                if self.encoder is None:  # the catalog was empty when this version loaded
                    self.encoder = _encoder(self.settings, self.store)
            except Exception as e:
                log.error("text encoder unavailable: %s", e)
                if self.catalog is None:
                    self.missing["similar"] = f"text encoder unavailable: {e}"
                return
            try:
                if self.settings.service.similar_index:
                    self.catalog = _catalog(self.store, self.settings, self.encoder, self.path)
                    self.missing.pop("similar", None)
            except Exception as e:
                log.error("catalog index not rebuilt, keeping the previous one: %s", e)
                if self.catalog is None:
                    self.missing["similar"] = f"no catalog index: {e}"
            if self.recommender is not None:
                try:  # availability, prices and new products for the rules and the new-product slot
                    self.recommender.reload_catalog()
                except Exception as e:
                    log.error("recommender catalog not reloaded: %s", e)
            if not search:
                return
            try:
                # linked before the swap: no request sees the new index without the version's links
                self.searcher = self.linked(_searcher(self.store, self.settings, self.encoder, self.path, rebuild=True))
                self.missing.pop("search", None)
                self.missing.pop("autocomplete", None)
            except Exception as e:
                log.error("search index not rebuilt, keeping the previous one: %s", e)


def _warm_search(served: Served) -> None:
    """Run a few searches at load. The first searches build parts of the search engine lazily
    (about 100,000 Python objects on the 50k-product set, 50-90 ms each): done here, they are built
    before the heap is frozen for the garbage collector, not during shoppers' requests, and not
    walked again by every full collection."""
    from shopsense import columns as C

    searcher = served.searcher
    if searcher is None:
        return
    # two products' first title words (from the index: reading the catalog again would cost a scan)
    titles = searcher.index.tokens.get(C.TITLE) or []
    words = [" ".join(t[:2]) for t in titles[:2] if t]
    for query in [*words, "zzqxv"]:  # the last finds nothing: the did-you-mean path
        try:
            searcher.search(query, user_id=None, filters={}, k=10, store=served.store)
        except Exception as e:  # a warm-up must not stop the version from loading
            log.warning("search warm-up with %r failed: %s", query, e)
            return


def _warm_encoder(encoder: Any) -> None:
    """Load the text model and run it once now: loaded on a shopper's first new query instead, it
    stalls that worker for seconds (3.3 s for the ONNX int8 MiniLM on a 2-core EPYC) with every
    request queued behind it (the soak's first minute: /recommend p99 2.2 s)."""
    try:
        encoder.encode(["warm up"], kind="query")  # not through the query cache: the model must run
    except Exception as e:  # a warm-up must not stop the version from loading
        log.warning("text encoder warm-up failed: %s", e)


def _encoder(settings: Settings, store: KnowledgeStore) -> Any:
    """The text encoder of every part of the service; query vectors go through the store's cache."""
    from shopsense.features.text import TextEncoder

    return TextEncoder(settings.encoder).use_store(store)


def _catalog(store: KnowledgeStore, settings: Settings, encoder: Any, path: Path | None = None) -> Any:
    from shopsense.similar import catalog_index

    return catalog_index(store, settings, encoder, path)


def _searcher(
    store: KnowledgeStore, settings: Settings, encoder: Any, path: Path | None, *, rebuild: bool = False
) -> SearchEngine:
    """The version's own search engine (``<version>/search``) when training wrote one, else the one
    the CLI keeps under ``<home>/search`` (built from the store when missing or when ``rebuild``),
    with the service's shared ``encoder``; not linked yet (:meth:`Served.linked`)."""
    from shopsense.search import load_or_build

    encoder = encoder if encoder is not None else _encoder(settings, store)
    return load_or_build(store, settings, version=path, encoder=encoder, rebuild=rebuild, active_links=False)


def load(
    version: str, path: Path | None, store: KnowledgeStore, settings: Settings, previous: Served | None = None
) -> Served:
    """Load every engine of a model version. A part that cannot load is recorded in ``missing``
    (its routes answer 503 with the reason) unless the version's own artifacts are broken. The
    similar-products index is built from the catalog, not the version: ``previous`` (the version
    served until now) lends its index until this version's own is built."""
    from shopsense.versions import encoder_settings

    settings = encoder_settings(settings, path)  # a version that tuned its text encoder serves with it
    served = Served(version=version or None, path=path, store=store, settings=settings)
    if not version or path is None:
        served.missing["recommend"] = (
            "no trained model: run `shopsense train` (or POST /train) and wait for it to complete"
        )
    else:
        from shopsense.versions import read_manifest

        # a version whose files do not load (or are of another format) raises here: the server
        # keeps the version it serves
        read_manifest(path)
        served.recommender = Recommender(store, settings, path)
    if store.stats()["products"] == 0:
        served.missing["similar"] = served.missing["search"] = served.missing["autocomplete"] = (
            "the catalog is empty: add products (PUT /products or shopsense ingest products)"
        )
        return served
    try:  # search first: building it from the store creates the encoder the catalog then shares
        served.searcher = served.linked(_searcher(store, settings, None, path))
        served.encoder = getattr(served.searcher, "encoder", None)
        if served.encoder is not None and hasattr(served.encoder, "defer_writes"):
            served.encoder.defer_writes()  # new query vectors reach the store in the background (app.py)
        if served.recommender is not None:  # one loaded model per process, not one per engine
            served.recommender.use_encoder(served.encoder)
        served.catch_up_on_deletions()  # a version trained before a deletion still counts their searches
        if served.encoder is not None:
            _warm_encoder(served.encoder)
            served.encoder.remember_queries(store.recent_queries(settings.encoder.query_cache_size))
        _warm_search(served)
    except Exception as e:
        served.missing["search"] = served.missing["autocomplete"] = f"no search index: {e}"
    # The similar-products index may need the whole catalog encoded (minutes for a large new catalog):
    # built in the background, so recommend and search serve meanwhile and /similar says 503 "building".
    if not settings.service.similar_index:
        served.missing["similar"] = "the similar-products index is turned off (service.similar_index = false)"
        return served
    if previous is not None and previous.catalog is not None:
        served.catalog = previous.catalog  # a hot swap: /similar keeps answering while the new one builds
    else:
        served.missing["similar"] = "the similar-products index is being built; retry shortly"
    threading.Thread(target=served.refresh_catalog, kwargs={"search": False}, daemon=True, name="catalog-index").start()
    return served
