"""``recommend`` latency in-process at catalog scale (synthetic shop: topics of products, users browsing in a topic).

    .venv/bin/python benchmarks/recommend_speed.py --products 50000 --events 300000 --requests 300

Builds a knowledge base in a temporary folder, fits the engine (random unit text vectors stand in for
MiniLM so the benchmark measures serving, not encoding), publishes a version the way ``shopsense train``
does, and times ``Recommender.recommend`` (store read of the user's latest events + every source
+ fusion + rules + explanations) for random known users. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from shopsense.process import process_environment

os.environ.update(process_environment())  # before torch, LightGBM or faiss load: see shopsense.process

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.dataset import Dataset
from shopsense.ranking.pipeline import Engine, EngineConfig
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.store import open_store


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def synthetic(n_products: int, n_events: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    topics = 200
    topic = rng.integers(0, topics, n_products)
    products = pd.DataFrame(
        {
            C.ITEM: [f"p{i}" for i in range(n_products)],
            C.TITLE: [f"product {i} of topic {t}" for i, t in enumerate(topic)],
            C.CATEGORY: [f"Dept {t % 20} > Topic {t}" for t in topic],
            C.PRICE: rng.uniform(1, 200, n_products).round(2),
            C.AVAILABLE: True,
        }
    )
    by_topic = [np.flatnonzero(topic == t) for t in range(topics)]
    n_users = max(n_events // 10, 1)
    users = rng.integers(0, n_users, n_events)
    user_topic = rng.integers(0, topics, n_users)
    pop = rng.zipf(1.3, n_events)
    items = [by_topic[user_topic[u]][p % len(by_topic[user_topic[u]])] for u, p in zip(users, pop, strict=True)]
    events = pd.DataFrame(
        {
            C.USER: [f"u{u}" for u in users],
            C.ITEM: [f"p{i}" for i in items],
            C.EVENT_TYPE: rng.choice([C.VIEW, C.VIEW, C.VIEW, C.ADD_TO_CART, C.PURCHASE], n_events),
            C.TIMESTAMP: 1.7e9 + np.sort(rng.uniform(0, 30 * 86400, n_events)),
        }
    )
    return products, events


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=300_000)
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--home", type=Path, help="keep the knowledge base and model here; reuse them when present")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of the known-user requests")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = a.home or Path(tmp)
        settings = load_settings(home=home)
        store = open_store(settings.store_url)
        products, events = synthetic(a.products, a.events)
        folder = Path(settings.models_dir) / "bench"
        fit_s = None
        if not (folder / "manifest.json").exists():
            t0 = time.perf_counter()
            store.upsert_products(products)
            store.add_events(events)
            log(f"store filled in {time.perf_counter() - t0:.1f}s")
            ds = Dataset.from_store(store, settings.event_weights)
            rng = np.random.default_rng(1)
            vec = rng.standard_normal((ds.n_items, 384)).astype(np.float32)
            vec /= np.linalg.norm(vec, axis=1, keepdims=True)
            cfg = EngineConfig(sequential={"epochs": 1}, refit_epochs=0, ranker_users=1000)
            t0 = time.perf_counter()
            eng = Engine(cfg).fit(ds, vec, progress=log)
            fit_s = round(time.perf_counter() - t0, 1)
            eng.save(folder / "engine")
            ds.items.save(folder / "items.json")
            (folder / "manifest.json").write_text(json.dumps({"version": "bench", "format_version": 1}))
        rng = np.random.default_rng(1)
        rec = Recommender(store, settings, folder)
        users = rng.choice(events[C.USER].unique(), a.requests)
        rec.recommend(RecommendRequest(str(users[0]), a.k))  # warm-up
        lat = []
        prof = None
        if a.profile:
            import cProfile

            prof = cProfile.Profile()
            prof.enable()
        for u in users:
            t = time.perf_counter()
            rec.recommend(RecommendRequest(str(u), a.k))
            lat.append((time.perf_counter() - t) * 1000)
        if prof is not None:
            import pstats

            prof.disable()
            pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
        cold = []
        for i in range(min(100, a.requests)):
            t = time.perf_counter()
            rec.recommend(RecommendRequest(f"new-{i}", a.k))
            cold.append((time.perf_counter() - t) * 1000)
        out = {
            "products": a.products,
            "events": a.events,
            "sources": list(rec.engine.models),
            "fit_seconds": fit_s,
            "known_user_ms": {p: round(float(np.percentile(lat, q)), 2) for p, q in (("p50", 50), ("p99", 99))},
            "cold_user_ms": {p: round(float(np.percentile(cold, q)), 2) for p, q in (("p50", 50), ("p99", 99))},
            "requests": len(lat),
        }
        print(json.dumps(out))
        store.close()


if __name__ == "__main__":
    main()
