"""The service over the real library engines (text encoder, search, similar) on a six-product catalog."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import KnowledgeStore, open_store
from tests.service.conftest import PRODUCTS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, KnowledgeStore, dict[str, str]]]:
    s = load_settings(home=tmp_path_factory.mktemp("real") / "home")
    store = open_store(s.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    hdr = {"X-API-Key": create_key(store, ["read", "write"])[1]}
    with TestClient(create_app(s, block_on_load=True)) as client:
        served = client.app.state.shopsense.models.current
        deadline = time.monotonic() + 120
        while served.catalog is None and "being built" in served.missing.get("similar", ""):
            assert time.monotonic() < deadline, "similar-products index never built"
            time.sleep(0.1)
        yield client, store, hdr
    store.close()


def test_search_finds_misspelled_product_and_logs_the_search(real) -> None:
    client, store, hdr = real
    r = client.get("/search", params={"q": "espreso machine", "user_id": "shopper", "k": 3}, headers=hdr).json()
    assert r["items"][0]["item_id"] == "p4"
    assert r["did_you_mean"] == "espresso machine"
    assert r["facets"]["brand"]["Brew"] >= 1 and r["model_version"] is None
    client.app.state.shopsense.impressions.flush()  # written by the background flusher, not the request
    ev = store.events(user_id="shopper")
    assert ev["event_type"].tolist() == ["search"] and ev["request_id"].tolist() == [r["request_id"]]
    brand = client.get("/search", params={"q": "running shoe", "brand": "Peak"}, headers=hdr).json()
    assert [h["item_id"] for h in brand["items"]] == ["p3"]


def test_search_says_did_you_mean_when_a_query_finds_little(real) -> None:
    client, _, hdr = real
    r = client.get("/search", params={"q": "coffee grinder xyzzy", "k": 3}, headers=hdr).json()
    assert r["did_you_mean"] == "coffee grinder" and r["showing_results_for"] is None
    assert r["items"][0]["item_id"] == "p5"
    fixed = client.get("/search", params={"q": "espreso machine", "k": 3}, headers=hdr).json()
    assert fixed["showing_results_for"] == fixed["did_you_mean"] == "espresso machine"


def test_a_new_querys_vector_reaches_the_store_in_the_background(real) -> None:
    # written by the server's upkeep round (every reload_interval_s), not on the request's path
    client, store, hdr = real
    q = "walnut espresso cup"
    assert client.get("/search", params={"q": q}, headers=hdr).status_code == 200
    qid, keys = client.app.state.shopsense.models.current.encoder.query_model_id, store.query_keys([q])
    deadline = time.monotonic() + 30
    while not store.get_embeddings(qid, keys):
        assert time.monotonic() < deadline, "the query's vector never reached the store"
        time.sleep(0.1)


def test_similar_and_autocomplete(real) -> None:
    client, _, hdr = real
    s = client.get("/similar/p4", params={"k": 2}, headers=hdr).json()
    assert s["items"][0]["item_id"] == "p5" and "same category" in s["items"][0]["explanation"]
    assert client.get("/similar/nope", headers=hdr).status_code == 404
    a = client.get("/autocomplete", params={"q": "coff"}, headers=hdr).json()
    assert [x.lower() for x in a["suggestions"]] == ["coffee grinder"]


def test_search_shares_the_services_encoder_after_a_catalog_refresh(real) -> None:
    # one text model per process: the rebuilt search index encodes with the encoder the rest shares
    client, _, hdr = real
    served = client.app.state.shopsense.models.current
    assert served.encoder is not None and served.searcher.encoder is served.encoder
    served.refresh_catalog()
    assert served.searcher.encoder is served.encoder
    r = client.get("/search", params={"q": "espreso machine", "k": 3}, headers=hdr).json()
    assert r["items"][0]["item_id"] == "p4"


def test_similar_is_503_while_its_index_builds(tmp_path) -> None:
    from shopsense.service import engines

    s = load_settings(home=tmp_path / "home")
    store = open_store(s.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    served = engines.Served(version="v1", path=None, store=store, settings=s)
    served.missing["similar"] = "the similar-products index is being built; retry shortly"
    with pytest.raises(engines.Unavailable, match="being built"):
        served.similar("p4", 3)


def test_recommend_without_training_is_503(real) -> None:
    client, _, hdr = real
    r = client.get("/recommend", params={"user_id": "shopper"}, headers=hdr)
    assert r.status_code == 503 and "no trained model" in r.json()["detail"]


@pytest.fixture(scope="module")
def trained(real) -> tuple[TestClient, KnowledgeStore, dict[str, str]]:
    """The same app after a real training (shopsense.training.train) on a few shoppers."""
    from shopsense.training import train

    client, store, hdr = real
    rows = []
    for u in range(8):
        shoes, coffee = ["p1", "p2", "p3"], ["p4", "p5", "p6"]
        for t, item in enumerate(shoes if u % 2 else coffee):
            rows.append(
                {"user_id": f"t{u}", "item_id": item, "event_type": "view", "timestamp": 1_700_000_000 + 100 * u + t}
            )
    store.add_events(pd.DataFrame(rows))
    result = train(store, client.app.state.shopsense.settings)
    assert client.app.state.shopsense.models.refresh() is True
    assert client.app.state.shopsense.models.version == result.version
    return client, store, hdr


def test_recommend_over_a_trained_version_adapts_to_a_new_event(trained) -> None:
    client, store, hdr = trained
    shoes = {"user_id": "fresh", "item_id": "p1", "event_type": "view"}
    assert client.post("/events", json=shoes, headers=hdr).status_code == 200
    r = client.get("/recommend", params={"user_id": "fresh", "k": 2}, headers=hdr).json()
    assert r["model_version"] and all(h["explanation"] for h in r["items"])
    assert {h["item_id"] for h in r["items"]} <= {"p2", "p3"}, r  # the shoe shoppers' other items
    coffee = [{"user_id": "fresh", "item_id": i, "event_type": "add_to_cart"} for i in ("p4", "p5")]
    assert client.post("/events", json=coffee, headers=hdr).status_code == 200
    after = client.get("/recommend", params={"user_id": "fresh", "k": 1}, headers=hdr).json()
    assert [h["item_id"] for h in after["items"]] == ["p6"], after  # the latest interest wins, no retraining


def test_search_personalises_with_the_served_versions_links(trained) -> None:
    client, _, _ = trained
    searcher = client.app.state.shopsense.models.current.searcher
    assert searcher.affinity is not None and searcher.affinity.source == "covisit"
    assert len(searcher.affinity) == 6  # the version's item map, shared with the recommender


def test_a_served_search_changes_that_users_recommendations(trained) -> None:
    client, _, hdr = trained
    before = client.get("/recommend", params={"user_id": "searcher", "k": 3}, headers=hdr).json()
    r = client.get("/search", params={"q": "coffee grinder", "user_id": "searcher", "k": 3}, headers=hdr)
    assert r.status_code == 200
    client.app.state.shopsense.impressions.flush()
    after = client.get("/recommend", params={"user_id": "searcher", "k": 3}, headers=hdr).json()
    coffee = {"p4", "p5", "p6"}
    assert (
        sum(h["item_id"] in coffee for h in after["items"]) == 3 > sum(h["item_id"] in coffee for h in before["items"])
    ), (before, after)


def test_a_new_version_lends_the_served_similar_index_until_its_own_is_built(real) -> None:
    """A hot swap must not turn /similar into 503 "being built" (seen in the soak after each swap)."""
    from shopsense.service import engines

    client, store, _ = real
    state = client.app.state.shopsense
    served = state.models.current
    assert served.catalog is not None
    fresh = engines.load("", None, store, state.settings, previous=served)
    assert fresh.catalog is served.catalog and "similar" not in fresh.missing
    assert fresh.similar("p4", 2)  # answers at once, before its own index is built
    cold = engines.load("", None, store, state.settings)
    assert "being built" in cold.missing.get("similar", "") or cold.catalog is not None


def test_the_text_model_is_loaded_before_the_server_is_ready(tmp_path) -> None:
    """A server whose search index is already on disk never ran the model while loading: loaded on a
    shopper's first new query instead, it stalled that worker for seconds with every request queued."""
    s = load_settings(home=tmp_path / "home")
    store = open_store(s.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    with TestClient(create_app(s, block_on_load=True)):
        pass  # the first start builds the search index (and encodes the products)
    s.service.similar_index = False
    with TestClient(create_app(s, block_on_load=True)) as client:
        encoder = client.app.state.shopsense.models.current.encoder
        assert encoder is not None and encoder._model is not None
    store.close()
