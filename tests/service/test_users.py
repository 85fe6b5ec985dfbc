"""A shopper's data over HTTP: deletion by any id the ingest accepts, export, opt-out."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.service.conftest import Env

# ids the ingest accepts that a naive path parameter cannot carry
ODD_IDS = ["a/b", " x ", "zoë/用户", "100%", "a/b/opt-out", "ends/export"]


@pytest.mark.parametrize("raw", ODD_IDS)
def test_every_accepted_id_can_be_deleted(env: Env, raw: str) -> None:
    c = env.client
    r = c.post("/events", json={"user_id": raw, "item_id": "p1", "event_type": "view"}, headers=env.h("write"))
    assert r.status_code == 200, r.text
    c.post("/events", json={"user_id": "other", "item_id": "p2", "event_type": "view"}, headers=env.h("write"))
    r = c.delete(f"/users/{quote(raw, safe='')}", headers=env.h("admin"))
    assert r.status_code == 200, r.text
    assert r.json()["deleted"]["events"] == 1
    assert set(env.store.events()["user_id"]) == {"other"}


def test_ids_get_one_rule_in_queries_and_product_paths(env: Env) -> None:
    c = env.client
    c.post("/events", json={"user_id": " x ", "item_id": "p4", "event_type": "view"}, headers=env.h("write"))
    assert set(env.store.events()["user_id"]) == {"x"}
    rec = c.get("/recommend", params={"user_id": "\u3000x "}, headers=env.h("read")).json()
    assert rec["items"][0]["source"] == "category"  # the raw id with spaces found the stored "x"
    assert c.get("/recommend", params={"user_id": "x\x01"}, headers=env.h("read")).status_code == 422
    assert c.delete("/users/%20%20", headers=env.h("admin")).status_code == 422
    p = {"item_id": "kit/100%", "title": "Coffee kit", "category": "Kitchen > Coffee"}
    assert c.put("/products", json=p, headers=env.h("admin")).status_code == 200
    path = quote("kit/100%", safe="")
    assert c.get(f"/products/{path}", headers=env.h("read")).json()["title"] == "Coffee kit"
    assert c.get(f"/similar/{path}", headers=env.h("read")).status_code == 200
    assert c.delete(f"/products/{path}", headers=env.h("admin")).status_code == 200
    assert env.store.get_product("kit/100%") is None


def test_delete_forgets_what_the_served_engines_hold(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    c = env.client
    c.post("/events", json={"user_id": "u9", "event_type": "search", "query": "zyzzyva"}, headers=env.h("write"))
    served = env.client.app.state.shopsense.models.current
    calls: list = []
    monkeypatch.setattr(served, "forget_user", lambda uid, deletion=None: calls.append((uid, deletion)))
    assert c.delete("/users/u9", headers=env.h("admin")).status_code == 200
    ((uid, deletion),) = calls
    assert uid == "u9" and deletion.searches == ["zyzzyva"] and deletion.forgotten_queries == ["zyzzyva"]


def test_export_and_opt_out_over_http(env: Env) -> None:
    c = env.client
    c.post("/events", json={"user_id": "a/b", "item_id": "p4", "event_type": "view"}, headers=env.h("write"))
    rec = c.get("/recommend", params={"user_id": "a/b"}, headers=env.h("read")).json()
    assert rec["items"][0]["item_id"] == "p5"  # personal: the category they viewed
    uid = quote("a/b", safe="")
    r = c.post(f"/users/{uid}/opt-out", headers=env.h("admin"))
    assert r.json() == {"user_id": "a/b", "opted_out": True}
    rec = c.get("/recommend", params={"user_id": "a/b"}, headers=env.h("read")).json()
    assert rec["items"][0]["item_id"] == "p1" and rec["items"][0]["source"] == "popular"  # not personal
    c.post("/events", json={"user_id": "a/b", "item_id": "p5", "event_type": "view"}, headers=env.h("write"))
    data = c.get(f"/users/{uid}/export", headers=env.h("admin")).json()
    assert data["opted_out"] is True and data["given_id"] == data["user_id"] == "a/b"
    assert [e["item_id"] for e in data["events"]] == ["p4", "p5"]  # still recorded, shaping nothing
    assert [i["item_id"] for i in data["impressions"]][:1] == ["p5"]  # what the first list showed
    assert set(env.store.events(include_opted_out=False)["user_id"]) == set()
    assert c.post(f"/users/{uid}/opt-in", headers=env.h("admin")).json()["opted_out"] is False
    rec = c.get("/recommend", params={"user_id": "a/b"}, headers=env.h("read")).json()
    assert rec["items"][0]["source"] == "category"
    # the operation is the path's last segment: an id ending in "/export" is still exported whole
    c.post("/events", json={"user_id": "x/export", "item_id": "p1", "event_type": "view"}, headers=env.h("write"))
    assert c.get("/users/x/export/export", headers=env.h("admin")).json()["events"][0]["item_id"] == "p1"
    assert c.get("/users/nobody/export", headers=env.h("admin")).json()["known"] is False


def test_link_merges_an_anonymous_shopper_into_the_user(env: Env) -> None:
    c, w, admin = env.client, env.h("write"), env.h("admin")
    anon = "shopper-0123456789abcdef"
    c.post("/events", json={"user_id": anon, "item_id": "p4", "event_type": "view"}, headers=w)
    assert (
        c.get("/recommend", params={"user_id": "a/b"}, headers=env.h("read")).json()["items"][0]["source"] == "popular"
    )
    assert c.post("/users/a%2Fb/link", json={"anonymous_id": anon}, headers=w).status_code == 403  # admin only
    r = c.post("/users/a%2Fb/link", json={"anonymous_id": f" {anon} "}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": "a/b",
        "anonymous_id": anon,
        "events_moved": 1,
        "impressions_moved": 0,
        "already_linked": False,
        "opted_out": False,
    }
    # the user's next list reads what they did before logging in
    rec = c.get("/recommend", params={"user_id": "a/b"}, headers=env.h("read")).json()
    assert rec["items"][0]["item_id"] == "p5" and rec["items"][0]["source"] == "category"
    again = c.post("/users/a/b/link", json={"anonymous_id": anon}, headers=admin).json()
    assert again["already_linked"] is True and again["events_moved"] == 0
    assert c.get("/users/a%2Fb/export", headers=admin).json()["linked_ids"]["anonymous_ids"] == [anon]
    # one id twice is a 422 that says why; a circle is a 409
    r = c.post("/users/a%2Fb/link", json={"anonymous_id": "a/b "}, headers=admin)
    assert r.status_code == 422 and "itself" in r.json()["detail"]
    assert c.post(f"/users/{anon}/link", json={"anonymous_id": "a/b"}, headers=admin).status_code == 409
    for bad in ({}, {"anonymous_id": ""}, {"anonymous_id": "x\x01"}, {"anonymous_id": anon, "extra": 1}):
        assert c.post("/users/a%2Fb/link", json=bad, headers=admin).status_code == 422, bad
    # deleting the user takes the merged id's rows and the link
    deleted = c.delete("/users/a%2Fb", headers=admin).json()["deleted"]
    assert deleted["events"] == 1 and deleted["links"] == 1
    assert env.store.events().empty
