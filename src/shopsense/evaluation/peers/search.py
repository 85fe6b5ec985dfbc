"""Search peers: bm25s BM25, dense all-MiniLM-L6-v2, their reciprocal rank fusion and a min-max blend.

Each peer scores ALL products for a query (``scores(query) -> (n_products,)``; -inf = not retrieved).
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.topk import top_k


def _titles(products: pd.DataFrame) -> list[str]:
    return [str(t) if isinstance(t, str) else "" for t in products[C.TITLE].tolist()]


class BM25Peer:
    """``bm25s`` (Lucene BM25, k1=1.5, b=0.75) over product titles, English stop words and Snowball stemming."""

    name = "bm25"

    def __init__(self, k1: float = 1.5, b: float = 0.75) -> None:
        self.k1, self.b = k1, b
        self.retriever: Any = None
        self.stemmer: Any = None

    def fit(self, products: pd.DataFrame) -> Self:
        import bm25s
        import Stemmer

        self.stemmer = Stemmer.Stemmer("english")
        tokens = bm25s.tokenize(_titles(products), stopwords="en", stemmer=self.stemmer, show_progress=False)
        self.retriever = bm25s.BM25(k1=self.k1, b=self.b)
        self.retriever.index(tokens, show_progress=False)
        return self

    def scores(self, query: str) -> np.ndarray:
        import bm25s

        q = bm25s.tokenize(query, stopwords="en", stemmer=self.stemmer, return_ids=False, show_progress=False)[0]
        vocab = self.retriever.vocab_dict
        q = [t for t in q if t in vocab]
        if not q:
            return np.full(self.retriever.scores["num_docs"], -np.inf, dtype=np.float32)
        s = np.asarray(self.retriever.get_scores(q), dtype=np.float32)
        s[s <= 0] = -np.inf  # no query term: not retrieved
        return s


class DensePeer:
    """Cosine similarity of all-MiniLM-L6-v2 vectors (the engine's ``TextEncoder``) of query and title.

    ``vectors`` (row-aligned with the products) may be given to skip encoding the catalog.
    """

    name = "dense"

    def __init__(self, encoder: Any = None, vectors: np.ndarray | None = None) -> None:
        self.encoder = encoder
        self.vectors = vectors

    def fit(self, products: pd.DataFrame) -> Self:
        if self.encoder is None:
            from shopsense.features.text import TextEncoder

            self.encoder = TextEncoder()
        if self.vectors is None:
            self.vectors = self.encoder.encode(_titles(products))
        self.vectors = np.ascontiguousarray(self.vectors, dtype=np.float32)
        return self

    def scores(self, query: str) -> np.ndarray:
        q = self.encoder.encode_queries([query])[0]
        return self.vectors @ q


def _minmax(x: np.ndarray) -> np.ndarray:
    finite = np.isfinite(x)
    if not finite.any():
        return np.zeros_like(x)
    lo, hi = x[finite].min(), x[finite].max()
    out = (x - lo) / (hi - lo) if hi > lo else np.where(finite, 1.0, 0.0).astype(x.dtype)
    return np.where(finite, out, 0.0)


def rrf(score_lists: list[np.ndarray], k: int = 60, depth: int = 1000) -> np.ndarray:
    """Reciprocal rank fusion: sum over systems of 1 / (k + rank) for each system's top ``depth`` items."""
    n = len(score_lists[0])
    fused = np.zeros(n, dtype=np.float64)
    for s in score_lists:
        order, _ = top_k(s, depth)
        fused[order] += 1.0 / (k + np.arange(1, len(order) + 1))
    fused[fused == 0] = -np.inf
    return fused


def blend(bm25: np.ndarray, dense: np.ndarray, dense_weight: float) -> np.ndarray:
    """Min-max normalised scores, ``dense_weight * dense + (1 - dense_weight) * bm25``."""
    return dense_weight * _minmax(dense) + (1.0 - dense_weight) * _minmax(bm25)


#: weights of the dense side tried when tuning the blend
BLEND_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
