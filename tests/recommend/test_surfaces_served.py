"""Every surface served from a trained version of a shop with a purchase funnel, over the library and
HTTP: each list's candidates and exclusions."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.engine_config import EngineConfig
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store
from shopsense.training import train

pytestmark = pytest.mark.slow
CONFIG = EngineConfig(
    sequential=None,
    ease={"l2": 1.0},
    per_source=10,
    returns={"min_moments": 20, "rounds": 60, "rebuy_min_buyers": 3},
)
T0 = 1_750_000_000.0
# machines (category "Coffee > Machines") are bought with filters and cups; beans are bought again
MACHINES, FILTERS, CUPS, BEANS = ([f"{p}{i}" for i in range(6)] for p in ("m", "f", "c", "b"))


def _products() -> pd.DataFrame:
    rows = []
    for ids, cat, title in (
        (MACHINES, "Coffee > Machines", "espresso machine"),
        (FILTERS, "Coffee > Filters", "paper filter"),
        (CUPS, "Kitchen > Cups", "ceramic cup"),
        (BEANS, "Coffee > Beans", "coffee beans"),
    ):
        rows += [(i, f"{title} {i}", cat, 10.0 + n, True) for n, i in enumerate(ids)]
    return pd.DataFrame(rows, columns=[C.ITEM, C.TITLE, C.CATEGORY, C.PRICE, C.AVAILABLE])


def _events() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        t = T0 + u * 50_000
        machines = rng.choice(MACHINES, 3, replace=False)
        for step, m in enumerate([*machines, machines[1], machines[0], machines[2]]):
            rows.append((f"u{u}", m, C.VIEW, t + 60 * step))
        rows.append((f"u{u}", machines[1], C.ADD_TO_CART, t + 400))
        rows.append((f"u{u}", machines[2], C.VIEW, t + 500))
        basket = [machines[1], FILTERS[u % 6], CUPS[u % 6]]
        rows += [(f"u{u}", i, C.PURCHASE, t + 900 + j) for j, i in enumerate(basket)]
        bean = BEANS[u % 6]  # bought, then again a week later
        rows += [(f"u{u}", bean, C.PURCHASE, t + 5000), (f"u{u}", bean, C.PURCHASE, t + 7 * 86400)]
    # the shopper of the tests: browsed machines, carted m4, bought beans b2 and a cup before
    rows += [("shopper", "c1", C.PURCHASE, T0 - 9000), ("shopper", "b2", C.PURCHASE, T0 - 8000)]
    rows += [("shopper", m, C.VIEW, T0 + 5e6 + 60 * s) for s, m in enumerate(["m3", "m4", "m5", "m3"])]
    rows.append(("shopper", "m4", C.ADD_TO_CART, T0 + 5e6 + 300))
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Recommender, TestClient, dict[str, str]]]:
    settings = load_settings(home=tmp_path_factory.mktemp("surfaces") / "home")
    store = open_store(settings.store_url)
    store.upsert_products(_products())
    store.add_events(_events())
    result = train(store, settings, config=CONFIG)
    assert result.metrics["returns"]["purchase_moments"] > 0  # the return scorer was learned
    hdr = {"X-API-Key": create_key(store, ["read"])[1]}
    with TestClient(create_app(settings, block_on_load=True)) as client:
        yield Recommender.from_store(store, settings), client, hdr
    store.close()


def _ids(items) -> list[str]:
    return [r.item_id for r in items]


def test_continue_shopping_lists_own_items_cart_first_and_never_a_one_time_purchase(shop):
    rec, _, _ = shop
    items = rec.recommend(RecommendRequest("shopper", 10, surface="continue_shopping"))
    ids = _ids(items)
    assert ids[0] == "m4" and items[0].explanation == "still in your cart"
    assert set(ids) <= {"m3", "m4", "m5", "b2"} and "c1" not in ids  # cups are bought once
    assert all(r.source == "return" for r in items)


def test_buy_again_lists_only_what_is_bought_again(shop):
    rec, _, _ = shop
    items = rec.recommend(RecommendRequest("shopper", 10, surface="buy_again"))
    assert _ids(items) == ["b2"] and items[0].explanation == "you bought this before"


def test_for_you_mixes_return_and_discovery_within_the_share(shop):
    rec, _, _ = shop
    k = 5
    items = rec.recommend(RecommendRequest("shopper", k))
    sources = [r.source for r in items]
    assert "return" in sources and any(s != "return" for s in sources)
    assert sources.count("return") <= int(rec.config.max_return_share * k)
    assert "c1" not in _ids(items)


def test_complements_exclude_the_anchor_its_category_and_the_cart(shop):
    rec, _, _ = shop
    together = rec.recommend(RecommendRequest("anyone", 5, surface="bought_together", item_id="m1"))
    ids = _ids(together)
    assert ids and not any(i.startswith("m") for i in ids)  # not another machine
    assert {i[0] for i in ids[:4]} == {"f", "c"} and together[0].explanation.startswith("often bought with")
    cart = rec.recommend(RecommendRequest("shopper", 5, surface="complete_the_cart"))
    assert cart and not any(r.item_id.startswith("m") for r in cart)


def test_surfaces_over_http(shop):
    rec, client, hdr = shop
    r = client.get("/recommend", params={"user_id": "shopper", "surface": "continue_shopping", "k": 3}, headers=hdr)
    assert r.status_code == 200, r.text
    assert [i["item_id"] for i in r.json()["items"]] == _ids(
        rec.recommend(RecommendRequest("shopper", 3, surface="continue_shopping"))
    )
    r = client.get("/recommend", params={"user_id": "x", "surface": "bought_together", "item_id": "m1"}, headers=hdr)
    assert r.status_code == 200 and r.json()["items"]
    for _ in range(600):  # the similar-products index is built in the background after loading
        similar = client.get("/recommend", params={"user_id": "x", "surface": "similar", "item_id": "m1"}, headers=hdr)
        if "being built" not in similar.text:
            break
        time.sleep(0.1)
    assert similar.status_code == 200, similar.text
    assert "m1" not in [i["item_id"] for i in similar.json()["items"]]
    for bad in ({"surface": "similar"}, {"surface": "bought_together"}, {"surface": "nope"}):
        assert client.get("/recommend", params={"user_id": "x", **bad}, headers=hdr).status_code == 422
