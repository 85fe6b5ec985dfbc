"""Item vectors that propose without scoring every item: catalog moments plus, for large catalogs, an index.

Models that score by an inner product (user vector x item vectors: the content profile, the sequential
transformer's output table) serve a request from here. The scores' mean and variance over the whole
catalog follow exactly from the vectors' mean and covariance (``u @ mean``, ``u @ cov @ u``), so fusion
standardises as if every item had been scored; the top items come from an HNSW index
(:class:`~shopsense.index.vector.VectorIndex`) once the catalog has ``ann_min_items`` items, and from one
exact matrix-vector product below that (as cheap as the index there, and exact).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from shopsense.index.vector import VectorIndex
from shopsense.models.base import Proposal


class IndexedVectors:
    """(n_items, d) vectors with their moments and an optional HNSW index."""

    def __init__(self, vectors: np.ndarray, ann_min_items: int, index: VectorIndex | None = None) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ann_min_items = int(ann_min_items)
        self.index = index
        v = self.vectors.astype(np.float64)
        self.mean = v.mean(axis=0) if len(v) else np.zeros(v.shape[1])
        self.cov = (v.T @ v) / max(len(v), 1) - np.outer(self.mean, self.mean)

    @property
    def large(self) -> bool:
        return len(self.vectors) >= self.ann_min_items

    def build_index(self) -> VectorIndex | None:
        """The HNSW index of a large catalog (built once; None for small ones)."""
        if self.index is None and self.large:
            self.index = VectorIndex(exact_threshold=self.ann_min_items, ef_construction=100).build(self.vectors)
        return self.index

    def propose(self, user: np.ndarray, n: int, excluded: np.ndarray) -> Proposal:
        """The ``n`` items with the largest ``vectors @ user`` (never an excluded one)."""
        user = np.asarray(user, dtype=np.float32)
        index = self.build_index()
        if index is None:
            return Proposal.from_row(self.vectors @ user, n, excluded)
        u = user.astype(np.float64)
        mean, std = float(u @ self.mean), float(np.sqrt(max(u @ self.cov @ u, 0.0)))
        if not np.any(user):  # an empty profile scores every item 0: nothing stands out
            return Proposal(np.zeros(0, np.int64), np.zeros(0, np.float32), mean, std, self._scorer(user))
        ids, sims = index.search(user, min(n + len(excluded), len(self.vectors)))
        ids, sims = ids[0].astype(np.int64), sims[0]
        keep = ~np.isin(ids, excluded) if len(excluded) else np.ones(len(ids), bool)
        return Proposal(ids[keep][:n], sims[keep][:n], mean, std, self._scorer(user))

    def _scorer(self, user: np.ndarray):  # type: ignore[no-untyped-def]
        vectors = self.vectors

        def score_of(items: np.ndarray) -> np.ndarray:
            return vectors[np.asarray(items, dtype=np.int64)] @ user

        return score_of

    def save(self, folder: Path) -> None:
        """Write the index (when there is one) to ``folder``; the vectors belong to the model."""
        index = self.build_index()
        if index is not None:
            index.save(folder)

    @staticmethod
    def load_index(folder: Path) -> VectorIndex | None:
        return VectorIndex.load(folder) if (folder / "params.json").exists() else None
