"""The recommendation engine against EASE and item-kNN in one run (leave-one-out, full ranking).

    .venv/bin/python benchmarks/recommend_quality.py --datasets scientific beauty videogames --json out.json

Peers are tuned on validation (EASE l2 grid, item-kNN neighbours); the engine tunes itself inside
``fit`` on held-out last training items. Everything is fitted on ``train_full`` and scored on test.
Text vectors are cached under ``benchmarks/.cache``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from shopsense.process import process_environment

os.environ.update(process_environment())  # before torch, LightGBM or faiss load: see shopsense.process

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "benchmarks" / ".cache"


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def vectors(name: str, products, has_text: bool) -> np.ndarray | None:
    if not has_text:
        return None
    from shopsense.features.embeddings import embed_products
    from shopsense.features.text import TextEncoder

    path = CACHE / f"engine-vectors-{name}-{len(products)}.npy"
    if path.exists():
        return np.load(path)
    CACHE.mkdir(parents=True, exist_ok=True)
    v = embed_products(products, TextEncoder())
    np.save(path, v)
    return v


def summary(r: dict) -> dict:
    out = {k: round(float(r[k]), 4) for k in ("ndcg@10", "hr@10", "ndcg@20", "hr@20", "fit_seconds", "score_seconds")}
    out["tail_ndcg@10"] = round(float(r["slices"]["targets_pop<=5"]["ndcg@10"]), 4)
    out["short_users_ndcg@10"] = round(float(r["slices"]["users_hist<=5"]["ndcg@10"]), 4)
    return out


def run(name: str, peers: list[str]) -> dict:
    from shopsense.data.dataset import Dataset
    from shopsense.data.public import load_dataset
    from shopsense.data.splits import leave_one_out
    from shopsense.evaluation.peers.neighbors import EASE, ItemKNN
    from shopsense.evaluation.protocol import evaluate_recommender
    from shopsense.training import EngineRecommender

    d = load_dataset(name)
    ds = Dataset.from_frames(d.events, d.products)
    split = leave_one_out(ds)
    vec = vectors(name, ds.products, d.has_text)
    res: dict = {}
    grids = {"ease": [{"l2": 50.0}, {"l2": 200.0}], "itemknn": [{}]}
    makers = {"ease": lambda p: EASE(**p), "itemknn": lambda p: ItemKNN(**p)}
    for peer in peers:
        best, best_v = grids[peer][0], -1.0
        if len(grids[peer]) > 1:
            for p in grids[peer]:
                v = evaluate_recommender(makers[peer](p), split, stage="valid")["ndcg@10"]
                log(f"{name} {peer} {p} valid ndcg@10 {v:.4f}")
                if v > best_v:
                    best, best_v = p, v
        res[peer] = summary(evaluate_recommender(makers[peer](best), split, stage="test")) | {"params": best}
        log(f"{name} {peer}: {res[peer]}")
    eng = EngineRecommender(item_vectors=vec, progress=lambda m: log(f"{name} engine: {m}"))
    res["engine"] = summary(evaluate_recommender(eng, split, stage="test"))
    res["engine"]["heldout"] = {k: v for k, v in eng.engine.metrics.items() if k.startswith("heldout")}
    res["engine"]["fusion_weights"] = eng.engine.fusion.weights
    log(f"{name} engine: {res['engine']}")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["scientific", "videogames", "beauty"])
    ap.add_argument("--peers", nargs="*", default=["ease", "itemknn"])
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    out = {n: run(n, a.peers) for n in a.datasets}
    text = json.dumps(out, indent=1)
    print(text)
    if a.json:
        a.json.write_text(text)


if __name__ == "__main__":
    main()
