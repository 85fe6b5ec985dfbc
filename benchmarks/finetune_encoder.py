"""The text encoder fine-tuned on a shop's signals against the untuned one, cross-fitted on Home Depot.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune_encoder.py [--rerank] [--json reports/finetune_encoder.json]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune_encoder.py --timing-pairs 50000   # the time budget check

Home Depot's judged queries are split in two halves by a stable hash of their text
(``shopsense.evaluation.crossfit``). For each half, the encoder is fine-tuned
(:func:`shopsense.features.finetune.finetune`, the settings' defaults) on the *other* half's pairs
(query, title of a product judged relevant: relevance >= 2.5), every one of the 54,667 titles is
encoded by the tuned model, and this half's queries are scored: never a query the model learned
from. Both encoders run as the service runs them (``[encoder] backend``, ONNX int8 by default; the
tuned model is exported once into its own folder). Systems per half: dense retrieval alone
(cosine of query and title vectors) and the search engine (BM25 + dense + its untrained ranking,
default settings), each with the untuned and the tuned encoder; with ``--rerank`` also the engine
re-ranked by LambdaRank trained on the other half (the same half the encoder learned from). NDCG@10
and Recall@100 as in ``benchmarks/search_homedepot.py``.

``--timing-pairs N`` fine-tunes on N pairs (Home Depot's judged pairs with relevance >= 2, repeated
when fewer) with no time budget, and reports the wall time: the issue's "50k pairs within 20
minutes on the 2-core machine".
"""

from __future__ import annotations

import os

from shopsense.process import process_environment

os.environ.update(process_environment())

import argparse  # noqa: E402
import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from server_procs import cpu_model  # this folder is on sys.path

from shopsense import columns as C
from shopsense.config import EncoderConfig, FinetuneConfig
from shopsense.data.public import load_dataset
from shopsense.evaluation.crossfit import split_queries
from shopsense.evaluation.peers.search import DensePeer
from shopsense.evaluation.search_protocol import evaluate_search
from shopsense.features.finetune import Pairs, finetune, tunable_source
from shopsense.features.onnx_encoder import OWN_EXPORT
from shopsense.features.text import ONNX_SUFFIX, TextEncoder
from shopsense.search import SearchEngine
from shopsense.search.reranker import Reranker

RELEVANT = 2.5


def judged_pairs(products: pd.DataFrame, queries: pd.DataFrame, qrels: pd.DataFrame, threshold: float) -> Pairs:
    """(query, product title) for every judgement at or above ``threshold``."""
    title = dict(zip(products[C.ITEM].astype(str), products[C.TITLE].astype(str), strict=True))
    text = dict(zip(queries["query_id"], queries["query"], strict=True))
    good = qrels[(qrels["relevance"] >= threshold) & qrels["query_id"].isin(set(text))]
    anchors = [str(text[q]) for q in good["query_id"]]
    positives = [title[str(i)] for i in good[C.ITEM]]
    return Pairs(anchors, positives, ["search"] * len(anchors))


class EngineSystem:
    def __init__(self, engine: SearchEngine, reranker: Reranker | None = None) -> None:
        self.engine, self.reranker = engine, reranker

    def search(self, query: str, k: int) -> np.ndarray:
        self.engine.reranker = self.reranker
        return self.engine.rank([query], k)[0]


class Systems:
    """Dense retrieval alone and the search engine, both with one encoder's product vectors."""

    def __init__(self, products: pd.DataFrame, encoder: TextEncoder) -> None:
        t0 = time.perf_counter()
        self.vectors = encoder.encode(products[C.TITLE].astype(str).tolist(), progress=True)
        self.encode_s = round(time.perf_counter() - t0, 1)
        self.encoder = encoder
        self.engine = SearchEngine.build(products, encoder, vectors=self.vectors)

    def score(
        self, products: pd.DataFrame, queries: pd.DataFrame, qrels: pd.DataFrame, train: tuple | None = None
    ) -> dict[str, Any]:
        """NDCG@10 and Recall@100 of both systems on ``queries``; with ``train`` (the other half's
        queries and judgements) also the engine re-ranked by a LambdaRank model trained on them."""
        systems: dict[str, Any] = {"dense": DensePeer(self.encoder, self.vectors), "engine": EngineSystem(self.engine)}
        if train is not None:
            self.engine.reranker = None
            groups, gains = self.engine.training_groups(*train)
            systems["engine+lambdarank"] = EngineSystem(self.engine, Reranker(num_rounds=150).fit(groups, gains))
        res = evaluate_search(products, queries, qrels, systems, fusion=False)
        out: dict[str, Any] = {n: {"ndcg@10": r["ndcg@10"], "recall@100": r["recall@100"]} for n, r in res.items()}
        out["encode_products_s"] = self.encode_s
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/shopsense-bench/finetune"))
    ap.add_argument("--backend", choices=["onnx-int8", "onnx-int8-unfused", "torch"], default="onnx-int8")
    ap.add_argument("--timing-pairs", type=int, default=0)
    ap.add_argument("--max-seconds", type=float, default=None, help="override the settings' time budget")
    ap.add_argument("--limit", type=int, default=0, help="score only the first N queries of each half (smoke runs)")
    ap.add_argument(
        "--rerank", action="store_true", help="also the engine re-ranked by LambdaRank trained on the other half"
    )
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    ds = load_dataset("homedepot")
    products, queries, qrels = ds.products, ds.queries, ds.qrels
    base = EncoderConfig(backend=a.backend)
    cfg = FinetuneConfig()
    if a.max_seconds:
        cfg = cfg.model_copy(update={"max_seconds": a.max_seconds})
    source = tunable_source(base)
    assert source is not None
    meta: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "backend": a.backend,
        "config": cfg.model_dump(),
    }
    if a.timing_pairs:
        pool = judged_pairs(products, queries, qrels, 2.0)
        reps = -(-a.timing_pairs // len(pool))
        pairs = Pairs((pool.anchors * reps)[: a.timing_pairs], (pool.positives * reps)[: a.timing_pairs])
        pairs.kinds = ["search"] * len(pairs)
        cfg = cfg.model_copy(update={"max_seconds": 1e9})
        folder = a.work / "timing"
        shutil.rmtree(folder, ignore_errors=True)
        rep = finetune(source, pairs, cfg, folder, model_id="tuned:timing", progress=print)
        out: dict[str, Any] = {**meta, "timing": asdict(rep), "distinct_pairs": len(pool)}
        print(json.dumps(out, indent=1))
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
        return
    halves = split_queries(queries, qrels, folds=2)
    results: dict[str, Any] = {"halves": []}
    untuned = Systems(products, TextEncoder(base))
    print(f"untuned encoder {untuned.encoder.model_id}: {len(products)} titles in {untuned.encode_s}s", flush=True)
    for h, (q_eval, r_eval) in enumerate(halves):
        q_train, r_train = halves[1 - h]
        if a.limit:
            q_eval = q_eval.head(a.limit)
            r_eval = r_eval[r_eval["query_id"].isin(set(q_eval["query_id"]))]
        pairs = judged_pairs(products, q_train, r_train, RELEVANT)
        folder = a.work / f"half{h}"
        shutil.rmtree(folder, ignore_errors=True)
        rep = finetune(source, pairs, cfg, folder, model_id=f"tuned:homedepot-half{1 - h}", progress=print)
        if a.backend in ONNX_SUFFIX:
            (folder / OWN_EXPORT).mkdir()  # exported into the model's own folder, as a training does
        tuned = Systems(products, TextEncoder(base.model_copy(update={"model": str(folder)})))
        print(f"half {h}: {len(q_eval)} queries scored; tuned {tuned.encoder.model_id}", flush=True)
        row = {
            "half": h,
            "queries": len(q_eval),
            "finetune": asdict(rep),
            "untuned": untuned.score(products, q_eval, r_eval, (q_train, r_train) if a.rerank else None),
            "tuned": tuned.score(products, q_eval, r_eval, (q_train, r_train) if a.rerank else None),
        }
        del tuned
        print(json.dumps(row, indent=1), flush=True)
        results["halves"].append(row)
    n = sum(r["queries"] for r in results["halves"])
    names = ("dense", "engine", "engine+lambdarank") if a.rerank else ("dense", "engine")
    for enc in ("untuned", "tuned"):
        for system in names:
            for m in ("ndcg@10", "recall@100"):
                results[f"{enc} {system} {m}"] = sum(r[enc][system][m] * r["queries"] for r in results["halves"]) / n
    out = {**meta, **results}
    print("\n| system | untuned NDCG@10 | tuned NDCG@10 | untuned R@100 | tuned R@100 |")
    for system in names:
        print(
            f"| {system} | {out[f'untuned {system} ndcg@10']:.4f} | {out[f'tuned {system} ndcg@10']:.4f} | "
            f"{out[f'untuned {system} recall@100']:.4f} | {out[f'tuned {system} recall@100']:.4f} |"
        )
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
