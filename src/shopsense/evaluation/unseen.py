"""Unseen items: how well products nobody has interacted with are ranked, from what is known of them.

The public sets carry no real timestamps, so new products cannot be cut by time. Instead
(issue 18): a seeded random ``share`` (10%) of the catalog's items is held out **with every
interaction they have**, and models train on the rest. The test users are those whose last item (in
the dataset's order) is held out and who have at least one training item; their history is their
training interactions (all before that item, since it is their last). Each is scored on ranking
**only the held-out items**: HR@k and NDCG@k of their last item. Nothing is masked: no model knows a
user's interactions with held-out items, so none can use them.

Two content rankers sit behind one small interface (``fit(train, item_vectors)`` then
``scores(histories, candidates)``):

- :class:`EngineNewProducts`: the engine as it meets a product without events, through its content
  model (fitted on the training part with the whole catalog's vectors: a product's text is known
  before anyone touches it) and the shopper's profile as the new-product slot builds it
  (:func:`~shopsense.models.content.content_profile`, recency-weighted, not weighted by event type);
- :class:`MeanContentPeer`: cosine between the plain mean vector of the user's history and each item.

Choose any setting on :func:`unseen_split` of the training part (the same protocol one level down),
never on the test users.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

import numpy as np

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import ContentConfig, EngineConfig
from shopsense.evaluation import metrics as M
from shopsense.models.base import Histories
from shopsense.models.content import ContentModel
from shopsense.topk import top_k

#: share of the catalog held out by default (the issue's 10%)
SHARE = 0.1


@dataclass(frozen=True)
class UnseenSplit:
    """Training data without the held-out items, and the test users with their targets and histories."""

    train: Dataset  # every interaction with an item that is not held out (all users); full id maps
    held_out: np.ndarray  # sorted item indices held out: the only items ranked
    users: np.ndarray  # test users (user indices)
    targets: np.ndarray  # each test user's last item (held out)
    histories: Histories  # each test user's training interactions, oldest first
    without_history: int  # users whose last item is held out but who have no training item (not scored)


def unseen_split(ds: Dataset, share: float = SHARE, seed: int = 0) -> UnseenSplit:
    """Hold out ``share`` of ``ds``'s items (seeded) with all their interactions; see the module docstring."""
    if not 0 < share < 1:
        raise ValueError(f"share must be in (0, 1), got {share}")
    n_held = max(1, int(round(share * ds.n_items)))
    rng = np.random.default_rng(seed)
    held_out = np.sort(rng.choice(ds.n_items, size=n_held, replace=False)).astype(np.int64)
    inter = ds.interactions
    is_held = np.zeros(ds.n_items, bool)
    is_held[held_out] = True
    held_row = is_held[inter[C.ITEM_IDX].to_numpy()]
    train = ds.with_interactions(inter[~held_row])
    # the last row of each user in the dataset's (chronological, stable) order
    last = inter.groupby(C.USER_IDX, sort=True).tail(1)
    last = last[is_held[last[C.ITEM_IDX].to_numpy()]]
    users = last[C.USER_IDX].to_numpy(dtype=np.int64)
    targets = last[C.ITEM_IDX].to_numpy(dtype=np.int64)
    n_train = np.bincount(train.interactions[C.USER_IDX].to_numpy(), minlength=ds.n_users)[users]
    keep = n_train > 0
    order = np.argsort(users[keep], kind="stable")
    users, targets = users[keep][order], targets[keep][order]
    return UnseenSplit(
        train=train,
        held_out=held_out,
        users=users,
        targets=targets,
        histories=Histories.from_dataset(train, users),
        without_history=int((~keep).sum()),
    )


class UnseenRanker(Protocol):
    """What the protocol needs: fit on the training part, then score candidate items per history."""

    name: str

    def fit(self, train: Dataset, item_vectors: np.ndarray) -> Self: ...

    def scores(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """``(len(histories), len(candidates))`` scores, higher is better."""
        ...


class EngineNewProducts:
    """The engine's content model and the new-product slot's profile of the shopper."""

    name = "engine"

    def __init__(self, config: ContentConfig | None = None) -> None:
        self.config = config or EngineConfig().content or ContentConfig()
        self.model = ContentModel(self.config)

    def fit(self, train: Dataset, item_vectors: np.ndarray) -> Self:
        """Fit the content model on ``train`` with every catalog item's vector."""
        self.model.fit(train, item_vectors=item_vectors)
        return self

    def scores(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """Profile (recency-weighted, not by event type, as ``Recommender.with_new_product``) x candidates."""
        unweighted = Histories(histories.items, None, None, histories.queries)
        return self.model.profiles(unweighted) @ self.model.vectors[candidates].T


class MeanContentPeer:
    """The content peer: cosine between the mean vector of the user's history and each item."""

    name = "content peer"

    def __init__(self) -> None:
        self.vectors = np.zeros((0, 0), np.float32)

    def fit(self, train: Dataset, item_vectors: np.ndarray) -> Self:
        """Keep the catalog's vectors (nothing is learned)."""
        self.vectors = np.asarray(item_vectors, dtype=np.float32)
        return self

    def scores(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        """Cosine of each history's mean vector with each candidate's vector (0 for zero vectors)."""
        means = np.zeros((len(histories), self.vectors.shape[1]), np.float32)
        for i, h in enumerate(histories.items):
            if len(h):
                means[i] = self.vectors[h].mean(axis=0)
        return _unit(means) @ _unit(self.vectors[candidates]).T


def _unit(x: np.ndarray) -> np.ndarray:
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def random_expectation(n_candidates: int, k: int) -> dict[str, float]:
    """HR@k and NDCG@k of a random order over ``n_candidates`` items (the floor to compare with)."""
    kk = min(k, n_candidates)
    return {
        f"hr@{k}": kk / n_candidates,
        f"ndcg@{k}": float((1.0 / np.log2(np.arange(kk) + 2.0)).sum() / n_candidates),
    }


def evaluate_unseen(
    model: UnseenRanker,
    split: UnseenSplit,
    item_vectors: np.ndarray,
    *,
    k: Sequence[int] = (10, 20),
    batch_size: int = 2048,
    keep_rows: bool = False,
) -> dict[str, Any]:
    """Fit ``model`` on ``split.train`` and rank only the held-out items for every test user.

    Returns ``hr@k`` and ``ndcg@k`` for each ``k``, the same per slice of users by training-history
    length (``users_hist<=5``, ``users_hist>5``, each with ``n``), ``n_users``, ``n_candidates``,
    ``random`` (the metrics of a random order), ``primary`` and, with ``keep_rows``, ``rows``: each
    metric per test user (for paired comparisons)."""
    ks = sorted(set(int(x) for x in k))
    kmax = ks[-1]
    model.fit(split.train, item_vectors)
    cand = split.held_out
    top = np.full((len(split.users), kmax), -1, np.int64)
    for s in range(0, len(split.users), batch_size):
        scores = np.asarray(model.scores(split.histories[slice(s, s + batch_size)], cand), dtype=np.float32)
        if scores.shape != (min(batch_size, len(split.users) - s), len(cand)):
            raise ValueError(f"{model.name}: scores has shape {scores.shape}, expected one column per held-out item")
        pos = top_k(scores, kmax, overwrite=True)[0]
        top[s : s + batch_size] = np.where(pos >= 0, cand[np.maximum(pos, 0)], -1)
    truth = M.truth_from_targets(split.targets, split.train.n_items)
    per_row = {}
    for kk in ks:
        per_row[f"hr@{kk}"] = M.hit_rate_per_row(top, truth, kk)
        per_row[f"ndcg@{kk}"] = M.ndcg_per_row(top, truth, kk)
    out: dict[str, Any] = {name: _mean(v) for name, v in per_row.items()}
    hist_len = np.array([len(h) for h in split.histories.items])
    out["slices"] = {
        name: {**{m: _mean(v[mask]) for m, v in per_row.items()}, "n": int(mask.sum())}
        for name, mask in {"users_hist<=5": hist_len <= 5, "users_hist>5": hist_len > 5}.items()
    }
    out["n_users"] = len(split.users)
    out["n_candidates"] = len(cand)
    out["random"] = {m: v for kk in ks for m, v in random_expectation(len(cand), kk).items()}
    out["primary"] = f"ndcg@{ks[0]}"
    if keep_rows:
        out["rows"] = per_row
    return out


def _mean(v: np.ndarray) -> float:
    return float(v.mean()) if len(v) else float("nan")
