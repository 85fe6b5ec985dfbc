"""The one place where the service meets the library engines (recommend, search, similar, autocomplete).

:func:`load` builds, for one model version folder, the objects that answer requests; the routes call
:class:`Served` and never the library directly, so a change of library API is one edit here. Every
method returns plain dicts ``{item_id, score, source, explanation}``, best first. A capability whose
library is missing raises :class:`Unavailable` (the HTTP layer answers 503 with the reason).
"""

from __future__ import annotations

import logging
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
    """What one model version serves."""

    version: str
    path: Path | None
    store: KnowledgeStore
    settings: Settings
    recommender: Any | None = None
    searcher: Any | None = None
    similar_engine: Any | None = None
    missing: dict[str, str] = field(default_factory=dict)

    def _need(self, what: str, obj: Any) -> Any:
        if obj is None:
            raise Unavailable(self.missing.get(what, f"{what} is not available in model version {self.version}"))
        return obj

    def recommend(self, user_id: str, k: int, filters: dict[str, Any]) -> list[dict[str, Any]]:
        raise Unavailable(self.missing.get("recommend", "recommendation engine not available"))

    def search(self, query: str, user_id: str | None, k: int, filters: dict[str, Any]) -> dict[str, Any]:
        raise Unavailable(self.missing.get("search", "search engine not available"))

    def similar(self, item_id: str, k: int) -> list[dict[str, Any]]:
        raise Unavailable(self.missing.get("similar", "similar-products engine not available"))

    def autocomplete(self, prefix: str, k: int) -> list[str]:
        raise Unavailable(self.missing.get("autocomplete", "autocomplete not available"))

    def forget_user(self, user_id: str) -> None:
        """Drop anything cached about a deleted user."""
        for obj in (self.recommender, self.searcher):
            fn = getattr(obj, "forget_user", None)
            if callable(fn):
                fn(user_id)


def load(version: str, path: Path | None, store: KnowledgeStore, settings: Settings) -> Served:
    """Load every engine of a model version (raises if the version's files are broken)."""
    served = Served(version=version, path=path, store=store, settings=settings)
    return served
