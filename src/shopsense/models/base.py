"""One protocol for every user-interest model: ``fit`` / ``score`` / ``recommend`` / ``save`` / ``load``.

Models score *histories* (each user's latest items, oldest first) instead of user ids, so a request
can pass the live sequence read from the store a moment ago: a new event changes the next list
without retraining. Public methods validate, then call the private ``_fit`` / ``_score``.

Artifacts are a folder of plain files: ``params.json`` (model name, format version, config) and one
``.npy`` per array returned by ``_state`` (no pickle).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import ModelConfig
from shopsense.exceptions import ConfigError, NotFittedError
from shopsense.topk import top_k

FORMAT_VERSION = 1


@dataclass
class Histories:
    """Per-user context, oldest first: item indices, event weights and timestamps (same lengths)."""

    items: list[np.ndarray]
    weights: list[np.ndarray] | None = None
    timestamps: list[np.ndarray] | None = None
    #: per-user (m, d) vectors of the user's search queries, oldest first (None: no queries)
    queries: list[np.ndarray | None] | None = None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, rows: slice | np.ndarray | list[int]) -> Histories:
        idx = range(len(self))[rows] if isinstance(rows, slice) else [int(r) for r in rows]

        def pick(xs: list[np.ndarray] | None) -> list[np.ndarray] | None:
            return None if xs is None else [xs[i] for i in idx]

        queries = None if self.queries is None else [self.queries[i] for i in idx]
        return Histories([self.items[i] for i in idx], pick(self.weights), pick(self.timestamps), queries)

    def weights_of(self, i: int) -> np.ndarray:
        return np.ones(len(self.items[i]), np.float32) if self.weights is None else self.weights[i]

    def matrix(self, n_items: int, *, binary: bool = True) -> sp.csr_matrix:
        """Users x items matrix of these histories (binary, or summed event weights)."""
        lengths = np.fromiter((len(h) for h in self.items), dtype=np.int64, count=len(self.items))
        rows = np.repeat(np.arange(len(self.items)), lengths)
        cols = np.concatenate(self.items).astype(np.int64) if lengths.sum() else np.zeros(0, np.int64)
        if binary:
            data = np.ones(len(cols), np.float32)
        else:
            data = (
                np.concatenate([self.weights_of(i) for i in range(len(self))]).astype(np.float32) if len(cols) else data
            )
        m = sp.csr_matrix((data, (rows, cols)), shape=(len(self.items), n_items), dtype=np.float32)
        m.sum_duplicates()
        if binary and m.nnz:
            m.data[:] = 1.0
        return m

    @classmethod
    def from_dataset(cls, ds: Dataset, users: np.ndarray | None = None) -> Histories:
        """Histories of ``users`` (default: all) from the dataset's chronological interactions."""
        df = ds.interactions
        u = df[C.USER_IDX].to_numpy()
        order = np.argsort(u, kind="stable")
        bounds = np.searchsorted(u[order], np.arange(ds.n_users + 1))
        it = df[C.ITEM_IDX].to_numpy()[order]
        w = df[C.WEIGHT].to_numpy(dtype=np.float32)[order]
        ts = df[C.TIMESTAMP].to_numpy(dtype=np.float64)[order]
        sel = np.arange(ds.n_users) if users is None else np.asarray(users, dtype=np.int64)
        sl = [slice(bounds[x], bounds[x + 1]) for x in sel]
        return cls([it[s] for s in sl], [w[s] for s in sl], [ts[s] for s in sl])


@dataclass
class Proposal:
    """One source's answer for one history without a catalog-wide result kept around: its best items,
    a way to score any other item, and the mean and standard deviation of its scores over the whole
    catalog (what fusion standardises with). Serving builds proposals cheaply (sparse rows, a vector
    index); offline they come from dense score rows (:meth:`from_row`), so both rank alike."""

    items: np.ndarray  # best first; excluded items left out
    scores: np.ndarray
    mean: float
    std: float
    score_of: Callable[[np.ndarray], np.ndarray]

    @classmethod
    def from_row(cls, row: np.ndarray, n: int, excluded: np.ndarray | None = None) -> Proposal:
        """The proposal of a dense score row (its moments are exact)."""
        row = np.asarray(row, dtype=np.float32)
        finite = np.isfinite(row)
        vals = row if finite.all() else row[finite]
        mean, std = (float(vals.mean()), float(vals.std())) if len(vals) else (0.0, 0.0)
        cut = row
        if excluded is not None and len(excluded):  # masked in a copy: score_of still sees the real row
            cut = row.copy()
            cut[np.asarray(excluded, np.int64)] = -np.inf
        ids, top = top_k(cut, n)
        return cls(ids, top, mean, std, lambda items: row[items])

    def z(self, items: np.ndarray) -> np.ndarray:
        """Standardised scores of ``items`` (as :func:`shopsense.ranking.pipeline.standardise` over the row)."""
        return (self.score_of(items) - self.mean) / (self.std + 1e-6)


class Model(ABC):
    """Base of every model. Subclasses set ``name`` and ``config_class`` and implement the private hooks."""

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]]

    def __init__(self, config: ModelConfig | dict[str, Any] | None = None, **overrides: Any) -> None:
        if config is None:
            config = self.config_class(**overrides)
        elif isinstance(config, dict):
            config = self.config_class(**{**config, **overrides})
        elif not isinstance(config, self.config_class):
            raise ConfigError(f"{self.name}: config must be {self.config_class.__name__}, not {type(config).__name__}")
        elif overrides:
            config = config.model_copy(update=overrides)
        self.config = config
        self.n_items = 0
        self.fitted = False

    # ------------------------------------------------------------------ public API
    def fit(self, ds: Dataset, *, item_vectors: np.ndarray | None = None) -> Self:
        """Learn from the dataset's interactions; ``item_vectors`` (n_items, d) for content-aware models."""
        if item_vectors is not None and len(item_vectors) != ds.n_items:
            raise ValueError(f"item_vectors has {len(item_vectors)} rows, dataset has {ds.n_items} items")
        self.n_items = ds.n_items
        self._fit(ds, item_vectors)
        self.fitted = True
        return self

    def score(self, histories: Histories) -> np.ndarray:
        """(n_users, n_items) float32 scores; higher is better. Unknown items in histories are ignored."""
        self._check_fitted()
        histories = self._clean(histories)
        out = np.asarray(self._score(histories), dtype=np.float32)
        if out.shape != (len(histories), self.n_items):
            raise RuntimeError(f"{self.name}: _score returned {out.shape}, expected {(len(histories), self.n_items)}")
        return out

    def propose(self, histories: Histories, n: int, excluded: list[np.ndarray] | None = None) -> list[Proposal]:
        """Per history, the ``n`` best items (never those in ``excluded[r]``) and what fusion needs to
        standardise any item's score, without keeping a dense catalog-wide result (see :class:`Proposal`)."""
        self._check_fitted()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if excluded is not None and len(excluded) != len(histories):
            raise ValueError(f"{len(excluded)} exclusion lists for {len(histories)} histories")
        return self._propose(self._clean(histories), n, excluded or [np.zeros(0, np.int64)] * len(histories))

    def _propose(self, histories: Histories, n: int, excluded: list[np.ndarray]) -> list[Proposal]:
        """Default: score the catalog densely (models with a cheaper way override this)."""
        scores = np.asarray(self._score(histories), dtype=np.float32)
        return [Proposal.from_row(row, n, ex) for row, ex in zip(scores, excluded, strict=True)]

    def _clean(self, histories: Histories) -> Histories:
        """Histories as int64 arrays with items unknown to the model dropped (weights and times alike)."""
        clean = [np.asarray(h, dtype=np.int64) for h in histories.items]
        keep = [(h >= 0) & (h < self.n_items) for h in clean]
        if not all(k.all() for k in keep):
            histories = Histories(
                [h[k] for h, k in zip(clean, keep, strict=True)],
                None if histories.weights is None else [w[k] for w, k in zip(histories.weights, keep, strict=True)],
                None
                if histories.timestamps is None
                else [t[k] for t, k in zip(histories.timestamps, keep, strict=True)],
                histories.queries,
            )
        else:
            histories = Histories(clean, histories.weights, histories.timestamps, histories.queries)
        return histories

    def recommend(
        self, histories: Histories, k: int, *, exclude: sp.csr_matrix | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k item indices and scores per user, best first (-1 / -inf padded); ``exclude`` rows are never returned."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        scores = self.score(histories)
        return top_k(scores, k, exclude=exclude)

    def save(self, path: str | Path) -> Path:
        """Write the model to a folder of plain files (params.json + .npy arrays)."""
        self._check_fitted()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        state = self._state()
        for key, arr in state.items():
            np.save(folder / f"{key}.npy", np.asarray(arr), allow_pickle=False)
        params = {
            "model": self.name,
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(mode="json"),
            "n_items": self.n_items,
            "arrays": sorted(state),
            "extra": self._extra(),
        }
        (folder / "params.json").write_text(json.dumps(params, indent=1), encoding="utf-8")
        return folder

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a folder written by :meth:`save` (arrays memory-mapped where possible)."""
        folder = Path(path)
        params = json.loads((folder / "params.json").read_text(encoding="utf-8"))
        if params.get("model") != cls.name:
            raise ConfigError(f"{folder} holds a {params.get('model')!r} model, not {cls.name!r}")
        if params.get("format_version") != FORMAT_VERSION:
            raise ConfigError(f"{folder}: format version {params.get('format_version')}, expected {FORMAT_VERSION}")
        model = cls(params["config"])
        model.n_items = int(params["n_items"])
        state = {key: np.load(folder / f"{key}.npy", allow_pickle=False) for key in params["arrays"]}
        model._set_state(state, params.get("extra") or {})
        model.fitted = True
        return model

    # ------------------------------------------------------------------ hooks
    @abstractmethod
    def _fit(self, ds: Dataset, item_vectors: np.ndarray | None) -> None: ...

    @abstractmethod
    def _score(self, histories: Histories) -> np.ndarray: ...

    @abstractmethod
    def _state(self) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def _set_state(self, state: dict[str, np.ndarray], extra: dict[str, Any]) -> None: ...

    def _extra(self) -> dict[str, Any]:
        """JSON-able values saved beside the arrays."""
        return {}

    def _check_fitted(self) -> None:
        if not self.fitted:
            raise NotFittedError(f"{self.name} model is not fitted: call fit() or load() first")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.config!r})"


def member_of(values: np.ndarray, members: np.ndarray) -> np.ndarray:
    """Boolean mask of ``values`` found in ``members`` (as ``np.isin``). A binary search in the sorted
    members: at a request's sizes (tens to hundreds of ids) about 7x faster than ``np.isin``."""
    values = np.asarray(values)
    if not len(values) or not len(members):
        return np.zeros(len(values), bool)
    ms = np.sort(np.asarray(members))
    pos = np.searchsorted(ms, values)
    pos[pos == len(ms)] = 0
    return ms[pos] == values
