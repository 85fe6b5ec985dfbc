"""Events, catalog, lists, deletion, validation and size limits over HTTP."""

from __future__ import annotations

import pytest

from shopsense.config import load_settings
from tests.service.conftest import Env, make_env


def test_events_single_and_batch_are_stored(env: Env) -> None:
    c = env.client
    r = c.post("/events", json={"user_id": "u1", "item_id": "p1", "event_type": "view"}, headers=env.h("write"))
    assert r.json() == {"received": 1, "stored": 1}
    batch = [
        {"user_id": "u1", "item_id": "p2", "event_type": "click", "timestamp": 1700000000, "event_id": "e1"},
        {"user_id": "u2", "event_type": "search", "query": "coffee", "timestamp": 1700000001},
    ]
    assert c.post("/events", json=batch, headers=env.h("write")).json() == {"received": 2, "stored": 2}
    # the same event_id again is stored once (idempotent retries)
    assert c.post("/events", json=batch[:1], headers=env.h("write")).json() == {"received": 1, "stored": 0}
    ev = env.store.events()
    assert sorted(ev["event_type"]) == ["click", "search", "view"]
    assert ev.loc[ev["event_type"] == "search", "query"].item() == "coffee"


def test_funnel_events_over_http(env: Env) -> None:
    funnel = [
        {"user_id": "u9", "item_id": "p1", "event_type": t, "timestamp": 1700000000 + i}
        for i, t in enumerate(["favorite", "add_to_cart", "remove_from_cart"])
    ]
    assert env.client.post("/events", json=funnel, headers=env.h("write")).json() == {"received": 3, "stored": 3}
    assert env.store.events(user_id="u9")["event_type"].tolist() == ["favorite", "add_to_cart", "remove_from_cart"]
    assert env.store.stats()["events_by_type"]["remove_from_cart"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        {"user_id": "u1", "event_type": "view"},  # no item
        {"user_id": "u1", "event_type": "search"},  # no query
        {"user_id": "u1", "item_id": "p1", "event_type": "teleport"},
        {"user_id": "", "item_id": "p1", "event_type": "view"},
        {"user_id": "u1", "item_id": "p1", "event_type": "view", "timestamp": -5},
        {"user_id": "u1", "item_id": "p1", "event_type": "view", "colour": "red"},
        {"user_id": "u\x00", "item_id": "p1", "event_type": "view"},
        [{"user_id": "u1", "item_id": "p1", "event_type": "view"}, {"user_id": 3}],
        "not an event",
    ],
)
def test_bad_events_are_422_and_nothing_is_stored(env: Env, bad: object) -> None:
    r = env.client.post("/events", json=bad, headers=env.h("write"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"]
    assert env.store.events().empty


def test_batch_limit_and_body_cap(settings) -> None:
    s = settings.model_copy(
        update={"service": settings.service.model_copy(update={"max_batch_events": 5, "max_body_bytes": 4096})}
    )
    for e in make_env(s):
        ev = {"user_id": "u1", "item_id": "p1", "event_type": "view"}
        r = e.client.post("/events", json=[ev] * 6, headers=e.h("write"))
        assert r.status_code == 413 and "limit of 5" in r.json()["detail"]
        assert e.client.post("/events", json=[ev] * 5, headers=e.h("write")).status_code == 200
        big = {"item_id": "p9", "title": "x", "description": "y" * 5000}
        r = e.client.put("/products", json=big, headers=e.h("admin"))
        assert r.status_code == 413 and "4096" in r.json()["detail"]
        # a body streamed without Content-Length is cut off too
        r = e.client.post(
            "/events",
            content=iter([b"[" + b" " * 3000, b" " * 3000 + b"]"]),
            headers={**e.h("write"), "Content-Type": "application/json"},
        )
        assert r.status_code == 413


def test_default_batch_limit_is_10000(settings) -> None:
    assert settings.service.max_batch_events == 10_000


def test_products_upsert_read_delete(env: Env) -> None:
    c = env.client
    r = c.put(
        "/products",
        json=[{"item_id": "p9", "title": "Tea kettle", "price": 30, "tags": ["tea"]}],
        headers=env.h("admin"),
    )
    assert r.json() == {"received": 1, "written": 1}
    p = c.get("/products/p9", headers=env.h("read")).json()
    assert p["title"] == "Tea kettle" and p["price"] == 30 and p["tags"] == ["tea"] and p["available"] is True
    assert (
        c.put(
            "/products",
            json={"item_id": "p9", "title": "Tea kettle", "price": 30, "tags": ["tea"]},
            headers=env.h("admin"),
        ).json()["written"]
        == 0
    )
    assert (
        c.put("/products", json={"item_id": "p9", "title": "x", "price": -1}, headers=env.h("admin")).status_code == 422
    )
    kitchen = c.get("/products?category=Kitchen&limit=2", headers=env.h("read")).json()
    assert [x["item_id"] for x in kitchen] == ["p4", "p5"]
    assert c.delete("/products/p9", headers=env.h("admin")).json() == {"deleted": {"products": 1}}
    assert c.get("/products/p9", headers=env.h("read")).status_code == 404
    assert c.delete("/products/p9", headers=env.h("admin")).status_code == 404


def test_recommend_reacts_to_a_new_event_without_retraining(env: Env) -> None:
    c = env.client
    before = c.get("/recommend?user_id=u7&k=3", headers=env.h("read")).json()
    assert before["model_version"] == "v1" and len(before["request_id"]) == 32
    assert [h["item_id"] for h in before["items"]] == ["p1", "p2", "p3"]
    c.post("/events", json={"user_id": "u7", "item_id": "p4", "event_type": "view"}, headers=env.h("write"))
    after = c.get("/recommend?user_id=u7&k=3&details=true", headers=env.h("read")).json()
    assert [h["item_id"] for h in after["items"]] == ["p5", "p6", "p1"]
    assert after["items"][0]["product"]["title"] == "Coffee grinder"
    assert after["items"][0]["rank"] == 1 and after["items"][0]["explanation"]
    assert after["request_id"] != before["request_id"]


def test_search_similar_autocomplete(env: Env) -> None:
    c = env.client
    r = c.get("/search?q=running shoe&brand=Acme&details=true", headers=env.h("read")).json()
    assert [h["item_id"] for h in r["items"]] == ["p1", "p2"]
    assert r["facets"] == {"brand": {"Acme": 2}} and r["query"] == "running shoe" and r["request_id"]
    s = c.get("/similar/p4", headers=env.h("read")).json()
    assert [h["item_id"] for h in s["items"]] == ["p5", "p6"]
    assert c.get("/similar/nope", headers=env.h("read")).status_code == 404
    a = c.get("/autocomplete?q=co", headers=env.h("read")).json()
    assert a == {"query": "co", "suggestions": ["Coffee grinder"]}
    for bad in ("/search?q=", "/search?q=x&k=0", "/recommend?user_id=u1&k=100000", "/search?q=x&min_price=-1"):
        assert c.get(bad, headers=env.h("read")).status_code == 422, bad


def test_no_trained_model_is_a_clear_503_for_recommend_only(settings) -> None:
    for e in make_env(settings, with_model=False):
        r = e.client.get("/recommend?user_id=u1", headers=e.h("read"))
        assert r.status_code == 503 and "no trained model" in r.json()["detail"]
        # what needs no trained model already works, labelled with model_version null
        for path in ("/search?q=shoe", "/similar/p1"):
            r = e.client.get(path, headers=e.h("read"))
            assert r.status_code == 200 and r.json()["model_version"] is None and r.json()["items"]
        assert e.client.get("/autocomplete?q=r", headers=e.h("read")).status_code == 200
        assert e.client.get("/ready").json()["model_version"] is None
        # the first complete version then replaces the catalog-only engines
        e.store.register_version("v1", status="complete")
        e.store.activate_version("v1")
        assert e.client.app.state.shopsense.models.refresh() is True
        assert e.client.get("/recommend?user_id=u1", headers=e.h("read")).json()["model_version"] == "v1"


def test_delete_user_removes_everything(env: Env) -> None:
    c = env.client
    c.post("/events", json={"user_id": "u3", "item_id": "p4", "event_type": "purchase"}, headers=env.h("write"))
    c.post("/events", json={"user_id": "u4", "item_id": "p4", "event_type": "view"}, headers=env.h("write"))
    rec = c.get("/recommend?user_id=u3", headers=env.h("read")).json()
    assert rec["items"][0]["item_id"] == "p5"  # shaped by the purchase
    r = c.delete("/users/u3", headers=env.h("admin")).json()
    assert (
        r["deleted"]["events"] == 1 and r["deleted"]["impressions"] == len(rec["items"]) and r["deleted"]["users"] == 1
    )
    assert set(env.store.events()["user_id"]) == {"u4"}
    assert "u3" not in set(env.store.impressions()["user_id"])
    again = c.get("/recommend?user_id=u3", headers=env.h("read")).json()
    assert again["items"][0]["item_id"] == "p1"  # back to the cold-start list


def test_pseudonymised_ids_never_reach_the_store(settings) -> None:
    s = load_settings(home=settings.home, service={"pseudonym_secret": "s3cret"})
    for e in make_env(s):
        c = e.client
        c.post(
            "/events",
            json={"user_id": "alice@example.com", "item_id": "p4", "event_type": "view"},
            headers=e.h("write"),
        )
        rec = c.get("/recommend?user_id=alice@example.com", headers=e.h("read")).json()
        assert rec["items"][0]["item_id"] == "p5"  # the raw id still finds the user's history
        stored = set(e.store.events()["user_id"])
        assert len(stored) == 1 and "alice@example.com" not in stored and next(iter(stored)).startswith("u_")
        r = c.delete("/users/alice@example.com", headers=e.h("admin")).json()
        assert r["deleted"]["events"] == 1
        assert e.store.events().empty


def test_ingest_rules_apply_to_posted_rows(env: Env) -> None:
    # a rating needs a value: the same rule as file ingest, reported with the row's position
    batch = [
        {"user_id": "u1", "item_id": "p1", "event_type": "view"},
        {"user_id": "u1", "item_id": "p1", "event_type": "rating"},
    ]
    r = env.client.post("/events", json=batch, headers=env.h("write"))
    assert r.status_code == 422 and "request body:2" in r.json()["detail"], r.text
    assert env.store.events().empty
    p = {"item_id": "p9", "title": "Lamp", "attributes": {"watts": 40, "colour": "red"}, "tags": ["light", "home"]}
    assert env.client.put("/products", json=p, headers=env.h("admin")).status_code == 200
    got = env.store.get_product("p9")
    assert got["attributes"] == {"watts": 40, "colour": "red"} and got["tags"] == ["light", "home"]
