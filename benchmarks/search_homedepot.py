"""Search on Home Depot: the engine (default, and with its LambdaRank re-ranker cross-fitted) against
BM25, dense MiniLM, RRF and a tuned min-max blend, side by side, ranking ALL 54,667 products per query.

    .venv/bin/python benchmarks/search_homedepot.py [--folds 2] [--json out.json] [--bm25-backends]
    .venv/bin/python benchmarks/search_homedepot.py --backend onnx-int8 --engine-only --latency-queries 0
    .venv/bin/python benchmarks/search_homedepot.py --choose-defaults --latency-queries 0 [--grid-axes JSON]

Protocol (``BENCHMARKS.md``): NDCG@10 with gain 2^(relevance-1) - 1, unjudged = 0, ideal DCG from the
query's judged products; Recall@100 of products with relevance >= 2.5. The metrics and the peers are
the evaluation package's (``shopsense.evaluation.search_protocol``). The blend's dense weight is tuned
on the evaluated split itself (it can only look better than it would on new queries).

The re-ranker never scores a query it learned from: queries are split into ``--folds`` parts by a
stable hash of their text; a model trained on the other parts ranks each part (cross-fitting), so
every judged query is evaluated once, by a model that did not see it.

``--choose-defaults`` chooses the search defaults (BM25 k1 and b, the spelling thresholds, the untrained
ranking's weights) on one half of the queries and scores them on the other, both ways round, then
ranks each half with the defaults and the re-ranker of the other half (``search_defaults.py``).

``--backend`` picks the text encoder (``[encoder] backend``) for products and queries alike; the
encoder choice is backed by the engine's NDCG@10 under each backend (``--engine-only`` skips the peers).
Query vectors are cached (``--cache``, one file per backend) so reruns do not re-encode; the quality pass therefore times
retrieval and ranking without encoding. The latency pass times ``engine.search`` end to end with the
real encoder (spelling, encoding, both retrievers, features, re-ranker) on ``--latency-queries`` queries.
"""

from __future__ import annotations

import os

from shopsense.process import process_environment

# OMP_WAIT_POLICY=PASSIVE above all: idle OpenMP threads (LightGBM, torch) otherwise burn the CPU the
# next query's encoding needs (measured: p50 460 ms -> 47 ms). Must be set before they load.
os.environ.update(process_environment())

import argparse  # noqa: E402
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import EncoderConfig
from shopsense.data.public import load_dataset
from shopsense.evaluation.crossfit import choose_on_halves, fold_of, split_queries
from shopsense.evaluation.peers.search import BM25Peer, DensePeer
from shopsense.evaluation.search_protocol import evaluate_search
from shopsense.features.embeddings import embed_products
from shopsense.features.text import TextEncoder
from shopsense.search import SearchEngine
from shopsense.search.reranker import Reranker
from shopsense.store import open_store


class CachedQueries:
    """The text encoder with a query-vector cache on disk (``queries.npz``: texts and vectors)."""

    def __init__(self, encoder: TextEncoder, path: Path) -> None:
        self.encoder, self.path = encoder, path
        self.cache: dict[str, np.ndarray] = {}
        if path.exists():
            z = np.load(path, allow_pickle=False)
            self.cache = dict(zip(z["texts"].tolist(), z["vectors"], strict=True))
        self.misses = 0

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: list[str], **kw: Any) -> np.ndarray:
        return self.encoder.encode(texts, **kw)

    def encode_queries(self, texts: list[str], **kw: Any) -> np.ndarray:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:
            self.misses += len(todo)
            # one query per call, as the service encodes them: int8 activations are quantised per batch,
            # so a short query padded in a batch of longer ones gets another vector (cosine ~0.98)
            self.cache.update(zip(todo, self.encoder.encode_queries(todo, batch_size=1), strict=True))
        return np.stack([self.cache[t] for t in texts]).astype(np.float32)

    def save(self) -> None:
        texts = list(self.cache)
        np.savez(self.path, texts=np.array(texts), vectors=np.stack([self.cache[t] for t in texts]))


class EngineSystem:
    """The engine as an evaluated system; ``rerankers`` (one per fold) make it cross-fitted."""

    def __init__(self, engine: SearchEngine, rerankers: list[Reranker] | None = None) -> None:
        self.engine, self.rerankers = engine, rerankers

    def search(self, query: str, k: int) -> np.ndarray:
        self.engine.reranker = self.rerankers[fold_of(query, len(self.rerankers))] if self.rerankers else None
        return self.engine.rank([query], k)[0]


def train_rerankers(
    engine: SearchEngine, queries: pd.DataFrame, qrels: pd.DataFrame, folds: int, rounds: int
) -> tuple[list[Reranker], float]:
    """One re-ranker per fold, each trained on the queries of the other folds."""
    t0 = time.perf_counter()
    engine.reranker = None
    groups, gains = engine.training_groups(queries, qrels)
    fold = np.array([fold_of(q, folds) for q in queries["query"]])
    models = []
    for f in range(folds):
        train = np.flatnonzero(fold != f)
        models.append(Reranker(num_rounds=rounds).fit([groups[i] for i in train], [gains[i] for i in train]))
    return models, time.perf_counter() - t0


def latency(engine: SearchEngine, queries: list[str]) -> dict[str, float]:
    """Wall-clock and CPU time of ``engine.search`` per query. CPU time (all the process's threads) is what a quiet
    machine's wall clock would be close to; on a shared machine the wall clock also counts waiting."""
    engine.search(queries[0], k=10)  # warm-up
    ms, cpu = [], []
    for q in queries:
        t0, c0 = time.perf_counter(), time.process_time()
        engine.search(q, k=10)
        ms.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "cpu_p50_ms": float(np.percentile(cpu, 50)),
        "cpu_p99_ms": float(np.percentile(cpu, 99)),
        "n": len(ms),
    }


def bm25_backends(products: pd.DataFrame, queries: list[str]) -> dict[str, dict[str, float]]:
    """Per-query time of bm25s (the engine's BM25Index) and tantivy on the same titles and queries."""
    from shopsense.index.bm25 import BM25Index

    out: dict[str, dict[str, float]] = {}
    t0 = time.perf_counter()
    idx = BM25Index().fit(products)
    fit = time.perf_counter() - t0
    t0 = time.perf_counter()
    for q in queries:
        idx.search(q, 100)
    out["bm25s"] = {"index_s": fit, "ms_per_query": (time.perf_counter() - t0) * 1000 / len(queries)}
    try:
        import tantivy
    except ImportError:
        return out
    sb = tantivy.SchemaBuilder()
    sb.add_text_field("title", stored=False, tokenizer_name="en_stem")
    schema = sb.build()
    t0 = time.perf_counter()
    ti = tantivy.Index(schema)
    w = ti.writer()
    for t in products[C.TITLE].astype(str):
        w.add_document(tantivy.Document(title=t))
    w.commit()
    ti.reload()
    fit = time.perf_counter() - t0
    searcher = ti.searcher()
    t0 = time.perf_counter()
    for q in queries:
        words = " ".join("".join(ch if ch.isalnum() else " " for ch in q).split())
        if words:
            searcher.search(ti.parse_query(words, ["title"]), 100)
    out["tantivy"] = {"index_s": fit, "ms_per_query": (time.perf_counter() - t0) * 1000 / len(queries)}
    return out


def choose_defaults(
    engine: SearchEngine,
    encoder: CachedQueries,
    products: pd.DataFrame,
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """``--choose-defaults``: the cross-fitted choice of the search defaults (``search_defaults.py``), then
    the engine with and without its re-ranker, each half ranked with the defaults and the re-ranker of
    the other half, next to today's defaults cross-fitted the same way (and the peers)."""
    # the benchmarks' folder is on the path of its scripts
    from search_defaults import (
        GRID,
        CrossFittedEngine,
        EngineVariants,
        SearchDefaults,
        grid,
        per_axis_best,
        train_half_rerankers,
    )

    variants = EngineVariants(engine, products)
    axes = {**GRID, **json.loads(args.grid_axes)} if args.grid_axes else GRID
    settings = grid(axes)
    today = SearchDefaults()
    print(f"choosing among {len(settings)} settings on each half", flush=True)
    t0 = time.perf_counter()
    choice = choose_on_halves(settings, variants.evaluate, queries, qrels, default=today)
    choose_s = time.perf_counter() - t0
    encoder.save()
    print(f"chosen in {choose_s:.0f}s ({variants.passes} candidate passes)", flush=True)
    for h in choice.halves:
        print(
            f"half {h.chosen_on} chose {h.setting.label()}\n"
            f"  NDCG@10 untrained: {h.train_score:.4f} on half {h.chosen_on}, {h.heldout_score:.4f} on half "
            f"{1 - h.chosen_on} (today's defaults there: {h.default_heldout_score:.4f})"
        )
    print(
        f"held-out mean: chosen {choice.heldout_mean:.4f}, today's defaults {choice.default_heldout_mean:.4f}; "
        f"halves agree: {choice.agree}",
        flush=True,
    )
    per_axis = per_axis_best(settings, choice.train_scores, axes)
    print("best NDCG@10 on each choosing half with each value (the other settings at their best):")
    for name, rows in per_axis.items():
        print(f"  {name}: " + "; ".join(f"{v}: {a:.4f} / {b:.4f}" for v, a, b in rows))
    grid_out = {
        "axes": axes,
        "settings": [asdict(x) for x in settings],
        "scores_on_half": [t.tolist() for t in choice.train_scores],
        "best_per_value": per_axis,
    }
    summary: dict[str, Any] = {
        "encoder": encoder.model_id,
        "grid_size": len(settings),
        "choice": [
            {
                "chosen_on_half": h.chosen_on,
                "setting": asdict(h.setting),
                "ndcg@10_choosing_half": h.train_score,
                "ndcg@10_other_half": h.heldout_score,
                "today_ndcg@10_other_half": h.default_heldout_score,
            }
            for h in choice.halves
        ],
        "heldout_mean": choice.heldout_mean,
        "today_heldout_mean": choice.default_heldout_mean,
        "halves_agree": choice.agree,
        "choose_s": choose_s,
        "grid": grid_out,
    }
    if args.choice_only:
        return summary

    halves = split_queries(queries, qrels)
    chosen = [choice.halves[1].setting, choice.halves[0].setting]  # half f is ranked by the other half's choice
    t0 = time.perf_counter()
    rerank_today = train_half_rerankers(variants, [today, today], halves, args.rounds)
    rerank_chosen = (
        rerank_today if chosen == [today, today] else train_half_rerankers(variants, chosen, halves, args.rounds)
    )
    train_s = time.perf_counter() - t0
    print(f"re-rankers trained in {train_s:.0f}s", flush=True)
    systems: dict[str, Any] = {
        "engine (today's defaults)": CrossFittedEngine(variants, [today, today]),
        "engine+lambdarank (today's defaults)": CrossFittedEngine(variants, [today, today], rerank_today),
        "engine (defaults of the other half)": CrossFittedEngine(variants, chosen),
        "engine+lambdarank (defaults of the other half)": CrossFittedEngine(variants, chosen, rerank_chosen),
    }
    if not args.engine_only:
        vectors = engine.index.vectors
        systems |= {"bm25": BM25Peer(), "dense": DensePeer(encoder, vectors)}
    res = evaluate_search(products, queries, qrels, systems, fusion=True)
    print(f"\n{'system':<48} {'NDCG@10':>8} {'R@100':>7} {'MRR':>7}")
    for name, r in res.items():
        print(f"{name:<48} {r['ndcg@10']:>8.4f} {r['recall@100']:>7.4f} {r['mrr']:>7.4f}")
    return summary | {"half_sizes": [len(q) for q, _ in halves], "quality": res, "train_s": train_s}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=150, help="LambdaRank boosting rounds")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/shopsense-bench/search-homedepot-cache"))
    ap.add_argument("--latency-queries", type=int, default=300)
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N queries (smoke runs)")
    ap.add_argument("--bm25-backends", action="store_true", help="also time bm25s against tantivy")
    ap.add_argument(
        "--backend", choices=["torch", "onnx-int8", "onnx-int8-unfused"], default=None, help="text encoder backend"
    )
    ap.add_argument("--engine-only", action="store_true", help="evaluate the engine only (no peers)")
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument(
        "--choose-defaults",
        action="store_true",
        help="choose BM25 k1/b, the spelling thresholds and the untrained ranking's weights on one half of the "
        "queries, score them on the other (both ways round), then the engine cross-fitted with them",
    )
    ap.add_argument(
        "--grid-axes",
        default="",
        help='with --choose-defaults: JSON replacing axes of the grid, e.g. \'{"k1": [0.3, 0.5], "b": [0.4]}\'',
    )
    ap.add_argument("--choice-only", action="store_true", help="with --choose-defaults: stop after the choice")
    ap.add_argument(
        "--latency-only",
        type=int,
        default=0,
        metavar="N",
        help="skip the quality pass: train a re-ranker on N queries (for timing only) and time search()",
    )
    args = ap.parse_args()

    ds = load_dataset("homedepot")
    products, queries, qrels = ds.products, ds.queries, ds.qrels
    if args.limit:
        queries = queries.head(args.limit)
        qrels = qrels[qrels["query_id"].isin(set(queries["query_id"]))]
    args.cache.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{args.cache / 'embeddings.db'}")
    enc_config = EncoderConfig() if args.backend is None else EncoderConfig(backend=args.backend)
    # one query file per encoder: vectors of two backends must never meet in one ranking
    qfile = args.cache / f"queries-{enc_config.backend}.npz"
    encoder = CachedQueries(TextEncoder(enc_config), qfile)
    print(f"encoder {encoder.model_id}", flush=True)
    t0 = time.perf_counter()
    vectors = embed_products(products, encoder.encoder, store, progress=True)
    print(f"product vectors {vectors.shape} in {time.perf_counter() - t0:.0f}s", flush=True)

    t0 = time.perf_counter()
    engine = SearchEngine.build(products, encoder, vectors=vectors)
    build_s = time.perf_counter() - t0
    print(f"engine built in {build_s:.0f}s", flush=True)
    if args.choose_defaults:
        out = choose_defaults(engine, encoder, products, queries, qrels, args)
        encoder.save()
        if args.json:
            args.json.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
        return
    if args.latency_only:
        head = queries.head(args.latency_only)
        engine.fit_reranker(head, qrels[qrels["query_id"].isin(set(head["query_id"]))], num_rounds=args.rounds)
        model = engine.reranker
        sample = queries["query"].sample(min(args.latency_queries, len(queries)), random_state=0).tolist()
        engine.encoder = TextEncoder(enc_config)
        engine.reranker = None
        lat = {"engine": latency(engine, sample)}
        engine.reranker = model
        lat["engine+lambdarank"] = latency(engine, sample)
        print(json.dumps(lat, indent=1))
        return
    rerankers, train_s = train_rerankers(engine, queries, qrels, args.folds, args.rounds)
    encoder.save()
    print(f"{args.folds} re-rankers trained in {train_s:.0f}s", flush=True)

    systems: dict[str, Any] = {"engine": EngineSystem(engine), "engine+lambdarank": EngineSystem(engine, rerankers)}
    if not args.engine_only:
        systems |= {"bm25": BM25Peer(), "dense": DensePeer(encoder, vectors)}
    res = evaluate_search(products, queries, qrels, systems, fusion=True)
    encoder.save()

    sample = queries["query"].sample(min(args.latency_queries, len(queries)), random_state=0).tolist()
    lat = {}
    if sample:
        engine.encoder = TextEncoder(enc_config)  # no cache: every query is encoded, as in serving
        engine.reranker = None
        lat["engine"] = latency(engine, sample)
        engine.reranker = rerankers[0]
        lat["engine+lambdarank"] = latency(engine, sample)
    out: dict[str, Any] = {
        "encoder": encoder.model_id,
        "quality": res,
        "latency_end_to_end": lat,
        "build_s": build_s,
        "train_s": train_s,
    }
    if args.bm25_backends:
        out["bm25_backends"] = bm25_backends(products, sample)

    print(f"\n{'system':<20} {'NDCG@10':>8} {'R@100':>7} {'rerank NDCG@10':>15} {'p50 ms':>7} {'p99 ms':>7}")
    for name, r in res.items():
        print(
            f"{name:<20} {r['ndcg@10']:>8.4f} {r['recall@100']:>7.4f} {r['rerank_ndcg@10']:>15.4f} "
            f"{r['latency_p50_ms']:>7.1f} {r['latency_p99_ms']:>7.1f}"
        )
    if "blend" in res:
        print(f"blend dense weight (tuned on the split): {res['blend'].get('dense_weight')}")
    for name, r in lat.items():
        print(
            f"end-to-end search() latency {name}: p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms over {r['n']} queries"
        )
    if args.bm25_backends:
        print(json.dumps(out["bm25_backends"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
