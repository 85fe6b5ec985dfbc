"""The one place where the service meets the library engines (recommend, search, similar, autocomplete).

:func:`load` builds, for one model version folder, the objects that answer requests; the routes call
:class:`Served` and never the library directly, so a change of library API is one edit here. Every
method returns plain dicts ``{item_id, score, source, explanation}``, best first. A capability whose
library is missing raises :class:`Unavailable` (the HTTP layer answers 503 with the reason).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopsense.config import Settings
from shopsense.store import KnowledgeStore

log = logging.getLogger("shopsense.service")


class Unavailable(RuntimeError):
    """A capability cannot answer (library not installed, nothing trained for it)."""


@dataclass
class Served:
    """What one model version serves. Catalog-based parts (similar products) are rebuilt in the
    background when the catalog changes (:meth:`refresh_catalog`) and swapped in by one assignment."""

    version: str
    path: Path | None
    store: KnowledgeStore
    settings: Settings
    encoder: Any | None = None
    catalog: Any | None = None  # shopsense.index.catalog.CatalogIndex
    recommender: Any | None = None
    searcher: Any | None = None
    missing: dict[str, str] = field(default_factory=dict)
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _need(self, what: str, obj: Any) -> Any:
        if obj is None:
            raise Unavailable(self.missing.get(what, f"{what} is not available in model version {self.version}"))
        return obj

    # ------------------------------------------------------------------ answering
    def recommend(self, user_id: str, k: int, filters: dict[str, Any]) -> list[dict[str, Any]]:
        self._need("recommend", self.recommender)
        raise Unavailable("recommendation engine not wired yet")

    def search(self, query: str, user_id: str | None, k: int, filters: dict[str, Any]) -> dict[str, Any]:
        self._need("search", self.searcher)
        raise Unavailable("search engine not wired yet")

    def similar(self, item_id: str, k: int) -> list[dict[str, Any]]:
        from shopsense.similar import similar

        catalog = self._need("similar", self.catalog)
        return [
            {"item_id": r.item_id, "score": r.score, "source": "content", "explanation": r.reason}
            for r in similar(item_id, k, catalog=catalog)
        ]

    def autocomplete(self, prefix: str, k: int) -> list[str]:
        self._need("autocomplete", self.searcher)
        raise Unavailable("autocomplete not wired yet")

    def forget_user(self, user_id: str) -> None:
        """Drop anything cached about a deleted user."""
        for obj in (self.recommender, self.searcher):
            fn = getattr(obj, "forget_user", None)
            if callable(fn):
                fn(user_id)

    # ------------------------------------------------------------------ catalog changes
    def refresh_catalog(self) -> None:
        """Rebuild the catalog index from the store (only what changed is re-encoded) and swap it in."""
        if self.encoder is None:
            return
        with self._catalog_lock:
            try:
                self.catalog = _catalog(self.store, self.settings, self.encoder)
                self.missing.pop("similar", None)
            except Exception as e:
                log.error("catalog index not rebuilt, keeping the previous one: %s", e)


def _encoder(settings: Settings) -> Any:
    from shopsense.features.text import TextEncoder

    return TextEncoder(settings.encoder)


def _catalog(store: KnowledgeStore, settings: Settings, encoder: Any) -> Any:
    from shopsense.index.catalog import CatalogIndex

    return CatalogIndex.from_store(store, encoder, cache_dir=settings.home / "index" / "catalog")


def load(version: str, path: Path | None, store: KnowledgeStore, settings: Settings) -> Served:
    """Load every engine of a model version. A part that cannot load is recorded in ``missing``
    (its routes answer 503 with the reason) unless the version's own artifacts are broken."""
    served = Served(version=version, path=path, store=store, settings=settings)
    try:
        served.encoder = _encoder(settings)
    except Exception as e:
        served.missing["similar"] = served.missing["search"] = f"text encoder unavailable: {e}"
        return served
    try:
        served.catalog = _catalog(store, settings, served.encoder)
    except Exception as e:  # e.g. an empty catalog
        served.missing["similar"] = f"no catalog index: {e}"
    return served
