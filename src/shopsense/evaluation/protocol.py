"""The offline recommendation protocol: one model interface and full-ranking leave-one-out evaluation.

Every recommender that is evaluated offline (the engine's pipeline and every peer) implements
:class:`Recommender`. :func:`evaluate_recommender` fits it on the training part of a
:class:`~shopsense.data.splits.LeaveOneOut` split and ranks **all** items for every evaluated user,
in memory-bounded user batches, masking every item of the user's training history, a test item
that repeats an earlier one included: that user is then a miss for every model, and the result says
how many such users there are (``repeated_targets``; see ``BENCHMARKS.md``).

Protocol 1 (before 2026-12-02) left a repeated target unmasked, which let every model hit it
(50 users on Scientific, about +0.004 NDCG@10 to every model); ``mask_repeated=False`` reproduces
it (published numbers computed that way, e.g. S3-Rec's PopRec on Beauty).
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections.abc import Sequence
from typing import Any, Literal, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.splits import LeaveOneOut
from shopsense.evaluation import metrics as M

Stage = Literal["test", "valid"]

#: slice name -> description, in report order
SLICES = {
    "users_hist<=5": "users with at most 5 training interactions",
    "users_hist6-20": "users with 6 to 20 training interactions",
    "users_hist>20": "users with more than 20 training interactions",
    "targets_pop<=5": "targets with at most 5 training interactions (long tail / cold)",
    "targets_pop>5": "targets with more than 5 training interactions",
}


@runtime_checkable
class Recommender(Protocol):
    """What offline evaluation needs from a recommender.

    ``recommend_batch`` returns a ``(len(user_idx), k)`` int array of item indices, best first,
    padded with -1, and never returns an item stored in the matching row of ``exclude``
    (a ``(len(user_idx), n_items)`` CSR matrix).
    """

    name: str

    def fit(self, train: Dataset) -> Self: ...

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray: ...


class _PeakRss:
    """Samples the process resident set size in a thread: the peak above the level at start."""

    def __init__(self, interval: float = 0.05) -> None:
        self.interval = interval
        self.start_bytes = self._rss()
        self.peak_bytes = self.start_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _rss() -> int:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):  # not Linux: fall back to the lifetime peak
            import resource

            return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_bytes = max(self.peak_bytes, self._rss())

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_bytes = max(self.peak_bytes, self._rss())


def _targets(split: LeaveOneOut, stage: Stage) -> tuple[Dataset, pd.DataFrame]:
    if stage == "test":
        return split.train_full, split.test
    if stage == "valid":
        return split.train, split.valid
    raise ValueError(f"unknown stage {stage!r}; valid: test, valid")


#: the protocol's version in every result: 2 masks a repeated target (see the module docstring)
PROTOCOL = 2


def _exclusions(
    history: sp.csr_matrix, users: np.ndarray, targets: np.ndarray, mask_repeated: bool = True
) -> sp.csr_matrix:
    """Training items of each user as a CSR mask; with ``mask_repeated=False`` (protocol 1) the
    user's own target is left out of it."""
    ex = history[users].tocsr()
    rows = np.repeat(np.arange(len(users)), np.diff(ex.indptr))
    ex.data = np.ones(len(ex.indices), np.float32)
    if not mask_repeated:
        ex.data = np.where(ex.indices == targets[rows], 0, 1).astype(np.float32)
        ex.eliminate_zeros()
    return ex


def repeated_targets(train: Dataset, users: np.ndarray, targets: np.ndarray) -> int:
    """Users whose target is already in their training history (misses for every model under protocol 2)."""
    history = train.user_item_matrix(weighted=False, binary=True).tocsr()
    return int(sum(history[u, t] > 0 for u, t in zip(users.tolist(), targets.tolist(), strict=True)))


def drop_excluded(top: np.ndarray, exclude: sp.csr_matrix) -> tuple[np.ndarray, int]:
    """``top`` without the items stored in ``exclude`` (kept order, -1 padded); and how many were dropped."""
    bad = M.relevance_at(top, exclude) > 0
    n_bad = int(bad.sum())
    if not n_bad:
        return top, 0
    ok = (top >= 0) & ~bad
    pos = np.cumsum(ok, axis=1) - 1
    out = np.full_like(top, -1)
    r, c = np.nonzero(ok)
    out[r, pos[r, c]] = top[r, c]
    return out, n_bad


def recommend_all(
    model: Recommender,
    train: Dataset,
    users: np.ndarray,
    targets: np.ndarray,
    k: int,
    *,
    batch_size: int = 1024,
    strict: bool = True,
    stats: dict[str, int] | None = None,
    mask_repeated: bool = True,
) -> np.ndarray:
    """Top-k for every user in batches, masking training items (a repeated target too unless
    ``mask_repeated`` is False).

    A model that returns an excluded item breaks the protocol: ``strict`` raises; otherwise the item is
    dropped from the list (later items move up) and counted in ``stats["excluded_returned"]``.
    """
    history = train.user_item_matrix(weighted=False, binary=True)
    out = np.full((len(users), k), -1, dtype=np.int64)
    for s in range(0, len(users), batch_size):
        u = users[s : s + batch_size]
        ex = _exclusions(history, u, targets[s : s + batch_size], mask_repeated)
        top = np.asarray(model.recommend_batch(u, k, ex))
        if top.shape != (len(u), k):
            raise ValueError(f"{model.name}: recommend_batch returned shape {top.shape}, expected {(len(u), k)}")
        if ex.nnz:
            top, n_bad = drop_excluded(top, ex)
            if n_bad and strict:
                raise ValueError(f"{model.name}: recommend_batch returned an excluded item ({n_bad} in one batch)")
            if stats is not None:
                stats["excluded_returned"] = stats.get("excluded_returned", 0) + n_bad
        out[s : s + batch_size] = top
    return out


def _slice_masks(train: Dataset, users: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    hist = np.bincount(train.interactions[C.USER_IDX].to_numpy(), minlength=train.n_users)[users]
    pop = train.item_popularity()[targets]
    return {
        "users_hist<=5": hist <= 5,
        "users_hist6-20": (hist >= 6) & (hist <= 20),
        "users_hist>20": hist > 20,
        "targets_pop<=5": pop <= 5,
        "targets_pop>5": pop > 5,
    }


def evaluate_recommender(
    model: Recommender,
    split: LeaveOneOut,
    *,
    stage: Stage = "test",
    k: Sequence[int] = (10, 20),
    batch_size: int = 1024,
    fit: bool = True,
    item_vectors: np.ndarray | None = None,
    keep_topk: bool = False,
    strict: bool = False,
    mask_repeated: bool = True,
) -> dict[str, Any]:
    """Fit ``model`` (on ``train_full`` for ``stage="test"``, on ``train`` for ``"valid"``) and score it
    with full ranking over all items.

    Returns ``hr@K``/``ndcg@K`` for each K, ``coverage@K``, ``novelty@K``, ``popularity_bias@K`` (and
    ``diversity@K`` when ``item_vectors`` are given) at the smallest K, ``slices`` (same accuracy
    metrics per slice, with ``n``), ``n_users``, ``fit_seconds``, ``score_seconds``,
    ``peak_memory_mb`` (resident memory above the level at start), ``primary`` and, with
    ``keep_topk``, the ``topk`` array and evaluated ``users``, ``protocol`` (its version) and
    ``repeated_targets``. A model that returns excluded items raises with ``strict``; otherwise they
    are dropped and counted in ``excluded_returned``. ``mask_repeated=False``: protocol 1.
    """
    train, truth = _targets(split, stage)
    ks = sorted(set(int(x) for x in k))
    kmax, kmin = ks[-1], ks[0]
    users = truth[C.USER_IDX].to_numpy(dtype=np.int64)
    targets = truth[C.ITEM_IDX].to_numpy(dtype=np.int64)
    with _PeakRss() as mem:
        t0 = time.perf_counter()
        if fit:
            model.fit(train)
        t1 = time.perf_counter()
        stats: dict[str, int] = {}
        top = recommend_all(
            model,
            train,
            users,
            targets,
            kmax,
            batch_size=batch_size,
            strict=strict,
            stats=stats,
            mask_repeated=mask_repeated,
        )
        t2 = time.perf_counter()

    # rank of the target in the list (kmax = not found): all accuracy metrics follow from it
    hit = top == targets[:, None]
    rank = np.where(hit.any(axis=1), hit.argmax(axis=1), kmax)
    per_row = {}
    for kk in ks:
        per_row[f"hr@{kk}"] = (rank < kk).astype(np.float64)
        per_row[f"ndcg@{kk}"] = np.where(rank < kk, 1.0 / np.log2(rank + 2.0), 0.0)
    out: dict[str, Any] = {name: float(v.mean()) if len(v) else float("nan") for name, v in per_row.items()}
    pop = train.item_popularity()
    n_train_users = int(train.interactions[C.USER_IDX].nunique())
    out[f"coverage@{kmin}"] = M.coverage(top, train.n_items, kmin)
    out[f"novelty@{kmin}"] = M.novelty(top, pop, n_train_users, kmin)
    out[f"popularity_bias@{kmin}"] = M.popularity_bias(top, pop, kmin)
    if item_vectors is not None:
        out[f"diversity@{kmin}"] = M.intra_list_diversity(top, item_vectors, kmin)
    slices = {}
    for name, mask in _slice_masks(train, users, targets).items():
        s = {m: float(v[mask].mean()) if mask.any() else float("nan") for m, v in per_row.items()}
        s["n"] = int(mask.sum())
        slices[name] = s
    out["slices"] = slices
    out["n_users"] = len(users)
    out["protocol"] = PROTOCOL if mask_repeated else 1
    out["repeated_targets"] = repeated_targets(train, users, targets)
    out["fit_seconds"] = t1 - t0
    out["score_seconds"] = t2 - t1
    out["peak_memory_mb"] = (mem.peak_bytes - mem.start_bytes) / 2**20
    # a model that fits in another process (SASRec in its own virtualenv) reports that process's own times
    external = getattr(model, "timings", None)
    if fit and external:
        out["fit_seconds"] = float(external.get("fit_seconds", out["fit_seconds"]))
        out["score_seconds"] += float(external.get("score_seconds", 0.0))
        out["peak_memory_mb"] = max(out["peak_memory_mb"], float(external.get("peak_memory_mb", 0.0)))
        out["external"] = external
    out["primary"] = f"ndcg@{kmin}"
    if stats.get("excluded_returned"):
        # a protocol violation by the model: reported, and the items were dropped before scoring
        out["excluded_returned"] = stats["excluded_returned"]
        warnings.warn(
            f"{model.name}: returned {stats['excluded_returned']:,} excluded item(s); dropped before scoring",
            stacklevel=2,
        )
    if keep_topk:
        out["topk"] = top
        out["users"] = users
    return out
