"""Offline search evaluation: rank ALL products for every judged query, score against graded labels.

Systems score one query at a time (so per-query latency is real): a system has ``scores(query) ->
(n_products,)`` (-inf = not retrieved) or ``search(query, k) -> row indices``. BM25 and dense scores
are computed once per query and shared by the fused peers (RRF and the min-max blend), whose latency
is counted as both base systems plus the fusion.

Metrics (``BENCHMARKS.md``): NDCG@10 with exponential gain 2^(relevance-1) - 1, unjudged = 0, ideal
from the query's judged products; Recall@100 of products with relevance >= 2.5; MRR (first product
>= 2.5); the re-ranking variant ``rerank_ndcg@10`` orders only each query's judged products.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.evaluation import metrics as M
from shopsense.evaluation.peers.search import BLEND_GRID, blend, rrf
from shopsense.topk import top_k

Progress = Callable[[int], None]


@dataclass
class Judgements:
    """Queries with at least one judged product, and their labels as a (queries x products) CSR matrix."""

    query_ids: np.ndarray
    texts: list[str]
    qrels: Any  # scipy.sparse.csr_matrix of raw relevance
    dropped_labels: int  # labels naming a product not in the catalog


def judgements(products: pd.DataFrame, queries: pd.DataFrame, qrels: pd.DataFrame) -> Judgements:
    """Align ``queries`` (query_id, query) and ``qrels`` (query_id, item_id, relevance) with product rows."""
    for frame, cols, what in (
        (queries, ["query_id", "query"], "queries"),
        (qrels, ["query_id", C.ITEM, "relevance"], "qrels"),
    ):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise ValueError(f"{what} file lacks column(s) {', '.join(missing)}; expected {', '.join(cols)}")
    q = queries.drop_duplicates("query_id")
    qid = q["query_id"].astype(str).to_numpy(dtype=object)
    rel = pd.to_numeric(qrels["relevance"], errors="coerce")
    if rel.isna().any():
        bad = qrels.loc[rel.isna(), "relevance"].iloc[0]
        raise ValueError(f"qrels: relevance must be a number, got {bad!r}")
    item_row = pd.Index(products[C.ITEM].astype(str)).get_indexer(qrels[C.ITEM].astype(str))
    q_row = pd.Index(qid).get_indexer(qrels["query_id"].astype(str))
    keep = (item_row >= 0) & (q_row >= 0) & (rel.to_numpy() > 0)
    judged = np.unique(q_row[keep])
    remap = np.full(len(qid), -1)
    remap[judged] = np.arange(len(judged))
    mat = M.truth_from_pairs(remap[q_row[keep]], item_row[keep], rel.to_numpy()[keep], len(judged), len(products))
    texts = [str(t) for t in q["query"].to_numpy(dtype=object)[judged]]
    return Judgements(qid[judged], texts, mat, int((item_row < 0).sum()))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` best products of a query, padded with -1 (one row of the fixed-width result table)."""
    out = np.full(k, -1, dtype=np.int64)
    ids, _ = top_k(scores, k)
    out[: len(ids)] = ids
    return out


def _rerank(scores: np.ndarray, judged: np.ndarray, k: int) -> np.ndarray:
    """The query's judged products ordered by the system's score (unretrieved last), as a top-k list."""
    s = scores[judged]
    order = judged[np.lexsort((judged, -np.where(np.isfinite(s), s, -1e30)))]
    out = np.full(k, -1, dtype=np.int64)
    out[: min(k, len(order))] = order[:k]
    return out


def evaluate_search(
    products: pd.DataFrame,
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    systems: dict[str, Any],
    *,
    fusion: bool = True,
    blend_weight: float | None = None,
    k: int = 10,
    recall_k: int = 100,
    threshold: float = 2.5,
    progress: Progress | None = None,
) -> dict[str, dict[str, Any]]:
    """Fit (index) every system on ``products`` and evaluate it on the judged queries.

    With ``fusion`` and both ``bm25`` and ``dense`` among ``systems``, adds ``rrf`` and ``blend``; the
    blend's dense weight is ``blend_weight`` or, when None, the best of ``BLEND_GRID`` on THIS split
    (reported as ``tuned_on="evaluated split"``; use :func:`tune_blend` on separate queries instead).
    """
    j = judgements(products, queries, qrels)
    n_q = len(j.texts)
    depth = max(k, recall_k)
    fit_seconds: dict[str, float] = {}
    for name, system in systems.items():
        t0 = time.perf_counter()
        if hasattr(system, "fit"):
            system.fit(products)
        # a system fitted beforehand (see search_peer_systems) carries its own indexing time
        fit_seconds[name] = getattr(system, "fit_seconds", None) or time.perf_counter() - t0
    for system in systems.values():  # warm-up, untimed: lazy model loads are not query latency
        if n_q:
            system.scores(j.texts[0]) if hasattr(system, "scores") else system.search(j.texts[0], depth)
    do_fusion = fusion and "bm25" in systems and "dense" in systems
    weights = [blend_weight] if blend_weight is not None else list(BLEND_GRID)
    names = list(systems) + (["rrf"] + [f"blend@{w}" for w in weights] if do_fusion else [])
    tops = {n: np.full((n_q, depth), -1, dtype=np.int64) for n in names}
    reranks = {n: np.full((n_q, k), -1, dtype=np.int64) for n in names}
    lat = {n: np.zeros(n_q) for n in names}
    indptr, indices = j.qrels.indptr, j.qrels.indices
    for qi, text in enumerate(j.texts):
        judged = indices[indptr[qi] : indptr[qi + 1]]
        base: dict[str, np.ndarray] = {}
        for name, system in systems.items():
            t0 = time.perf_counter()
            if hasattr(system, "scores"):
                s = np.asarray(system.scores(text), dtype=np.float64)
                tops[name][qi] = _top(s, depth)
                base[name] = s
            else:
                ranked = np.asarray(system.search(text, depth), dtype=np.int64)[:depth]
                tops[name][qi, : len(ranked)] = ranked
                s = np.full(len(products), -np.inf)
                s[ranked[ranked >= 0]] = -np.arange((ranked >= 0).sum(), dtype=np.float64)
            lat[name][qi] = time.perf_counter() - t0
            reranks[name][qi] = _rerank(s, judged, k)
        if do_fusion:
            both = lat["bm25"][qi] + lat["dense"][qi]
            t0 = time.perf_counter()
            f = rrf([base["bm25"], base["dense"]])
            tops["rrf"][qi] = _top(f, depth)
            lat["rrf"][qi] = both + time.perf_counter() - t0
            reranks["rrf"][qi] = _rerank(f, judged, k)
            for w in weights:
                t0 = time.perf_counter()
                b = blend(base["bm25"], base["dense"], w)
                tops[f"blend@{w}"][qi] = _top(b, depth)
                lat[f"blend@{w}"][qi] = both + time.perf_counter() - t0
                reranks[f"blend@{w}"][qi] = _rerank(b, judged, k)
        if progress is not None:
            progress(1)
    graded = j.qrels.copy()
    graded.data = np.maximum(graded.data - 1.0, 0).astype(np.float32)
    graded.eliminate_zeros()
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        r: dict[str, Any] = dict(M.search_metrics(tops[name], j.qrels, k=k, recall_k=recall_k, threshold=threshold))
        r[f"rerank_ndcg@{k}"] = M.ndcg(reranks[name], graded, k, gain="exp")
        r["latency_p50_ms"] = float(np.percentile(lat[name], 50) * 1000) if n_q else float("nan")
        r["latency_p99_ms"] = float(np.percentile(lat[name], 99) * 1000) if n_q else float("nan")
        r["n_queries"] = n_q
        r["fit_seconds"] = fit_seconds.get(name, fit_seconds.get("bm25", 0) + fit_seconds.get("dense", 0))
        out[name] = r
    if do_fusion:
        best = max(weights, key=lambda w: out[f"blend@{w}"][f"ndcg@{k}"])
        out["blend"] = {
            **out[f"blend@{best}"],
            "dense_weight": best,
            "tuned_on": "given" if blend_weight is not None else "evaluated split",
        }
        for w in weights:
            del out[f"blend@{w}"]
    return out


def tune_blend(
    products: pd.DataFrame,
    queries: pd.DataFrame,
    qrels: pd.DataFrame,
    bm25: Any,
    dense: Any,
    *,
    k: int = 10,
) -> float:
    """The blend's dense weight with the best NDCG@k on these (training) queries; systems already fitted."""
    res = evaluate_search(products, queries, qrels, {"bm25": _Fitted(bm25), "dense": _Fitted(dense)}, k=k)
    return float(res["blend"]["dense_weight"])


class _Fitted:
    """A fitted scorer whose ``fit`` is a no-op (so it is not re-indexed)."""

    def __init__(self, inner: Any, fit_seconds: float | None = None) -> None:
        self.inner = inner
        self.fit_seconds = fit_seconds

    def scores(self, query: str) -> np.ndarray:
        return self.inner.scores(query)


# ---------------------------------------------------------------------------- systems for the CLI and benchmarks
class EngineSearch:
    """The engine's own search (``shopsense.search.SearchEngine``) as an evaluated system."""

    name = "engine"

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def search(self, query: str, k: int) -> np.ndarray:
        return self.engine.rank([query], k)[0]


def engine_search_system(
    settings: Any,
    products: pd.DataFrame,
    *,
    store: Any = None,
    vectors: np.ndarray | None = None,
    train: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> EngineSearch | None:
    """Build the engine's search over ``products`` (re-ranker trained on ``train`` when given), or
    None while ``shopsense.search`` has no ``SearchEngine``."""
    try:
        from shopsense.search import engine as search_engine
    except ImportError:
        return None
    cls = getattr(search_engine, "SearchEngine", None)
    if cls is None:
        return None
    from shopsense.features.text import TextEncoder

    encoder = TextEncoder(settings.encoder if settings is not None else None)
    eng = cls.build(products, encoder, store=store, vectors=vectors)
    if train is not None:
        eng.fit_reranker(*train)
    return EngineSearch(eng)


def search_peer_systems(
    names: list[str],
    products: pd.DataFrame,
    settings: Any = None,
    *,
    store: Any = None,
    vectors: np.ndarray | None = None,
    train: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> tuple[dict[str, Any], list[str], float | None]:
    """Fitted base peers needed for ``names`` (bm25, dense, rrf, blend), the names to report, and the
    blend's dense weight (tuned on ``train`` when given, else None = tuned on the evaluated split)."""
    from shopsense.evaluation.peers.search import BM25Peer, DensePeer

    systems: dict[str, Any] = {}
    if {"bm25", "rrf", "blend"} & set(names):
        t0 = time.perf_counter()
        systems["bm25"] = _Fitted(BM25Peer().fit(products), time.perf_counter() - t0)
    if {"dense", "rrf", "blend"} & set(names):
        from shopsense.features.text import TextEncoder

        encoder = TextEncoder(settings.encoder if settings is not None else None)
        t0 = time.perf_counter()  # includes encoding the catalog unless vectors were given
        if vectors is None:
            from shopsense.features.embeddings import embed_products

            vectors = embed_products(products, encoder, store)
        systems["dense"] = _Fitted(DensePeer(encoder, vectors).fit(products), time.perf_counter() - t0)
    weight = None
    if "blend" in names and train is not None:
        weight = tune_blend(products, train[0], train[1], systems["bm25"], systems["dense"])
    return systems, names, weight
