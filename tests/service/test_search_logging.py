"""GET /search writes nothing on the request path: the search event and the impressions are queued and
written together by the background flusher."""

from __future__ import annotations

from shopsense import columns as C
from tests.service.conftest import Env


def test_search_event_is_queued_then_flushed(env: Env) -> None:
    log = env.client.app.state.shopsense.impressions
    log.stop()  # no background flushes during the test: the queue is what the request left
    r = env.client.get("/search", params={"q": "coffee", "user_id": "u7"}, headers=env.h("read")).json()
    assert env.store.events(user_id="u7").empty and env.store.impressions(r["request_id"]).empty
    log.flush()
    ev = env.store.events(user_id="u7")
    assert ev[C.EVENT_TYPE].tolist() == [C.SEARCH] and ev[C.QUERY].tolist() == ["coffee"]
    assert ev[C.REQUEST_ID].tolist() == [r["request_id"]]
    assert env.store.impressions(r["request_id"])[C.ITEM].tolist() == [h["item_id"] for h in r["items"]]
    log.flush()  # nothing left: flushing twice writes nothing twice
    assert len(env.store.events(user_id="u7")) == 1


def test_anonymous_search_writes_no_event(env: Env) -> None:
    log = env.client.app.state.shopsense.impressions
    r = env.client.get("/search", params={"q": "coffee"}, headers=env.h("read")).json()
    log.flush()
    assert env.store.events().query("event_type == 'search'").empty
    assert len(env.store.impressions(r["request_id"])) == len(r["items"]) > 0


def test_a_failed_event_write_is_retried(env: Env, monkeypatch) -> None:
    log = env.client.app.state.shopsense.impressions
    log.stop()
    env.client.get("/search", params={"q": "coffee", "user_id": "u8"}, headers=env.h("read"))
    real = log.store.add_events  # the app's own store object

    def broken(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise RuntimeError("store down")

    monkeypatch.setattr(log.store, "add_events", broken)
    log.flush()
    monkeypatch.setattr(log.store, "add_events", real)
    assert env.store.events(user_id="u8").empty
    log.flush()
    assert env.store.events(user_id="u8")[C.EVENT_TYPE].tolist() == [C.SEARCH]


def test_a_forced_stop_still_writes_the_queue(env: Env) -> None:
    """A second Ctrl-C makes uvicorn skip the app's lifespan shutdown (which flushes): the server
    that ``shopsense serve`` runs writes the queued search events anyway."""
    import asyncio

    import uvicorn

    from shopsense.service.app import flush_when_stopping

    app = env.client.app
    log = app.state.shopsense.impressions
    log.stop()  # only a stop may write now
    env.client.get("/search", params={"q": "coffee", "user_id": "u9"}, headers=env.h("read"))
    server = uvicorn.Server(uvicorn.Config(app))
    flush_when_stopping(server, app)
    server.servers, server.force_exit = [], True  # not listening; as after the second Ctrl-C
    asyncio.run(server.shutdown())
    assert env.store.events(user_id="u9")[C.EVENT_TYPE].tolist() == [C.SEARCH]
