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
Prints JSON: achieved rate, latency percentiles in ms, errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import time
from collections.abc import Callable
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


async def _one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request on a keep-alive connection and read the whole response; returns the status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if m is None:
        raise ValueError("response without Content-Length")
    await reader.readexactly(int(m.group(1)))
    return status


async def run(
    url: str, rate: float, connections: int, seconds: float, make_path: Callable[[], str], headers: list[str]
) -> dict:
    """Offer ``rate`` requests/s for ``seconds`` over ``connections`` connections; latency from due time."""
    u = urlsplit(url)
    host, port = u.hostname or "127.0.0.1", u.port or 80
    extra = "".join(f"{h}\r\n" for h in headers)
    total = int(rate * seconds)
    due_q: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    lat: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (job := await due_q.get()) is not None:
                due, request = job
                try:
                    status = await _one(reader, writer, request)
                except (OSError, ValueError, asyncio.IncompleteReadError) as e:
                    errors.append(type(e).__name__)
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                lat.append(time.perf_counter() - due)
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            writer.close()

    tasks = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open before the clock starts
    start = time.perf_counter()
    for i in range(total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        path = make_path()
        request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}\r\n".encode()
        due_q.put_nowait((due, request))
    for _ in tasks:
        due_q.put_nowait(None)
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
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
        "errors": len(errors),
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
    a = ap.parse_args()
    words = [w for w in a.words.split(",") if w]
    job = run(a.url, a.rate, a.connections, a.seconds, path_maker(a.path, words), a.header)
    try:
        import uvloop

        result = uvloop.run(job)
    except ImportError:
        result = asyncio.run(job)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
