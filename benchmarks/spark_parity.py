"""The local trainer and the Spark trainer on one synthetic shop, side by side: are the exact sources
equal entry for entry, and how long does each trainer take?

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/spark_parity.py [--users 40000] [--items 20000] \
        [--master local[2]] [--json reports/spark_parity.json]

The shop: ``--items`` products in 40 categories, ``--users`` shoppers with a geometric number of
events (mean 7.5; views, clicks, carts, purchases), 60% of them in the shopper's own category and the
rest by a Zipf popularity. Both trainers run with ``[engine] sources = "sparse"`` and ALS on (32
factors, 10 sweeps), each on its own copy of the store. Printed: each trainer's wall time, whether
popularity, trend, counts, categories, co-visitation and item-kNN are equal (the same float32
arrays), and the held-out NDCG@10 each trainer tuned its fusion on (the two draw their held-out
users differently once a shop has more than ``ranker_users`` of them: those numbers are not
paired). Not a test: it takes minutes (Spark ``local[2]`` on 300k events: about 7 minutes on a
busy 2-core machine, the local trainer about 1.5).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense.config import load_settings
from shopsense.data.ingest import ingest_events, ingest_products
from shopsense.ranking.pipeline import Engine
from shopsense.store import open_store
from shopsense.training import train

ENGINE = {"sources": "sparse", "als": {"factors": 32, "iterations": 10}}
EVENT_TYPES = np.array(["view", "click", "add_to_cart", "purchase"])


def shop(users: int, items: int, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The synthetic catalog and events (see the module docstring)."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"I{i:06d}" for i in range(items)], dtype=object)
    products = pd.DataFrame(
        {
            "item_id": ids,
            "title": [f"item {i}" for i in range(items)],
            "category": [f"C{i % 40} > S{i % 7}" for i in range(items)],
            "brand": [f"B{i % 300}" for i in range(items)],
            "price": rng.uniform(1, 100, items).round(2),
        }
    )
    pop = 1.0 / np.arange(1, items + 1) ** 0.9
    pop /= pop.sum()
    parts = []
    for u, k in enumerate(rng.geometric(1 / 7.5, users)):
        own = np.arange(rng.integers(0, 40), items, 40)
        chosen = np.where(rng.random(k) < 0.6, rng.choice(own, k), rng.choice(items, k, p=pop))
        ts = 1.7e9 + rng.uniform(0, 60 * 86400) + np.cumsum(rng.integers(0, 600, k)).astype(float)
        kinds = EVENT_TYPES[rng.choice(4, k, p=[0.7, 0.15, 0.1, 0.05])]
        parts.append(pd.DataFrame({"user_id": f"U{u}", "item_id": ids[chosen], "event_type": kinds, "timestamp": ts}))
    return products, pd.concat(parts, ignore_index=True)


def _same(a: Any, b: Any) -> bool:
    a, b = a.tocsr().copy(), b.tocsr().copy()
    a.sort_indices()
    b.sort_indices()
    return all(np.array_equal(x, y) for x, y in ((a.indptr, b.indptr), (a.indices, b.indices), (a.data, b.data)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=40_000)
    ap.add_argument("--items", type=int, default=20_000)
    ap.add_argument("--master", default="local[2]")
    ap.add_argument("--conf", action="append", default=[], help="Spark KEY=VALUE (repeatable)")
    ap.add_argument("--json", type=Path, help="also write the results here")
    args = ap.parse_args()
    from shopsense.distributed.job import train_on_spark
    from shopsense.distributed.session import parse_conf

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        products, events = shop(args.users, args.items)
        products.to_csv(root / "p.csv", index=False)
        events.to_csv(root / "e.csv", index=False)
        print(f"{len(events):,} events, {args.users:,} users, {args.items:,} items", flush=True)
        runs: dict[str, tuple[float, Engine, dict[str, Any]]] = {}
        for name in ("local", "spark"):
            settings = load_settings(home=root / name, engine=ENGINE)
            store = open_store(settings.store_url)
            ingest_products(store, root / "p.csv")
            ingest_events(store, root / "e.csv")
            t0 = time.perf_counter()
            if name == "local":
                result = train(store, settings)
            else:
                result = train_on_spark(store, settings, master=args.master, conf=parse_conf(args.conf))
            runs[name] = (time.perf_counter() - t0, Engine.load(result.path / "engine"), result.metrics)
            store.close()
            print(f"{name}: {runs[name][0]:.1f}s", flush=True)
    (local_s, local, local_m), (spark_s, spark, spark_m) = runs["local"], runs["spark"]
    assert local.popular is not None and spark.popular is not None
    out: dict[str, Any] = {"events": len(events), "users": args.users, "items": args.items}
    out["seconds"] = {"local": round(local_s, 1), "spark": round(spark_s, 1)}
    out["equal"] = {
        a: bool(np.array_equal(getattr(local.popular, a), getattr(spark.popular, a)))
        for a in ("popularity", "trend", "counts", "category")
    }
    for m in ("covisit", "itemknn"):
        out["equal"][m] = _same(local.models[m].sim, spark.models[m].sim)  # type: ignore[attr-defined]
    out["heldout_ndcg@10"] = {
        n: {"fusion": m.get("heldout_ndcg@10_fusion"), **m.get("heldout_ndcg@10_single", {})}
        for n, m in (("local", local_m), ("spark", spark_m))
    }
    out["spark_seconds_by_stage"] = spark_m.get("fit_seconds_by_source")
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
