"""Full-ranking leave-one-out protocol on a tiny log with obvious answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from shopsense.data.dataset import Dataset
from shopsense.data.splits import leave_one_out
from shopsense.evaluation.peers.popular import MostPopular
from shopsense.evaluation.protocol import Recommender, evaluate_recommender


def _events(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": [u for u, _ in rows],
            "item_id": [i for _, i in rows],
            "event_type": "purchase",
            "timestamp": np.arange(len(rows), dtype=float),
        }
    )


# items a..e; a is the most popular in training. u1 re-buys a as its test target.
LOG = [
    ("u1", "a"), ("u1", "b"), ("u1", "a"),
    ("u2", "a"), ("u2", "c"), ("u2", "d"),
    ("u3", "a"), ("u3", "b"), ("u3", "e"),
    ("u4", "c"), ("u4", "b"),
]  # fmt: skip


@pytest.fixture
def split():
    return leave_one_out(Dataset.from_frames(_events(LOG)))


def test_most_popular_follows_the_protocol(split) -> None:
    model = MostPopular()
    assert isinstance(model, Recommender)
    r = evaluate_recommender(model, split, stage="test", k=(1, 2), keep_topk=True)
    # train_full (all but each user's last event): u1 a b | u2 a c | u3 a b | u4 c
    # popularity a=3, b=2, c=2, d=0, e=0; ties by item index (order of first appearance a..e)
    # u1 target a: a is in its history, masked like every history item -> [c, d]   miss (repeated target)
    # u2 target d: masked {a, c} -> [b, d]                                       hit@2
    # u3 target e: masked {a, b} -> [c, d]                                       miss
    # u4 target b: masked {c} -> [a, b]                                          hit@2
    lists = split.train_full.items.to_external(r["topk"]).tolist()
    assert lists == [["c", "d"], ["b", "d"], ["c", "d"], ["a", "b"]]
    assert r["n_users"] == 4 and r["protocol"] == 2 and r["repeated_targets"] == 1
    assert r["hr@1"] == 0
    assert r["hr@2"] == pytest.approx(2 / 4)
    assert r["ndcg@2"] == pytest.approx((2 / np.log2(3)) / 4)
    assert r["coverage@1"] == pytest.approx(3 / 5)  # c, b, c, a
    assert r["slices"]["users_hist<=5"]["n"] == 4
    # target popularity in train_full: a=3, d=0, e=0, b=2 -> all long tail
    assert r["slices"]["targets_pop<=5"]["hr@2"] == pytest.approx(2 / 4)
    # protocol 1 left a repeated target unmasked: u1 then hits a at the top
    old = evaluate_recommender(model, split, stage="test", k=(1, 2), keep_topk=True, mask_repeated=False)
    assert split.train_full.items.to_external(old["topk"]).tolist()[0] == ["a", "c"]
    assert old["protocol"] == 1 and old["hr@1"] == pytest.approx(1 / 4) and old["hr@2"] == pytest.approx(3 / 4)
    assert r["slices"]["targets_pop>5"]["n"] == 0
    assert r["primary"] == "ndcg@1"
    assert r["fit_seconds"] >= 0 and r["score_seconds"] >= 0


def test_popularity_over_all_interactions_counts_the_test_events(split) -> None:
    full = Dataset.from_frames(_events(LOG))
    r = evaluate_recommender(MostPopular(counted_on=full), split, k=(1,), keep_topk=True, mask_repeated=False)
    assert r["hr@1"] == pytest.approx(1 / 4)  # a=4, b=3, c=2: u4 (masked c) now gets a first: still a miss@1


def test_valid_stage_fits_on_train_and_scores_second_to_last(split) -> None:
    r = evaluate_recommender(MostPopular(), split, stage="valid", k=(1,), keep_topk=True)
    # valid targets: u1 b, u2 c, u3 b (u4 has only 2 events: no validation target)
    assert r["n_users"] == 3
    # train: u1 a | u2 a c | u3 a b | u4 c -> a=3, c=2, b=1; masks: u1 {a}, u2 {a}, u3 {a}
    assert split.train.items.to_external(r["topk"][:, 0]).tolist() == ["c", "c", "c"]
    assert r["hr@1"] == pytest.approx(1 / 3)


class _Leaky:
    name = "leaky"

    def fit(self, train: Dataset) -> _Leaky:
        return self

    def recommend_batch(self, user_idx: np.ndarray, k: int, exclude: sp.csr_matrix) -> np.ndarray:
        first = np.array([row.indices[0] if row.nnz else 0 for row in exclude])
        return np.tile(first[:, None], (1, k))


def test_returning_an_excluded_item_is_an_error_or_dropped_and_counted(split) -> None:
    with pytest.raises(ValueError, match="excluded"):
        evaluate_recommender(_Leaky(), split, k=(2,), strict=True)
    with pytest.warns(UserWarning, match="excluded"):
        r = evaluate_recommender(_Leaky(), split, k=(2,), keep_topk=True)
    # every user with history got its first excluded item twice: all dropped, lists empty
    assert r["excluded_returned"] == 2 * 4
    assert (r["topk"] == -1).all() and r["hr@2"] == 0.0


def test_batches_give_the_same_answer(split) -> None:
    a = evaluate_recommender(MostPopular(), split, k=(2,), batch_size=1, keep_topk=True)
    b = evaluate_recommender(MostPopular(), split, k=(2,), batch_size=100, keep_topk=True)
    assert np.array_equal(a["topk"], b["topk"])
