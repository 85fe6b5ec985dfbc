"""A purchase's ``value`` and ``order_id`` over HTTP (``POST /events``), by the same rules as file
ingest (tests/data/test_purchase_value.py)."""

from __future__ import annotations

from shopsense import columns as C
from tests.service.conftest import Env


def test_value_and_order_id_over_http(env: Env) -> None:
    c, w = env.client, env.h("write")
    one = {"user_id": "u1", "item_id": "p1", "event_type": "purchase", "value": 59.8, "order_id": "order-7"}
    gift = {**one, "item_id": "p2", "value": 0}
    assert c.post("/events", json=one, headers=w).status_code == 200
    # a batch over the per-row limit takes the vectorised path: the same rules, the same rows
    many = [{**gift, "timestamp": 1_700_000_000 + n} for n in range(70)]
    assert c.post("/events", json=many, headers=w).json() == {"received": 70, "stored": 70}
    ev = env.store.events(user_id="u1")
    assert set(ev[C.ORDER_ID]) == {"order-7"} and ev[C.VALUE].tolist()[-1] == 59.8  # posted last: now
    for bad in (
        {**one, "value": -1},  # an amount paid
        {**one, "order_id": ""},
        {**one, "order_id": "o\x01"},
        {**one, "order_id": "o" * 257},
        {**one, "order_id": 7},  # a string id, as every id in a body
    ):
        r = c.post("/events", json=bad, headers=w)
        assert r.status_code == 422, (bad, r.text)
    r = c.post("/events", json={**one, "value": -1}, headers=w)
    assert "must be >= 0" in r.text
    assert c.post("/events", json={**one, "event_type": "rating", "value": -1}, headers=w).status_code == 200
    data = c.get("/users/u1/export", headers=env.h("admin")).json()
    paid = [(e[C.ORDER_ID], e[C.VALUE]) for e in data["events"] if e[C.ITEM] == "p1" and e[C.EVENT_TYPE] == "purchase"]
    assert paid == [("order-7", 59.8)]
