"""Request ids: unique within a process and across processes (the feedback loop joins on them)."""

from __future__ import annotations

import multiprocessing as mp
import os

from shopsense.service.middleware import new_request_id


def _ids_of_a_child(q: mp.Queue) -> None:
    q.put([new_request_id() for _ in range(3)])


def test_request_ids_are_unique_in_a_process_and_in_a_forked_child() -> None:
    here = [new_request_id() for _ in range(10_000)]
    assert len(set(here)) == len(here) and all(len(i) == 32 and int(i, 16) >= 0 for i in here)
    if not hasattr(os, "fork"):
        return
    q: mp.Queue = mp.get_context("fork").Queue()
    child = mp.get_context("fork").Process(target=_ids_of_a_child, args=(q,))
    child.start()
    theirs = q.get(timeout=30)
    child.join(timeout=30)
    assert not set(theirs) & set(here) and not set(theirs) & {new_request_id() for _ in range(3)}


def _post_events_unread(app, headers: list[tuple[bytes, bytes]]) -> tuple[int, bool]:
    """POST /events with a declared 7.6 MB body that is never sent: (status, whether the app asked for it)."""
    import asyncio
    import contextlib

    asked = False
    sent: list[dict] = []

    async def receive() -> dict:
        nonlocal asked
        asked = True
        await asyncio.sleep(3600)  # the body never comes (as from a slow or hostile sender)
        return {"type": "http.disconnect"}

    async def send(msg: dict) -> None:
        sent.append(msg)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/events",
        "raw_path": b"/events",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), (b"content-length", b"7600000")]
        + headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }

    async def call() -> None:
        await asyncio.wait_for(app(scope, receive, send), timeout=1)

    with contextlib.suppress(TimeoutError):  # the app waited for the body
        asyncio.run(call())
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    return (start["status"] if start else 0), asked


def test_a_missing_or_wrong_key_is_refused_before_the_body_is_read(env) -> None:
    """An unauthenticated POST costs no body reading (it cost 0.27 s of event loop per 7.6 MB)."""
    app = env.client.app
    assert _post_events_unread(app, []) == (401, False)
    assert _post_events_unread(app, [(b"x-api-key", b"ss_nope_nope")]) == (401, False)
    assert _post_events_unread(app, [(b"authorization", b"Bearer ss_nope_nope")]) == (401, False)
    # a valid key goes on to the route, which reads the body
    status, asked = _post_events_unread(app, [(b"x-api-key", env.keys["write"].encode())])
    assert asked and status in (0, 413)


def _answers(app, client: tuple[str, int]) -> list[dict]:
    """The messages an ASGI app sends for one GET from ``client``."""
    import asyncio

    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(msg: dict) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "client": client}
    asyncio.run(app(scope, receive, send))
    return sent


async def _ok(scope, receive, send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


def _closes(sent: list[dict]) -> bool:
    return (b"connection", b"close") in sent[0]["headers"]


def test_an_old_connection_is_asked_to_reconnect_and_a_young_one_is_not() -> None:
    import time

    from shopsense.service.middleware import ConnectionMaxAge

    app = ConnectionMaxAge(_ok, max_age_s=0.2)
    old, other = ("10.0.0.1", 40000), ("10.0.0.2", 40000)
    assert not _closes(_answers(app, old))
    time.sleep(0.1)
    assert not _closes(_answers(app, other))
    time.sleep(0.15)
    assert _closes(_answers(app, old))  # 0.25 s old
    assert not _closes(_answers(app, other))  # 0.15 s old
    assert not _closes(_answers(app, old))  # the same address and port again: a new connection
    assert not _closes(_answers(ConnectionMaxAge(_ok, max_age_s=0), old))  # 0 turns it off


def test_a_real_server_closes_the_connection_it_asked_to_reconnect() -> None:
    """uvicorn closes a connection whose answer says ``Connection: close``, and httpx opens a new one."""
    import threading
    import time

    import httpx
    import uvicorn

    from shopsense.service.middleware import ConnectionMaxAge

    async def port_of_client(scope, receive, send) -> None:
        body = str(scope["client"][1]).encode()
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", str(len(body)).encode())]}
        )
        await send({"type": "http.response.body", "body": body})

    server = uvicorn.Server(
        uvicorn.Config(ConnectionMaxAge(port_of_client, max_age_s=0.3), host="127.0.0.1", port=0, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            first = client.get("/")
            assert client.get("/").text == first.text  # kept alive
            time.sleep(0.35)
            closing = client.get("/")
            assert closing.headers["connection"] == "close" and closing.text == first.text
            assert client.get("/").text != first.text  # a new connection, from another port
    finally:
        server.should_exit = True
        thread.join(5)
