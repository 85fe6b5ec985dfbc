"""Service fixtures: an app over a fresh store, keys of every scope, and a tiny fake engine whose
answers are obvious (so these tests exercise the HTTP layer, not model quality)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shopsense import columns as C
from shopsense.config import Settings, load_settings
from shopsense.ranking.ranked import RankedItem
from shopsense.recommend.request import RecommendRequest
from shopsense.search.request import SearchRequest
from shopsense.search.result import SearchResult
from shopsense.service.app import create_app
from shopsense.service.engines import Served
from shopsense.service.keys import create_key
from shopsense.store import KnowledgeStore, open_store

PRODUCTS = [
    {"item_id": "p1", "title": "Red running shoe", "category": "Shoes > Running", "brand": "Acme", "price": 50.0},
    {"item_id": "p2", "title": "Blue running shoe", "category": "Shoes > Running", "brand": "Acme", "price": 60.0},
    {"item_id": "p3", "title": "Trail running shoe", "category": "Shoes > Trail", "brand": "Peak", "price": 90.0},
    {"item_id": "p4", "title": "Espresso machine", "category": "Kitchen > Coffee", "brand": "Brew", "price": 200.0},
    {"item_id": "p5", "title": "Coffee grinder", "category": "Kitchen > Coffee", "brand": "Brew", "price": 40.0},
    {"item_id": "p6", "title": "Milk frother", "category": "Kitchen > Coffee", "brand": "Froth", "price": 25.0},
]


@dataclass
class FakeServed(Served):
    """Recommends the unseen items of the category the user touched last (most popular first);
    searches titles by word; similar = same category. Reads the store per request, like the engine."""

    def refresh_catalog(self) -> None:  # reads the store per request: nothing to rebuild
        pass

    def _catalog(self) -> pd.DataFrame:
        return self.store.products()

    def recommend(self, request: RecommendRequest) -> list[RankedItem]:
        if self.version is None:
            from shopsense.service.engines import Unavailable

            raise Unavailable(self.missing["recommend"])
        cat = self._catalog()
        # the engine's per-request read (nothing for a shopper who opted out)
        recent = pd.DataFrame(self.store.recent_event_columns(request.user_id, 20, columns=(C.ITEM,)), columns=[C.ITEM])
        seen = set(recent[C.ITEM].dropna())
        for wanted in request.rules.include_categories:
            cat = cat[cat[C.CATEGORY].str.startswith(wanted, na=False)]
        last = recent[C.ITEM].dropna()
        if len(last):
            last_cat = self.store.get_product(last.iloc[-1]) or {}
            top = str(last_cat.get(C.CATEGORY, "")).split(" > ")[0]
            cat = cat.assign(_m=cat[C.CATEGORY].str.startswith(top, na=False)).sort_values(
                ["_m", C.ITEM], ascending=[False, True]
            )
            src = "category"
        else:
            src = "popular"
        cat = cat[~cat[C.ITEM].isin(seen)]
        return [
            RankedItem(i, float(request.k - n), src, f"because of {src}")
            for n, i in enumerate(cat[C.ITEM].head(request.k))
        ]

    def search(self, request: SearchRequest) -> SearchResult:
        cat = self._catalog()
        words = request.query.lower().split()
        m = cat[C.TITLE].str.lower().apply(lambda t: sum(w in t for w in words))
        cat = cat.assign(_s=m)
        cat = cat[cat["_s"] > 0].sort_values(["_s", C.ITEM], ascending=[False, True])
        if "brand" in request.filters:
            cat = cat[cat[C.BRAND] == request.filters["brand"]]
        facets = {"brand": {str(b): int(n) for b, n in cat[C.BRAND].value_counts().items()}}
        top = cat.head(request.k)
        return SearchResult(
            query=request.query,
            items=top[C.ITEM].tolist(),
            scores=[float(x) for x in top["_s"]],
            matched_fields=[["title"]] * len(top),
            facets=facets,
            total=int(len(cat)),
            request_id=request.request_id,
        )

    def similar(self, item_id: str, k: int) -> list[RankedItem]:
        from shopsense.exceptions import UnknownItemError

        p = self.store.get_product(item_id)
        if p is None:
            raise UnknownItemError(f"unknown item {item_id!r}")
        cat = self._catalog()
        same = cat[(cat[C.CATEGORY] == p[C.CATEGORY]) & (cat[C.ITEM] != item_id)]
        return [RankedItem(i, 1.0, "category") for i in same[C.ITEM].head(k)]

    def autocomplete(self, prefix: str, k: int) -> list[str]:
        t = self._catalog()[C.TITLE]
        return [x for x in t if x.lower().startswith(prefix.lower())][:k]


def fake_loader(store: KnowledgeStore, settings: Settings) -> Any:
    def load(version: str, path: Path | None) -> FakeServed:
        if path is not None and (path / "BROKEN").exists():
            raise ValueError(f"broken artifact: {path / 'BROKEN'}")
        served = FakeServed(version=version or None, path=path, store=store, settings=settings)
        if not version:  # nothing trained: like the real loader, only catalog-based answers
            served.missing["recommend"] = "no trained model: run `shopsense train`"
        return served

    return load


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(home=tmp_path / "home")


@dataclass
class Env:
    client: TestClient
    store: KnowledgeStore
    settings: Settings
    keys: dict[str, str]

    def h(self, scope: str) -> dict[str, str]:
        return {"X-API-Key": self.keys[scope]}


def make_env(settings: Settings, *, train_command: list[str] | None = None, with_model: bool = True) -> Iterator[Env]:
    store = open_store(settings.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    if with_model:
        store.register_version("v1", status="complete", path=None)
        store.activate_version("v1")
    keys = {s: create_key(store, [s])[1] for s in ("read", "write", "admin")}
    app = create_app(settings, loader=fake_loader(store, settings), train_command=train_command, block_on_load=True)
    with TestClient(app) as client:
        yield Env(client, store, settings, keys)
    store.close()


@pytest.fixture
def env(settings: Settings) -> Iterator[Env]:
    yield from make_env(settings)
