"""``GET /recommend`` over the real engines of a trained shop: what the route passes to the engine
(category as context, query, diversity, filters) is what the CLI passes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shopsense.config import load_settings
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store
from shopsense.training import train
from tests.test_recommend import FAST, _events, _products

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], Recommender]]:
    settings = load_settings(home=tmp_path_factory.mktemp("route") / "home")
    store = open_store(settings.store_url)
    store.upsert_products(_products())
    store.add_events(_events())
    train(store, settings, config=FAST)
    hdr = {"X-API-Key": create_key(store, ["read"])[1]}
    with TestClient(create_app(settings, block_on_load=True)) as client:
        yield client, hdr, Recommender.from_store(store, settings)
    store.close()


def _get(client: TestClient, hdr: dict[str, str], **params: object) -> dict:
    r = client.get("/recommend", params=params, headers=hdr)
    assert r.status_code == 200, r.text
    return r.json()


def test_category_is_the_context_of_a_shopper_without_history(shop) -> None:
    client, hdr, rec = shop
    # before, HTTP only filtered by the category: a cold shopper got trending products of it
    items = _get(client, hdr, user_id="nobody", k=3, category="Tools")["items"]
    assert [i["source"] for i in items] == ["popular_in_category"] * 3
    assert items[0]["explanation"] == "popular in Tools" and all(i["item_id"].startswith("d") for i in items)
    cli = rec.recommend(RecommendRequest("nobody", 3, category="Tools"))
    assert [i["item_id"] for i in items] == [r.item_id for r in cli]


def test_query_and_diversity_reach_the_engine(shop) -> None:
    client, hdr, rec = shop
    items = _get(client, hdr, user_id="nobody", k=3, query="cordless drill")["items"]
    assert items[0]["source"] == "search" and items[0]["item_id"].startswith("d")
    diverse = _get(client, hdr, user_id="u0", k=4, diversity=0.9)["items"]
    cli = rec.recommend(RecommendRequest("u0", 4, diversity=0.9))
    assert [i["item_id"] for i in diverse] == [r.item_id for r in cli]
    assert client.get("/recommend", params={"user_id": "u0", "diversity": 2}, headers=hdr).status_code == 422


def test_filters_of_the_route(shop) -> None:
    client, hdr, _ = shop
    cheap = _get(client, hdr, user_id="u0", k=3, max_price=23.5, details=True)["items"]
    assert cheap and all(i["product"]["price"] <= 23.5 for i in cheap)
    no_tools = _get(client, hdr, user_id="u1", k=5, exclude_category="Tools", details=True)["items"]
    assert all(not i["product"]["category"].startswith("Tools") for i in no_tools)
