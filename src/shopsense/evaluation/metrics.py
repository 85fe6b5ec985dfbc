"""Ranking metrics on top-k index arrays, vectorised with NumPy.

Every metric takes ``topk``: an ``(n, K)`` integer array of item indices, best first, padded with
``-1``; and (for accuracy metrics) ``truth``: an ``(n, n_items)`` sparse matrix whose stored values
are the relevance of each judged item for that row (1 for a leave-one-out target). Rows of ``topk``
and ``truth`` are aligned. Metrics return the mean over rows; ``*_per_row`` variants return the
row values so callers can slice them (e.g. by user history length).

Composable style: ``NDCG(10).calc(topk, truth)`` or the plain functions; :func:`evaluate_topk`
returns a dict of several metrics plus the name of the primary one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

Gain = Literal["binary", "linear", "exp"]


# ---------------------------------------------------------------------------- truth helpers
def truth_from_targets(targets: np.ndarray, n_items: int) -> sp.csr_matrix:
    """One relevant item per row (leave-one-out): row ``i`` has relevance 1 at ``targets[i]``."""
    targets = np.asarray(targets, dtype=np.int64)
    n = len(targets)
    return sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), targets)), shape=(n, n_items))


def truth_from_pairs(
    rows: np.ndarray, items: np.ndarray, relevance: np.ndarray, n_rows: int, n_items: int
) -> sp.csr_matrix:
    """Graded judgments (row, item, relevance) as a CSR matrix; duplicates keep the maximum.

    Relevance 0 cannot be stored in a sparse matrix; it equals "unjudged" for every metric here.
    """
    rows = np.asarray(rows, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    rel = np.asarray(relevance, dtype=np.float32)
    key = rows * n_items + items
    order = np.lexsort((-rel, key))  # per key, the largest relevance first
    key, rel = key[order], rel[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    key, rel = key[first], rel[first]
    return sp.csr_matrix((rel, (key // n_items, key % n_items)), shape=(n_rows, n_items))


def relevance_at(topk: np.ndarray, truth: sp.csr_matrix) -> np.ndarray:
    """``(n, K)`` float array: the relevance in ``truth`` of each recommended item (0 if unjudged or -1)."""
    topk = np.asarray(topk, dtype=np.int64)
    n, k = topk.shape
    if truth.shape[0] != n:
        raise ValueError(f"topk has {n} rows but truth has {truth.shape[0]}")
    t = truth.tocsr()
    t.sum_duplicates()  # canonical: sorted indices per row, so the flat keys below are sorted
    n_items = t.shape[1]
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(t.indptr))
    keys = rows * n_items + t.indices.astype(np.int64)
    query = np.arange(n, dtype=np.int64)[:, None] * n_items + np.where(topk >= 0, topk, 0)
    if not len(keys):
        return np.zeros((n, k))
    pos = np.minimum(np.searchsorted(keys, query.ravel()).reshape(n, k), len(keys) - 1)
    found = (keys[pos] == query) & (topk >= 0)
    return np.where(found, t.data.astype(np.float64)[pos], 0.0)


def _gain(rel: np.ndarray, gain: Gain) -> np.ndarray:
    if gain == "binary":
        return (rel > 0).astype(np.float64)
    if gain == "linear":
        return rel.astype(np.float64)
    if gain == "exp":
        return np.power(2.0, rel) - 1.0
    raise ValueError(f"unknown gain {gain!r}; valid: binary, linear, exp")


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _n_relevant(truth: sp.csr_matrix, threshold: float) -> np.ndarray:
    t = truth.tocsr()
    rows = np.repeat(np.arange(t.shape[0]), np.diff(t.indptr))
    return np.bincount(rows, weights=(t.data >= threshold) & (t.data > 0), minlength=t.shape[0])


def _mean(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(values.mean()) if len(values) else float("nan")


# ---------------------------------------------------------------------------- accuracy, per row
def hit_rate_per_row(topk: np.ndarray, truth: sp.csr_matrix, k: int, threshold: float = 0.0) -> np.ndarray:
    """1 where at least one relevant item (relevance > threshold; > 0 always) is in the top k."""
    rel = relevance_at(topk[:, :k], truth)
    return np.asarray(((rel > threshold) & (rel > 0)).any(axis=1), dtype=np.float64)


def recall_per_row(topk: np.ndarray, truth: sp.csr_matrix, k: int, threshold: float = 0.0) -> np.ndarray:
    """Share of the row's relevant items (relevance >= threshold, and > 0) found in the top k; NaN when none."""
    rel = relevance_at(topk[:, :k], truth)
    found = ((rel >= threshold) & (rel > 0)).sum(axis=1)
    total = _n_relevant(truth, threshold)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, found / np.maximum(total, 1), np.nan)


def ndcg_per_row(topk: np.ndarray, truth: sp.csr_matrix, k: int, gain: Gain = "binary") -> np.ndarray:
    """DCG@k / ideal DCG@k; the ideal ranks the row's judged items by gain. NaN when the ideal is 0."""
    rel = relevance_at(topk[:, :k], truth)
    kk = rel.shape[1]
    dcg = (_gain(rel, gain) * _discounts(kk)).sum(axis=1)
    t = truth.tocsr()
    n = t.shape[0]
    counts = np.diff(t.indptr)
    width = int(min(k, counts.max() if len(counts) else 0))
    ideal = np.zeros((n, max(width, 1)))
    if width:
        # top-`width` gains per row, without a Python loop: sort (row, -gain) lexicographically
        g = _gain(t.data.astype(np.float64), gain)
        rows = np.repeat(np.arange(n), counts)
        order = np.lexsort((-g, rows))
        g, rows = g[order], rows[order]
        rank = np.arange(len(g)) - t.indptr[rows]
        keep = rank < width
        ideal[rows[keep], rank[keep]] = g[keep]
    idcg = (ideal * _discounts(ideal.shape[1])).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(idcg > 0, dcg / np.where(idcg > 0, idcg, 1), np.nan)


def reciprocal_rank_per_row(
    topk: np.ndarray, truth: sp.csr_matrix, k: int | None = None, threshold: float = 0.0
) -> np.ndarray:
    """1 / rank of the first relevant item (relevance >= threshold, and > 0) within the top k, else 0."""
    rel = relevance_at(topk if k is None else topk[:, :k], truth)
    good = (rel >= threshold) & (rel > 0)
    first = good.argmax(axis=1)
    return np.where(good.any(axis=1), 1.0 / (first + 1), 0.0)


def average_precision_per_row(topk: np.ndarray, truth: sp.csr_matrix, k: int) -> np.ndarray:
    """AP@k = sum over relevant positions of precision@position, / min(#relevant, k); NaN when none."""
    rel = relevance_at(topk[:, :k], truth) > 0
    kk = rel.shape[1]
    prec = np.cumsum(rel, axis=1) / np.arange(1, kk + 1)
    total = np.minimum(_n_relevant(truth, 0.0), k)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, (prec * rel).sum(axis=1) / np.maximum(total, 1), np.nan)


# ---------------------------------------------------------------------------- accuracy, means
def hit_rate(topk: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """HR@k: share of rows with a relevant item in the top k."""
    return _mean(hit_rate_per_row(topk, truth, k))


def recall(topk: np.ndarray, truth: sp.csr_matrix, k: int, threshold: float = 0.0) -> float:
    """Recall@k over rows that have at least one relevant item."""
    return _mean(recall_per_row(topk, truth, k, threshold))


def ndcg(topk: np.ndarray, truth: sp.csr_matrix, k: int, gain: Gain = "binary") -> float:
    """NDCG@k over rows with a positive ideal DCG."""
    return _mean(ndcg_per_row(topk, truth, k, gain))


def mrr(topk: np.ndarray, truth: sp.csr_matrix, k: int | None = None, threshold: float = 0.0) -> float:
    """Mean reciprocal rank of the first relevant item (0 for rows without one in the list)."""
    return _mean(reciprocal_rank_per_row(topk, truth, k, threshold))


def map_at_k(topk: np.ndarray, truth: sp.csr_matrix, k: int) -> float:
    """MAP@k over rows with at least one relevant item."""
    return _mean(average_precision_per_row(topk, truth, k))


# ---------------------------------------------------------------------------- beyond accuracy
def coverage(topk: np.ndarray, n_items: int, k: int) -> float:
    """Catalog coverage@k: share of all items that appear in at least one top-k list."""
    ids = np.asarray(topk)[:, :k]
    return float(len(np.unique(ids[ids >= 0])) / n_items) if n_items else 0.0


def intra_list_diversity_per_row(topk: np.ndarray, item_vectors: np.ndarray, k: int, batch: int = 4096) -> np.ndarray:
    """Mean pairwise cosine distance (1 - cos) of the items in each top-k list; NaN for lists under 2 items.

    Uses sum_{i != j} v_i.v_j = |sum v|^2 - sum |v|^2 on unit vectors, so it is O(k d) per list.
    """
    v: np.ndarray = np.asarray(item_vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    v = v / np.where(norms > 0, norms, 1)
    ids = np.asarray(topk)[:, :k]
    out = np.empty(len(ids))
    for s in range(0, len(ids), batch):
        b = ids[s : s + batch]
        valid = b >= 0
        vec = v[np.where(valid, b, 0)] * valid[..., None]  # (b, k, d)
        tot = vec.sum(axis=1)
        m = valid.sum(axis=1).astype(np.float64)
        sq = (vec * vec).sum(axis=(1, 2))
        pair_sim = ((tot * tot).sum(axis=1) - sq) / np.maximum(m * (m - 1), 1)
        out[s : s + batch] = np.where(m >= 2, 1.0 - pair_sim, np.nan)
    return out


def intra_list_diversity(topk: np.ndarray, item_vectors: np.ndarray, k: int) -> float:
    """Mean over lists of :func:`intra_list_diversity_per_row`."""
    return _mean(intra_list_diversity_per_row(topk, item_vectors, k))


def novelty(topk: np.ndarray, item_popularity: np.ndarray, n_users: int, k: int) -> float:
    """Mean self-information -log2(p_i) of recommended items, p_i = popularity_i / n_users.

    Items never seen in training count as popularity 1 (the rarest possible), so the value is finite.
    """
    ids = np.asarray(topk)[:, :k]
    ids = ids[ids >= 0]
    if not len(ids) or n_users <= 0:
        return float("nan")
    p = np.maximum(np.asarray(item_popularity, dtype=np.float64)[ids], 1.0) / n_users
    return float(np.mean(-np.log2(np.minimum(p, 1.0))))


def popularity_bias(topk: np.ndarray, item_popularity: np.ndarray, k: int) -> float:
    """Average recommendation popularity (ARP): mean training popularity of recommended items,
    divided by the mean popularity of the catalog (1.0 = no bias, higher = favours popular items)."""
    pop = np.asarray(item_popularity, dtype=np.float64)
    ids = np.asarray(topk)[:, :k]
    ids = ids[ids >= 0]
    if not len(ids) or pop.mean() == 0:
        return float("nan")
    return float(pop[ids].mean() / pop.mean())


# ---------------------------------------------------------------------------- composable objects
@dataclass(frozen=True)
class HitRate:
    k: int
    name = "hr"

    def calc(self, topk: np.ndarray, truth: sp.csr_matrix) -> float:
        return hit_rate(topk, truth, self.k)


@dataclass(frozen=True)
class Recall:
    k: int
    threshold: float = 0.0
    name = "recall"

    def calc(self, topk: np.ndarray, truth: sp.csr_matrix) -> float:
        return recall(topk, truth, self.k, self.threshold)


@dataclass(frozen=True)
class NDCG:
    k: int
    gain: Gain = "binary"
    name = "ndcg"

    def calc(self, topk: np.ndarray, truth: sp.csr_matrix) -> float:
        return ndcg(topk, truth, self.k, self.gain)


@dataclass(frozen=True)
class MRR:
    k: int | None = None
    threshold: float = 0.0
    name = "mrr"

    def calc(self, topk: np.ndarray, truth: sp.csr_matrix) -> float:
        return mrr(topk, truth, self.k, self.threshold)


@dataclass(frozen=True)
class MAP:
    k: int
    name = "map"

    def calc(self, topk: np.ndarray, truth: sp.csr_matrix) -> float:
        return map_at_k(topk, truth, self.k)


def evaluate_topk(
    topk: np.ndarray,
    truth: sp.csr_matrix,
    ks: Sequence[int] = (10, 20),
    *,
    n_items: int | None = None,
    primary: str | None = None,
) -> dict[str, float | str]:
    """HR, NDCG, recall and MAP at each k, MRR, and coverage@k when ``n_items`` is given."""
    out: dict[str, float | str] = {}
    for k in ks:
        out[f"hr@{k}"] = hit_rate(topk, truth, k)
        out[f"ndcg@{k}"] = ndcg(topk, truth, k)
        out[f"recall@{k}"] = recall(topk, truth, k)
        out[f"map@{k}"] = map_at_k(topk, truth, k)
        if n_items:
            out[f"coverage@{k}"] = coverage(topk, n_items, k)
    out["mrr"] = mrr(topk, truth)
    out["primary"] = primary or f"ndcg@{min(ks)}"
    return out


# ---------------------------------------------------------------------------- search
def search_metrics(
    ranked: np.ndarray,
    qrels: sp.csr_matrix,
    *,
    k: int = 10,
    recall_k: int = 100,
    threshold: float = 2.5,
    gain_offset: float = 1.0,
) -> dict[str, float | str]:
    """Search quality over judged labels (rows = queries, stored values = raw relevance grades).

    NDCG@k uses exponential gain 2^g - 1 with g = relevance - ``gain_offset`` (Home Depot: 1..3 ->
    0..2); unjudged items gain 0 and the ideal DCG comes from the query's judged items. Recall@recall_k
    and MRR count items with relevance >= ``threshold`` as relevant.
    """
    graded = qrels.tocsr().copy()
    graded.data = np.maximum(graded.data - gain_offset, 0).astype(np.float32)
    # g = 0 must stay "judged but worthless"; eliminate it so it cannot count as relevant anywhere.
    graded.eliminate_zeros()
    return {
        f"ndcg@{k}": ndcg(ranked, graded, k, gain="exp"),
        f"recall@{recall_k}": recall(ranked, qrels, recall_k, threshold),
        "mrr": mrr(ranked, qrels, None, threshold),
        "primary": f"ndcg@{k}",
    }
