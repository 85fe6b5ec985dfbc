"""The unseen-item protocol: the split, ranking only held-out items, the metrics and the two content rankers."""

from __future__ import annotations

from typing import Self

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.evaluation.unseen import (
    EngineNewProducts,
    MeanContentPeer,
    evaluate_unseen,
    random_expectation,
    unseen_split,
)
from shopsense.models.base import Histories

N_ITEMS = 20
PRODUCTS = pd.DataFrame({C.ITEM: [f"i{j}" for j in range(N_ITEMS)], C.TITLE: [f"item {j}" for j in range(N_ITEMS)]})


def _dataset(sequences: dict[str, list[int]]) -> Dataset:
    rows = [(u, f"i{j}", float(t)) for u, seq in sequences.items() for t, j in enumerate(seq)]
    events = pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.TIMESTAMP])
    events[C.EVENT_TYPE] = C.PURCHASE
    return Dataset.from_frames(events, PRODUCTS)


def _held(share: float = 0.1, seed: int = 0) -> list[int]:
    """The items a split of this catalog holds out (they depend on the catalog size and seed only)."""
    return unseen_split(_dataset({"x": [0]}), share, seed).held_out.tolist()


def _warm(held: list[int]) -> list[int]:
    return [j for j in range(N_ITEMS) if j not in held]


def test_the_split_holds_out_a_tenth_of_the_items_with_all_their_interactions() -> None:
    held = _held()
    a, b = held
    w = _warm(held)
    ds = _dataset(
        {
            "ends_held": [w[0], a, w[1], b],  # test user: history w0, w1 (its earlier held item is gone)
            "ends_warm": [b, w[2], w[3]],  # last item not held out: not a test user, trained without b
            "only_held": [a, b],  # last item held out but nothing to train on: not scored, counted
            "ends_held_too": [w[4], w[4], a],
        }
    )
    split = unseen_split(ds, 0.1, seed=0)
    assert len(held) == 2 and split.held_out.tolist() == held  # 10% of 20 items, same for a given seed
    inter = split.train.interactions
    assert not inter[C.ITEM_IDX].isin(held).any()
    assert len(inter) == len(ds.interactions) - int(ds.interactions[C.ITEM_IDX].isin(held).sum())
    users = ds.users.to_external(split.users).tolist()
    assert users == ["ends_held", "ends_held_too"]
    assert split.targets.tolist() == [b, a]
    assert [h.tolist() for h in split.histories.items] == [[w[0], w[1]], [w[4], w[4]]]
    assert split.without_history == 1
    assert split.train.n_items == N_ITEMS  # the catalog (and its vectors) stays whole


def test_the_split_checks_the_share() -> None:
    with pytest.raises(ValueError, match="share"):
        unseen_split(_dataset({"u": [0, 1]}), 1.0)


class _Spy:
    """Knows the answer: scores each user's target 1, every other candidate 0; records the candidates."""

    name = "oracle"

    def __init__(self, targets: np.ndarray) -> None:
        self.targets = targets
        self.seen: list[np.ndarray] = []
        self.done = 0

    def fit(self, train: Dataset, item_vectors: np.ndarray) -> Self:
        return self

    def scores(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
        self.seen.append(candidates.copy())
        t = self.targets[self.done : self.done + len(histories)]
        self.done += len(histories)
        return (candidates[None, :] == t[:, None]).astype(np.float32)


def _many_users(held: list[int], n: int = 7) -> Dataset:
    w = _warm(held)
    return _dataset({f"u{i}": [w[i % len(w)], w[(i + 3) % len(w)], held[i % len(held)]] for i in range(n)})


def test_only_the_held_out_items_are_ranked_and_an_oracle_scores_one() -> None:
    held = _held(0.25)
    split = unseen_split(_many_users(held), 0.25)
    spy = _Spy(split.targets)
    r = evaluate_unseen(spy, split, np.zeros((N_ITEMS, 2), np.float32), batch_size=3, keep_rows=True)
    assert len(spy.seen) == 3 and all(c.tolist() == held for c in spy.seen)  # 7 users in batches of 3
    assert r["n_users"] == 7 and r["n_candidates"] == 5
    assert r["hr@10"] == r["ndcg@10"] == r["ndcg@20"] == 1.0
    assert r["rows"]["ndcg@10"].tolist() == [1.0] * 7  # per user, for paired comparisons
    assert r["slices"]["users_hist<=5"] == {"hr@10": 1.0, "ndcg@10": 1.0, "hr@20": 1.0, "ndcg@20": 1.0, "n": 7}
    assert r["random"] == random_expectation(5, 10) | random_expectation(5, 20)
    assert r["random"]["hr@10"] == 1.0


def test_a_ranker_that_answers_with_the_wrong_width_is_refused() -> None:
    held = _held(0.25)
    split = unseen_split(_many_users(held), 0.25)

    class Wide(_Spy):
        def scores(self, histories: Histories, candidates: np.ndarray) -> np.ndarray:
            return np.zeros((len(histories), N_ITEMS), np.float32)

    with pytest.raises(ValueError, match="held-out"):
        evaluate_unseen(Wide(split.targets), split, np.zeros((N_ITEMS, 2), np.float32))


def test_random_expectation() -> None:
    assert random_expectation(100, 10)["hr@10"] == pytest.approx(0.1)
    assert random_expectation(100, 1)["ndcg@1"] == pytest.approx(0.01)


def _two_topic_vectors(held: list[int], a_items: list[int]) -> np.ndarray:
    """Items in ``a_items`` and the first held-out item point along x, every other item along y."""
    v = np.tile(np.array([0.0, 1.0], np.float32), (N_ITEMS, 1))
    v[[*a_items, held[0]]] = [1.0, 0.0]
    return v


def test_the_content_peer_ranks_by_the_mean_of_the_history() -> None:
    held = _held()
    w = _warm(held)
    # u_x: two x items then one y item (mean leans x) -> held[0]; u_y: one x, two y -> held[1]
    ds = _dataset({"u_x": [w[0], w[1], w[5], held[0]], "u_y": [w[0], w[5], w[6], held[1]]})
    vectors = _two_topic_vectors(held, [w[0], w[1]])
    split = unseen_split(ds, 0.1)
    r = evaluate_unseen(MeanContentPeer(), split, vectors, k=(1,))
    assert r["hr@1"] == r["ndcg@1"] == 1.0
    peer = MeanContentPeer().fit(split.train, vectors)
    s = peer.scores(split.histories, split.held_out)
    row = ds.users.to_external(split.users).tolist().index("u_x")
    assert s[row, 0] == pytest.approx(2 / np.sqrt(5))  # cosine of the mean (2, 1)/3 with x


def test_the_engine_weights_recent_items_more_than_the_peer() -> None:
    held = _held()
    w = _warm(held)
    # x, x, then y, y at the end: the plain mean is a tie that goes to the lower index; the engine's
    # recency-weighted profile leans y (the latest items), so it finds held[1]
    ds = _dataset({"u": [w[0], w[1], w[5], w[6], held[1]]})
    vectors = _two_topic_vectors(held, [w[0], w[1]])
    split = unseen_split(ds, 0.1)
    assert evaluate_unseen(MeanContentPeer(), split, vectors, k=(1,))["hr@1"] == 0.0
    assert evaluate_unseen(EngineNewProducts(), split, vectors, k=(1,))["hr@1"] == 1.0
