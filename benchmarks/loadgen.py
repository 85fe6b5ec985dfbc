"""An open-loop HTTP load generator: requests arrive at a fixed rate, whatever the server's speed.

    .venv/bin/python benchmarks/loadgen.py http://127.0.0.1:8000 --rate 500 --connections 32 \
        --seconds 15 --header "X-API-Key: ..." --path "/recommend?k=10&user_id=U{rand:50000}"
    ... --path "/search?q={word}%20{word}" --words drill,kettle,lamp
    ... --path "/search?q={query}" --words drill,kettle,lamp,red,steel --new-share 0.5   # shop-like queries
    ... --path "/search?q={newquery}"   # every query one never sent before in the run
    ... --closed   # closed loop instead: each connection sends its next request when the answer is back

wrk (closed loop) sends a connection's next request only when the previous answer is back, so a slow
server is offered less load and the queueing it causes is hidden ("coordinated omission"). Here
request *i* is due at ``start + i / rate``; it goes out on the first free keep-alive connection of
``--connections``, and its latency is counted from when it was due, so time spent waiting for a free
connection counts too. This is what wrk2 (not packaged for Debian) measures. HTTP/1.1 over asyncio
streams with uvloop when installed; only fixed-length (Content-Length) responses are understood.
``{query}`` draws from :class:`QueryMix`: a head of popular queries that repeat, and a tail of
queries never sent before in the run (``--new-share`` of the requests); latency is then also
reported per kind ("new": the query's first appearance in the run, "repeat"). Prints JSON: achieved
rate, latency percentiles in ms, errors. :func:`offer` is the engine for scripts that send mixed
requests and want each outcome (``benchmarks/soak.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np


class QueryMix:
    """Search queries as a shop gets them: ``new_share`` of them never seen before in the run (three
    random vocabulary words: ~1e6 combinations or more, so they are new to the server too), the rest
    from a head of ``head`` two-word queries with Zipf popularity. :meth:`draw` tags each query "new"
    (its first appearance in the run, head queries included) or "repeat"."""

    def __init__(self, words: list[str], *, head: int = 200, new_share: float = 0.5, seed: int = 0) -> None:
        if len(words) < 10:
            raise SystemExit("a query mix needs at least 10 words")
        self.rng = random.Random(seed)
        self.words, self.new_share = words, new_share
        pairs: dict[str, None] = {}
        while len(pairs) < head:
            pairs[f"{self.rng.choice(words)} {self.rng.choice(words)}"] = None
        self.head = list(pairs)
        self.cum = list(itertools.accumulate(1.0 / (i + 1) for i in range(head)))  # Zipf, s = 1
        self.sent: set[str] = set()

    def draw(self) -> tuple[str, str]:
        """(query, "new" or "repeat")."""
        if self.rng.random() < self.new_share:
            return self.new()
        q = self.rng.choices(self.head, cum_weights=self.cum)[0]
        tag = "repeat" if q in self.sent else "new"
        self.sent.add(q)
        return q, tag

    def new(self) -> tuple[str, str]:
        """A query not sent before in the run: (query, "new")."""
        q = " ".join(self.rng.choice(self.words) for _ in range(3))
        while q in self.sent or q in self.head:
            q = " ".join(self.rng.choice(self.words) for _ in range(3))
        self.sent.add(q)
        return q, "new"


def path_maker(
    template: str, words: list[str] | None = None, seed: int = 0, mix: QueryMix | None = None
) -> Callable[[], tuple[str, str | None]]:
    """Per request, ``{rand:N}`` in the template becomes a uniform random integer in [0, N), ``{word}``
    a random one of ``words``, ``{query}`` a query of ``mix`` and ``{newquery}`` one of its queries never
    sent before (URL-encoded; the query's tag is returned with the path, else the tag is None)."""
    rng = random.Random(seed)
    parts = re.split(r"\{(rand:\d+|word|query|newquery)\}", template)
    if "word" in parts[1::2] and not words:
        raise SystemExit("the path has {word}: give --words")
    if {"query", "newquery"} & set(parts[1::2]) and mix is None:
        raise SystemExit("the path has {query}: give --words (a query mix is drawn from them)")

    def make() -> tuple[str, str | None]:
        out, tag = [], None
        for i, p in enumerate(parts):
            if i % 2 == 0:
                out.append(p)
            elif p == "word":
                out.append(rng.choice(words or [""]))
            elif p in ("query", "newquery"):
                assert mix is not None
                q, tag = mix.draw() if p == "query" else mix.new()
                out.append(quote(q))
            else:
                out.append(str(rng.randrange(int(p[5:]))))
        return "".join(out), tag

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


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> tuple[int, bytes, bool]:
    """Send one request on a keep-alive connection and read the whole response: (status, body, whether
    the server closes the connection: ``Connection: close``, which a client must honour)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if m is None:
        raise ValueError("response without Content-Length")
    body = await reader.readexactly(int(m.group(1)))
    return status, body, re.search(rb"(?i)\r\nconnection:\s*close", head) is not None


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
                        status, body, closing = await _one(conn[0], conn[1], request)
                        if closing:
                            conn[1].close()
                            conn = None
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


async def closed_loop(
    url: str,
    connections: int,
    seconds: float,
    make_request: Callable[[int], tuple[bytes, Any]],
    done: Callable[[Outcome], None],
) -> float:
    """Each of ``connections`` keep-alive connections sends a request, waits for the answer, sends the
    next, for ``seconds`` (wrk's closed loop); an :class:`Outcome`'s ``due`` is when it was sent.
    Returns the seconds from the first request to the last answer."""
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    counter = itertools.count()
    start = time.perf_counter()
    end = start + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < end:
                request, tag = make_request(next(counter))
                sent = time.perf_counter()
                try:
                    status, body, closing = await _one(reader, writer, request)
                    if closing:
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                    done(Outcome(tag, sent, time.perf_counter(), None, b"", None, [(type(e).__name__, None, sent)]))
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                done(Outcome(tag, sent, time.perf_counter(), status, body, None, []))
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - start


def _percentiles(lat: list[float]) -> dict[str, float]:
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p90_ms": round(float(np.percentile(ms, 90)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


async def run(
    url: str,
    rate: float,
    connections: int,
    seconds: float,
    make_path: Callable[[], tuple[str, str | None]],
    headers: list[str],
    *,
    closed: bool = False,
) -> dict:
    """Offer ``rate`` GET requests/s for ``seconds`` over ``connections`` connections (latency from due
    time), or with ``closed`` run a closed loop (latency from sending); per-tag latency under ``by_tag``."""
    u = urlsplit(url)
    host = f"{u.hostname or '127.0.0.1'}:{u.port or 80}"
    lat: list[float] = []
    by_tag: dict[str, list[float]] = {}
    statuses: dict[int, int] = {}
    errors = 0

    def done(o: Outcome) -> None:
        nonlocal errors
        if o.status is None:
            errors += 1
            return
        lat.append(o.finished - o.due)
        if o.tag is not None:
            by_tag.setdefault(o.tag, []).append(o.finished - o.due)
        statuses[o.status] = statuses.get(o.status, 0) + 1

    def make_request(_: int) -> tuple[bytes, str | None]:
        path, tag = make_path()
        return http_request("GET", path, host, headers), tag

    if closed:
        elapsed = await closed_loop(url, connections, seconds, make_request, done)
    else:
        elapsed = await offer(url, rate, connections, seconds, make_request, done)
    return {
        "offered_rps": None if closed else rate,
        "closed_loop": closed,
        "connections": connections,
        "requests": len(lat),
        "achieved_rps": round(len(lat) / elapsed, 1),
        **_percentiles(lat),
        "by_tag": {tag: {"requests": len(v), **_percentiles(v)} for tag, v in sorted(by_tag.items())},
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
    ap.add_argument("--words", default="", help="comma-separated words for {word} and {query} in the path")
    ap.add_argument("--mix-words", default="", help="words of {query}/{newquery} (default: --words)")
    ap.add_argument("--new-share", type=float, default=0.5, help="{query}: share of never-seen queries")
    ap.add_argument("--seed", type=int, default=None, help="random seed (default: the clock: new queries per run)")
    ap.add_argument("--closed", action="store_true", help="closed loop (as wrk): --rate is ignored")
    a = ap.parse_args()
    words = [w for w in a.words.split(",") if w]
    seed = time.time_ns() if a.seed is None else a.seed
    mix_words = [w for w in a.mix_words.split(",") if w] or words
    mix = QueryMix(mix_words, new_share=a.new_share, seed=seed) if "query}" in a.path else None
    make = path_maker(a.path, words, seed=seed, mix=mix)
    job = run(a.url, a.rate, a.connections, a.seconds, make, a.header, closed=a.closed)
    try:
        import uvloop

        result = uvloop.run(job)
    except ImportError:
        result = asyncio.run(job)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
