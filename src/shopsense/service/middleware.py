"""Pure-ASGI middleware (cheaper than ``BaseHTTPMiddleware`` on the hot path): the API key checked
before the body is read, body size cap, request metrics, and a ``request_id`` on every request."""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Callable
from typing import Any

from shopsense.service.keys import INVALID_KEY, MISSING_KEY, KeyRing, presented_key
from shopsense.service.metrics import Metrics

Scope = dict[str, Any]


# A random 64-bit prefix per process and a counter: unique across processes and restarts like a
# uuid4, without a getrandom() system call per request (about 0.2 ms each in this VM under load).
_ID_PREFIX = uuid.uuid4().hex[:16]
_ID_COUNTER = itertools.count(1)


def _new_prefix() -> None:  # a forked child must not repeat its parent's ids
    global _ID_PREFIX
    _ID_PREFIX = uuid.uuid4().hex[:16]


os.register_at_fork(after_in_child=_new_prefix)


def new_request_id() -> str:
    """A unique id for one request (32 hex characters, as a uuid4's)."""
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class BodyLimit:
    """Refuse request bodies over ``max_bytes`` with 413, by Content-Length or while streaming."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    too_big = int(v) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await _send_413(send, self.max_bytes)
                    return
        if not any(k == b"content-length" for k, _ in scope.get("headers", [])) and scope["method"] in _BODY_METHODS:
            # Streamed (chunked) body: buffer it up to the cap, then replay it to the app.
            chunks: list[bytes] = []
            seen = 0
            while True:
                msg = await receive()
                if msg["type"] != "http.request":
                    break
                chunk = msg.get("body", b"")
                seen += len(chunk)
                if seen > self.max_bytes:
                    await _send_413(send, self.max_bytes)
                    return
                chunks.append(chunk)
                if not msg.get("more_body", False):
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        await self.app(scope, receive, send)


async def _send_413(send: Any, max_bytes: int) -> None:
    await _send_json(send, 413, f"request body larger than {max_bytes} bytes")


async def _send_json(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class KeyGate:
    """Refuse a request without a valid API key (401) before anything reads its body.

    FastAPI reads and parses a body before it runs a route's dependencies, so an unauthenticated
    8 MB POST used to cost the event loop a quarter of a second before its 401. Here the key header
    is checked first, for every path but the public ones (``is_public``: health, metrics, the pages,
    the API docs); unknown paths need a key too. The verified key travels in ``scope["state"]`` to
    the route's dependencies, which check its scope (403) without verifying it again.
    """

    def __init__(self, app: Any, keys: KeyRing, is_public: Callable[[str], bool]) -> None:
        self.app = app
        self.keys = keys
        self.is_public = is_public

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = presented_key(scope.get("headers", []))
        found = self.keys.verify(key) if key else None
        if found is None:
            await _send_json(send, 401, INVALID_KEY if key else MISSING_KEY, [(b"www-authenticate", b"Bearer")])
            return
        scope.setdefault("state", {})["api_key"] = found
        await self.app(scope, receive, send)


class ConnectionMaxAge:
    """Ask a client to reconnect once its keep-alive connection is older than ``max_age_s``.

    ``serve --workers N`` balances connections, not requests: the parent hands each new connection to
    the worker with the fewest. Clients keep connections open for minutes, so after a worker dies
    and is replaced, the survivor kept nearly all of them (33 of 34 in the soak, for 2.5 minutes,
    with /recommend's p99 at 36 ms instead of 10-15). Answering ``Connection: close`` once a
    connection has lived ``max_age_s`` makes clients reconnect, and the new connections go to the
    least busy worker. A connection is known by its client address and port (unique while it is
    open); addresses not seen for a while are forgotten, so the table stays small.
    """

    def __init__(self, app: Any, max_age_s: float) -> None:
        self.app = app
        self.max_age_s = max_age_s
        self.born: dict[Any, float] = {}
        self._next_sweep = 0.0

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        client = scope.get("client")
        if scope["type"] != "http" or not self.max_age_s or client is None:
            await self.app(scope, receive, send)
            return
        now = time.monotonic()
        key = tuple(client)
        born = self.born.setdefault(key, now)
        if now >= self._next_sweep:
            self._sweep(now)
        if now - born < self.max_age_s:
            await self.app(scope, receive, send)
            return
        del self.born[key]  # the client's next connection may reuse the port: it starts young

        async def closing_send(msg: Any) -> None:
            if msg["type"] == "http.response.start":
                headers = [(k, v) for k, v in msg.get("headers", []) if k.lower() != b"connection"]
                msg["headers"] = [*headers, (b"connection", b"close")]
            await send(msg)

        await self.app(scope, receive, closing_send)

    def _sweep(self, now: float) -> None:
        """Forget connections first seen more than two ages ago (closed ones, mostly)."""
        horizon = now - 2 * self.max_age_s
        self.born = {k: t for k, t in self.born.items() if t >= horizon}
        self._next_sweep = now + self.max_age_s


class RequestMetrics:
    """Time every request and count it by route template and status; tag it with a request id."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        scope.setdefault("state", {})["request_id"] = new_request_id()
        status = 500

        async def send_wrapper(msg: Any) -> None:
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                msg.setdefault("headers", [])
                msg["headers"] = [*msg["headers"], (b"x-request-id", scope["state"]["request_id"].encode())]
            await send(msg)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            self.metrics.observe_request(scope["method"], path, status, time.perf_counter() - t0)
