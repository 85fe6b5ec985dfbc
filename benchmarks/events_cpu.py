"""CPU time of storing the events of one ``POST /events`` request: the vectorised validation path
(what file ingest uses) against the per-row path small HTTP batches take (``plain_rows.clean_rows``
+ ``store.add_event_rows``), in process on a fresh SQLite store.

    .venv/bin/python benchmarks/events_cpu.py [--batch 1] [--n 500]

Prints JSON: CPU milliseconds per request for each path (process time, so another job on the
machine inflates both alike).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable

from shopsense.config import IngestConfig
from shopsense.service.validate import clean_events, events_frame
from shopsense.store import open_store


def cpu_ms(fn: Callable[[int], None], n: int) -> float:
    fn(-1)  # warm-up
    start = time.process_time()
    for i in range(n):
        fn(i)
    return round((time.process_time() - start) / n * 1000, 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=1, help="events per request")
    ap.add_argument("--n", type=int, default=500, help="requests timed per path")
    a = ap.parse_args()
    config = IngestConfig()
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(f"sqlite:///{tmp}/shop.db")

        def rows(tag: str, i: int) -> list[dict]:
            return [
                {
                    "event_id": f"{tag}-{i}-{j}",
                    "user_id": f"u{j}",
                    "item_id": f"p{i % 100}",
                    "event_type": "view",
                    "value": None,
                    "timestamp": 1.7e9 + i,
                    "session_id": None,
                    "query": None,
                    "request_id": None,
                }
                for j in range(a.batch)
            ]

        def vectorised(i: int) -> None:
            store.add_events(events_frame(rows("v", i), config))

        def per_row(i: int) -> None:
            records = clean_events(rows("r", i), config)
            assert records is not None, "plain events take the per-row path"
            store.add_event_rows(records)

        out = {
            "batch": a.batch,
            "requests": a.n,
            "vectorised_ms": cpu_ms(vectorised, a.n),
            "per_row_ms": cpu_ms(per_row, a.n),
        }
        store.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
