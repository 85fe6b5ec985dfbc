"""Incremental training against a full refit: time and quality on a public dataset.

    .venv/bin/python benchmarks/incremental.py --dataset scientific --base-share 0.9

Leave-one-out split as everywhere (``../shared/BENCHMARKS.md``). The training events (``train_full``,
every user's last item held out as the test target) are put in a fresh knowledge store in time order:
the first ``--base-share`` of them, then ``shopsense train`` (the served version); then the rest,
as if they had arrived since, and both ``shopsense train --incremental`` (warm start from the served
version) and a full ``shopsense train`` on everything. Both versions are scored on the same test
targets with full ranking (histories = every training event), through the same adapter. Prints JSON.
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
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.dataset import Dataset
from shopsense.data.idmap import IdMap
from shopsense.data.public import load_dataset
from shopsense.data.splits import LeaveOneOut, leave_one_out
from shopsense.evaluation.protocol import evaluate_recommender
from shopsense.models.base import Histories
from shopsense.ranking.pipeline import Engine
from shopsense.store import open_store
from shopsense.training import train


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def training_events(split: LeaveOneOut) -> pd.DataFrame:
    """``train_full`` as an events frame with external ids, in time order (ties keep their order)."""
    ds = split.train_full
    inter = ds.interactions
    return pd.DataFrame(
        {
            C.USER: ds.users.to_external(inter[C.USER_IDX].to_numpy()),
            C.ITEM: ds.items.to_external(inter[C.ITEM_IDX].to_numpy()),
            C.EVENT_TYPE: inter[C.EVENT_TYPE].to_numpy(dtype=object),
            C.TIMESTAMP: inter[C.TIMESTAMP].to_numpy(dtype=float),
        }
    )


class VersionRecommender:
    """A published version behind the evaluation protocol: split indices in, split indices out."""

    def __init__(self, folder: Path, split: LeaveOneOut) -> None:
        self.engine = Engine.load(folder / "engine")
        items = IdMap.load(folder / "items.json")
        self.to_engine = items.to_internal(split.train_full.items.external_ids, strict=False)
        self.to_split = split.train_full.items.to_internal(items.external_ids, strict=False)
        self.sequences = split.train_full.sequences()
        self.n_engine = len(items)

    def fit(self, train: Dataset) -> VersionRecommender:
        return self  # already trained: the store-based runs did that

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        hist = []
        for u in user_idx:
            h = self.to_engine[self.sequences[int(u)]]
            hist.append(h[h >= 0])
        ex = exclude.tocoo()
        cols = self.to_engine[ex.col]
        ok = cols >= 0
        ex_engine = sp.csr_matrix(
            (np.ones(int(ok.sum()), np.float32), (ex.row[ok], cols[ok])), shape=(len(user_idx), self.n_engine)
        )
        top, _, _ = self.engine.rank(Histories(hist), k, ex_engine)
        out = np.where(top >= 0, self.to_split[np.maximum(top, 0)], -1)
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dataset", default="scientific")
    ap.add_argument("--base-share", type=float, default=0.9, help="share of training events before the served version")
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    d = load_dataset(a.dataset)
    ds = Dataset.from_frames(d.events, d.products)
    split = leave_one_out(ds)
    events = training_events(split)
    cut = int(len(events) * a.base_share)
    out: dict = {"dataset": a.dataset, "events": len(events), "base_events": cut, "new_events": len(events) - cut}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp))
        store = open_store(settings.store_url)
        store.upsert_products(d.products)
        store.add_events(events.iloc[:cut])
        log(f"served version: full training on {cut:,} events")
        base = train(store, settings, progress=log)
        out["base_train_seconds"] = round(base.metrics["train_seconds"], 1)
        store.add_events(events.iloc[cut:])
        runs = {}
        for name, incremental in (("incremental", True), ("full", False)):
            log(f"{name} training on {len(events):,} events")
            r = train(store, settings, incremental=incremental, progress=log)
            rec = VersionRecommender(r.path, split)
            res = evaluate_recommender(rec, split, stage="test", fit=False)
            runs[name] = {
                "train_seconds": round(r.metrics["train_seconds"], 1),
                "ndcg@10": round(float(res["ndcg@10"]), 4),
                "hr@10": round(float(res["hr@10"]), 4),
                "tail_ndcg@10": round(float(res["slices"]["targets_pop<=5"]["ndcg@10"]), 4),
            }
            log(f"{name}: {runs[name]}")
        store.close()
    out.update(runs)
    out["ndcg_ratio_incremental_to_full"] = round(runs["incremental"]["ndcg@10"] / runs["full"]["ndcg@10"], 3)
    out["speedup"] = round(runs["full"]["train_seconds"] / runs["incremental"]["train_seconds"], 2)
    out["command"] = "python benchmarks/incremental.py " + " ".join(sys.argv[1:])
    text = json.dumps(out, indent=1)
    if a.json:
        a.json.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
