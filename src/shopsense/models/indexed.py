"""Item vectors that propose without scoring every item: catalog moments plus, for large catalogs, an index.

Models that score by an inner product (user vector x item vectors: the content profile, the sequential
transformer's output table) serve a request from here. The scores' mean and variance over the whole
catalog follow exactly from the vectors' mean and covariance (``u @ mean``, ``u @ cov @ u``), so fusion
standardises as if every item had been scored; the top items come from an HNSW index
(:class:`~shopsense.index.vector.VectorIndex`) once the catalog has ``ann_min_items`` items, and from one
exact matrix-vector product below that (as cheap as the index there, and exact).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any, Self

import numpy as np

from shopsense.index.vector import VectorIndex
from shopsense.models.base import Histories, Model, Proposal, member_of


def mips_items(vectors: np.ndarray) -> np.ndarray:
    """Vectors to index for maximum inner product search.

    HNSW finds near neighbours; with vectors of different lengths (the sequential model's item
    table) the largest inner product is not the nearest, and the graph walk missed many: recall@50
    0.84 on the 50k-product service set. Scaled by the largest norm M and given one more coordinate
    ``sqrt(1 - |v|^2 / M^2)``, every vector has length 1, and for a unit query padded with 0 the
    inner product is ``u . v / M``: same order, now a nearest-neighbour problem (Bachrach et al.,
    RecSys 2014). Vectors of (nearly) one length, such as text vectors, are returned unchanged."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1)
    top = float(norms.max()) if len(norms) else 0.0
    if not len(v) or top <= 0 or float(norms.min()) >= top * (1 - 1e-3):
        return v
    extra = np.sqrt(np.clip(1.0 - (norms / top) ** 2, 0.0, None))
    return np.hstack([v / top, extra[:, None]]).astype(np.float32)


class IndexedVectors:
    """(n_items, d) vectors with their moments and an optional HNSW index."""

    def __init__(self, vectors: np.ndarray, ann_min_items: int, index: VectorIndex | None = None) -> None:
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.ann_min_items = int(ann_min_items)
        self.index = index
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean vector and covariance of the item vectors (computed once, for large catalogs only)."""
        if self._moments is None:
            v = self.vectors.astype(np.float64)
            mean = v.mean(axis=0) if len(v) else np.zeros(v.shape[1])
            self._moments = (mean, (v.T @ v) / max(len(v), 1) - np.outer(mean, mean))
        return self._moments

    @property
    def large(self) -> bool:
        return len(self.vectors) >= self.ann_min_items

    def build_index(self) -> VectorIndex | None:
        """The HNSW index of a large catalog (built once; None for small ones)."""
        if self.index is None and self.large:
            self.index = VectorIndex(exact_threshold=self.ann_min_items, ef_construction=100).build(
                mips_items(self.vectors)
            )
        return self.index

    @property
    def _augmented(self) -> bool:
        """Whether the index holds the vectors with the extra MIPS coordinate (see :func:`mips_items`)."""
        return self.index is not None and self.index.dim == self.vectors.shape[1] + 1

    def warm(self) -> None:
        """Build or load the index and the moments now (a large catalog's first request would pay)."""
        if self.build_index() is not None:
            _ = self.moments

    def propose(self, user: np.ndarray, n: int, excluded: np.ndarray) -> Proposal:
        """The ``n`` items with the largest ``vectors @ user`` (never an excluded one)."""
        user = np.asarray(user, dtype=np.float32)
        index = self.build_index()
        if index is None:
            return Proposal.from_row(self.vectors @ user, n, excluded)
        u = user.astype(np.float64)
        mu, cov = self.moments
        mean, std = float(u @ mu), float(np.sqrt(max(u @ cov @ u, 0.0)))
        if not np.any(user):  # an empty profile scores every item 0: nothing stands out
            return Proposal(np.zeros(0, np.int64), np.zeros(0, np.float32), mean, std, self._scorer(user))
        k = min(n + len(excluded), len(self.vectors))
        if self._augmented:  # the graph ranks by the transformed vectors: score the hits exactly
            ids, _ = index.search_positions(np.append(user / np.linalg.norm(user), np.float32(0.0)), k)
            sims = self.vectors[ids] @ user
            order = np.argsort(-sims, kind="stable")
            ids, sims = ids[order], sims[order]
        else:
            ids, sims = index.search_positions(user, k)
        keep = ~member_of(ids, excluded)
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


class VectorModel(Model):
    """A model that scores ``user_vectors(h) @ item_vectors().T``. Its proposals come from
    :class:`IndexedVectors`, whose index is built at ``save`` (once, not per request) and saved beside
    the model's arrays. Subclasses implement the two vector methods and have ``ann_min_items`` in their
    config."""

    def __init__(self, config: Any = None, **overrides: Any) -> None:
        super().__init__(config, **overrides)
        self._indexed: IndexedVectors | None = None
        self._ann_folder: Path | None = None  # a saved index, read on first use

    @abstractmethod
    def user_vectors(self, histories: Histories) -> np.ndarray:
        """(n, d) one vector per history."""

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """(n_items, d) the vectors items are scored by."""

    def _forget_index(self) -> None:
        """The item vectors changed: the moments and any index are stale."""
        self._indexed, self._ann_folder = None, None

    def indexed(self) -> IndexedVectors:
        """The item vectors with their moments and (large catalogs) an HNSW index."""
        if self._indexed is None:
            index = IndexedVectors.load_index(self._ann_folder) if self._ann_folder else None
            self._indexed = IndexedVectors(self.item_vectors(), self.config.ann_min_items, index)  # type: ignore[attr-defined]
        return self._indexed

    @property
    def ann(self) -> VectorIndex | None:
        """The HNSW index over the item vectors (large catalogs only)."""
        return self.indexed().build_index()

    def _score(self, histories: Histories) -> np.ndarray:
        return self.user_vectors(histories) @ self.item_vectors().T

    def _propose(self, histories: Histories, n: int, excluded: list[np.ndarray]) -> list[Proposal]:
        iv = self.indexed()
        if not iv.large:  # small catalog: one exact matrix product for the batch
            return super()._propose(histories, n, excluded)
        return [iv.propose(u, n, ex) for u, ex in zip(self.user_vectors(histories), excluded, strict=True)]

    def save(self, path: str | Path) -> Path:
        """The model's arrays, plus the HNSW index of a large catalog in ``ann/``."""
        folder = super().save(path)
        self.indexed().save(folder / "ann")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Self:
        model = super().load(path)
        model._ann_folder = Path(path) / "ann"
        return model
