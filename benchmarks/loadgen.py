"""An open-loop HTTP load generator: requests arrive at a fixed rate, whatever the server's speed.

    .venv/bin/python benchmarks/loadgen.py http://127.0.0.1:8000 --rate 500 --connections 32 \
        --seconds 15 --header "X-API-Key: ..." --path "/recommend?k=10&user_id=U{rand:50000}"
    ... --path "/search?q={word}%20{word}" --words drill,kettle,lamp

wrk (closed loop) sends a connection's next request only when the previous answer is back, so a slow
server is offered less load and the queueing it causes is hidden ("coordinated omission"). Here
request *i* is due at ``start + i / rate``; it goes out on the first free keep-alive connection of
``--connections``, and its latency is counted from when it was due, so time spent waiting for a free
connection counts too. This is what wrk2 (not packaged for Debian) measures. HTTP/1.1 over asyncio
streams with uvloop when installed; only fixed-length (Content-Length) responses are understood.
Prints JSON: achieved rate, latency percentiles in ms, errors. :func:`offer` is the engine for
scripts that send mixed requests and want each outcome (``benchmarks/soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np


def path_maker(template: str, words: list[str] | None = None, seed: int = 0) -> Callable[[], str]:
    """Per request, ``{rand:N}`` in the template becomes a uniform random integer in [0, N) and
    ``{word}`` a random one of ``words``."""
    rng = random.Random(seed)
    parts = re.split(r"\{(rand:\d+|word)\}", template)
    if "word" in parts[1::2] and not words:
        raise SystemExit("the path has {word}: give --words")

    def fill(token: str) -> str:
        return rng.choice(words or [""]) if token == "word" else str(rng.randrange(int(token[5:])))

    def make() -> str:
        return "".join(p if i % 2 == 0 else fill(p) for i, p in enumerate(parts))

    return make


@dataclass(slots=True)
class Outcome:
    """What became of one request: its answer (``status`` None when every try failed), when it was
    due and finished (``time.perf_counter``), the local port of the connection that answered, and the
    connection errors met on the way (exception name, local port, when), each followed by a retry."""

    tag: Any
    due: float
    finished: float
    status: int | None
    body: bytes
    port: int | None
    errors: list[tuple[str, int | None, float]]


def http_request(method: str, path: str, host: str, headers: list[str], body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request as bytes (``headers`` as ``"Name: value"`` lines)."""
    extra = "".join(f"{h}\r\n" for h in headers)
    if body is None:
        return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n".encode()
    length = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}{length}\r\n".encode() + body


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection and read the whole response: (status, body)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if m is None:
        raise ValueError("response without Content-Length")
    return status, await reader.readexactly(int(m.group(1)))


async def offer(
    url: str,
    rate: float,
    connections: int,
    seconds: float,
    make_request: Callable[[int], tuple[bytes, Any]],
    done: Callable[[Outcome], None],
    *,
    retries: int = 0,
    requests_per_connection: int = 0,
    max_idle: float = 0,
    start: float | None = None,
) -> float:
    """Offer ``rate`` requests/s for ``seconds`` over ``connections`` keep-alive connections.

    Request *i* (``make_request(i)`` gives its bytes and a tag) is due at ``start + i / rate``
    (``start``: a ``time.perf_counter`` time, default 0.2 s after the call, once the connections are
    open) and goes out on the first free connection; ``done`` gets each :class:`Outcome`. A
    connection error closes the connection and, with ``retries``, sends the request again on a new
    one. ``requests_per_connection`` > 0 closes a connection after that many requests, as a proxy's
    keep-alive limit does (nginx: 1000), so connections spread again after a server process restarts.
    ``max_idle`` > 0 replaces a connection idle that long before using it, as clients do to stay
    under the server's keep-alive timeout (uvicorn: 5 s): a request sent as the server closes an
    idle connection is cut. Returns the seconds from start to the last answer."""
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    total = int(rate * seconds)
    due_q: asyncio.Queue[tuple[float, bytes, Any] | None] = asyncio.Queue()

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter, int | None]:
        reader, writer = await asyncio.open_connection(host, port)
        return reader, writer, (writer.get_extra_info("sockname") or (None, None))[1]

    async def worker() -> None:
        conn = await connect()
        used, last = 0, time.perf_counter()
        try:
            while (job := await due_q.get()) is not None:
                due, request, tag = job
                errors: list[tuple[str, int | None, float]] = []
                status, body, local = None, b"", None
                if conn is not None and max_idle and time.perf_counter() - last > max_idle:
                    conn[1].close()
                    conn = None
                for _ in range(retries + 1):
                    try:
                        if conn is None:
                            conn, used = await connect(), 0
                        local = conn[2]
                        status, body = await _one(conn[0], conn[1], request)
                        break
                    except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                        errors.append((type(e).__name__, local, time.perf_counter()))
                        if conn is not None:
                            conn[1].close()
                        conn, local = None, None
                last = time.perf_counter()
                done(Outcome(tag, due, last, status, body, local, errors))
                used += 1
                if conn is not None and requests_per_connection and used >= requests_per_connection:
                    conn[1].close()
                    conn = None
        finally:
            if conn is not None:
                conn[1].close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    if start is None:
        start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        request, tag = make_request(i)
        due_q.put_nowait((due, request, tag))
    for _ in tasks:
        due_q.put_nowait(None)
    await asyncio.gather(*tasks)
    return time.perf_counter() - start


async def run(
    url: str,
    rate: float,
    connections: int,
    seconds: float,
    make_path: Callable[[], str],
    headers: list[str],
    make_body: Callable[[], str] | None = None,
) -> dict:
    """Offer ``rate`` GET requests/s (POSTs of ``make_body()`` as JSON when given) for ``seconds``
    over ``connections`` connections; latency from due time."""
    u = urlsplit(url)
    host = f"{u.hostname or '127.0.0.1'}:{u.port or 80}"
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0

    def done(o: Outcome) -> None:
        nonlocal errors
        if o.status is None:
            errors += 1
            return
        lat.append(o.finished - o.due)
        statuses[o.status] = statuses.get(o.status, 0) + 1

    def make_request(_: int) -> tuple[bytes, None]:
        if make_body is None:
            return http_request("GET", make_path(), host, headers), None
        return http_request("POST", make_path(), host, headers, make_body().encode()), None

    elapsed = await offer(url, rate, connections, seconds, make_request, done)
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {
        "offered_rps": rate,
        "connections": connections,
        "requests": len(lat),
        "achieved_rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
        "statuses": statuses,
        "errors": errors,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("url", help="base URL, e.g. http://127.0.0.1:8000")
    ap.add_argument("--rate", type=float, default=500, help="requests per second offered")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--path", default="/health", help="path template; {rand:N} is a random integer < N")
    ap.add_argument("--header", action="append", default=[], help='e.g. "X-API-Key: ..." (repeatable)')
    ap.add_argument("--words", default="", help="comma-separated words for {word} in the path")
    ap.add_argument("--body", default="", help="POST this JSON body (same {rand:N} / {word} fields as the path)")
    a = ap.parse_args()
    words = [w for w in a.words.split(",") if w]
    body = path_maker(a.body, words, seed=1) if a.body else None
    job = run(a.url, a.rate, a.connections, a.seconds, path_maker(a.path, words), a.header, body)
    try:
        import uvloop

        result = uvloop.run(job)
    except ImportError:
        result = asyncio.run(job)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
