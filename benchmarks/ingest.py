"""Ingest throughput: synthetic events from Parquet and CSV into a fresh embedded SQLite store,
and the same bulk load and a point query on plain DuckDB, to choose the embedded store on numbers.

    .venv/bin/python benchmarks/ingest.py [--events 1000000] [--keep DIR]

Prints one JSON object; the numbers in ``docs/benchmarks.md`` (section "Ingest") come from it.
Wall seconds and CPU seconds are both reported: on a shared 2-core machine the wall time depends on
what the neighbours run, the CPU time much less.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from shopsense import columns as C
from shopsense.data.ingest import ingest_events
from shopsense.store import open_store

TYPES = np.array(["view", "click", "add_to_cart", "purchase", "rating", "search"])
TYPE_P = np.array([0.55, 0.2, 0.1, 0.05, 0.05, 0.05])


def synthetic_events(n: int, seed: int = 0) -> pa.Table:
    """``n`` events of ``n/20`` users over ``n/50`` items, one session per user-day, chronological."""
    rng = np.random.default_rng(seed)
    n_users, n_items = max(n // 20, 1), max(n // 50, 1)
    users = rng.integers(0, n_users, n)
    items = rng.zipf(1.3, n) % n_items
    types = TYPES[rng.choice(len(TYPES), n, p=TYPE_P)]
    ts = np.sort(1_700_000_000 + rng.integers(0, 90 * 86_400, n)).astype(np.int64)
    is_search, is_rating = types == "search", types == "rating"
    item_ids = np.char.add("i", items.astype(str)).astype(object)
    item_ids[is_search] = None
    value = np.where(is_rating, rng.integers(1, 6, n).astype(float), np.nan)
    query = np.full(n, None, dtype=object)
    query[is_search] = np.char.add("query ", rng.integers(0, 1000, int(is_search.sum())).astype(str))
    user_ids = np.char.add("u", users.astype(str))
    return pa.table(
        {
            C.USER: user_ids,
            C.ITEM: pa.array(item_ids, pa.string()),
            C.EVENT_TYPE: types,
            C.VALUE: pa.array(value, from_pandas=True),
            C.TIMESTAMP: ts,
            C.SESSION: np.char.add(np.char.add(user_ids, "-"), (ts // 86_400).astype(str)),
            C.QUERY: pa.array(query, pa.string()),
        }
    )


def timed(fn):  # noqa: ANN001, ANN201
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def bench_sqlite(path: Path, db: Path, n: int) -> dict:
    store = open_store(f"sqlite:///{db}")
    report, wall, cpu = timed(lambda: ingest_events(store, path))
    assert report.rejected == 0, report.summary()
    again, wall2, cpu2 = timed(lambda: ingest_events(store, path))
    assert again.inserted == 0
    users = store.events(limit=10_000)[C.USER].unique().tolist()
    q = _latency(lambda u: store.events(user_id=u, limit=50, newest_first=True), users)
    store.close()
    return {
        "events": n,
        "inserted": report.inserted,
        "duplicates_in_file": report.duplicates,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "events_per_s_wall": round(n / wall),
        "events_per_s_cpu": round(n / cpu),
        "reingest_events_per_s_wall": round(n / wall2),
        "reingest_events_per_s_cpu": round(n / cpu2),
        "recent50_ms_p50": q[0],
        "recent50_ms_p99": q[1],
    }


def bench_duckdb(parquet: Path, db: Path, n: int, *, user_index: bool = True) -> dict:
    import duckdb

    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE events (event_key VARCHAR PRIMARY KEY, event_id VARCHAR, user_id VARCHAR NOT NULL, "
        "item_id VARCHAR, event_type VARCHAR NOT NULL, value DOUBLE, timestamp DOUBLE NOT NULL, "
        "session_id VARCHAR, query VARCHAR, request_id VARCHAR)"
    )
    if user_index:
        con.execute("CREATE INDEX ix_user_ts ON events (user_id, timestamp)")
    # the same identity as the SQLite store: event_id, else user + item + type + timestamp
    load = f"""
        INSERT INTO events
        SELECT 'k:' || user_id || chr(31) || coalesce(item_id, '') || chr(31) || event_type || chr(31)
                    || CAST(CAST(timestamp AS DOUBLE) AS VARCHAR),
               NULL, user_id, item_id, event_type, value, CAST(timestamp AS DOUBLE), session_id, query, NULL
        FROM read_parquet('{parquet}')
        ON CONFLICT DO NOTHING"""
    _, wall, cpu = timed(lambda: con.execute(load))
    _, wall2, cpu2 = timed(lambda: con.execute(load))
    inserted = con.execute("SELECT count(*) FROM events").fetchone()[0]
    users = [r[0] for r in con.execute("SELECT DISTINCT user_id FROM events LIMIT 10000").fetchall()]
    sql = "SELECT * FROM events WHERE user_id = ? ORDER BY timestamp DESC LIMIT 50"
    q = _latency(lambda u: con.execute(sql, [u]).fetchdf(), users)
    con.close()
    return {
        "events": n,
        "inserted": inserted,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "events_per_s_wall": round(n / wall),
        "events_per_s_cpu": round(n / cpu),
        "reingest_events_per_s_wall": round(n / wall2),
        "recent50_ms_p50": q[0],
        "recent50_ms_p99": q[1],
    }


def _latency(fn, users: list[str], n: int = 300) -> tuple[float, float]:  # noqa: ANN001
    rnd = random.Random(0)
    picks = [rnd.choice(users) for _ in range(n)]
    times = []
    for u in picks:
        t = time.perf_counter()
        fn(u)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return round(statistics.median(times), 3), round(times[int(0.99 * (len(times) - 1))], 3)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--keep", type=Path, default=None, help="keep the generated files and stores here")
    ap.add_argument("--skip-duckdb", action="store_true")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    d = args.keep or Path(tmp.name)
    d.mkdir(parents=True, exist_ok=True)
    table = synthetic_events(args.events)
    pq.write_table(table, d / "events.parquet")
    pacsv.write_csv(table, d / "events.csv")
    out: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start",
    }
    for fmt in ("parquet", "csv"):
        db = d / f"sqlite-{fmt}.db"
        for p in d.glob(f"sqlite-{fmt}.db*"):
            p.unlink()
        out[f"sqlite_{fmt}"] = bench_sqlite(d / f"events.{fmt}", db, args.events)
        print(json.dumps({f"sqlite_{fmt}": out[f"sqlite_{fmt}"]}), file=sys.stderr, flush=True)
    if not args.skip_duckdb:
        for name, user_index in (("duckdb_parquet", True), ("duckdb_parquet_key_only", False)):
            db = d / f"{name}.db"
            if db.exists():
                db.unlink()
            out[name] = bench_duckdb(d / "events.parquet", db, args.events, user_index=user_index)
            print(json.dumps({name: out[name]}), file=sys.stderr, flush=True)
    out["load_average_end"] = round(os.getloadavg()[0], 1)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
