"""The recency-weighted peers (the engine's item-kNN and co-visitation, each alone): recency is credited,
masking is honoured, and the runner's grids are valid settings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.data.dataset import Dataset
from shopsense.data.splits import leave_one_out
from shopsense.evaluation.peers.neighbors import ItemKNN
from shopsense.evaluation.peers.recency import CoVisitation, RecencyItemKNN
from shopsense.evaluation.protocol import evaluate_recommender
from shopsense.evaluation.runner import DEFAULT_PEERS, PEERS, run_peer
from shopsense.exceptions import NotFittedError


def _frame(seqs: dict[str, list[str]]) -> pd.DataFrame:
    rows = [(u, it) for u, items in seqs.items() for it in items]
    ev = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(event_type="purchase")
    ev["timestamp"] = np.arange(len(ev), dtype=float)  # each user's items in the listed order
    return ev


def _recency_log() -> tuple[Dataset, int]:
    """``p`` is followed by ``tp`` more often (6 users) than ``q`` by ``tq`` (4 users; 2 more touch ``q``
    and ``r``). The shopper ``me`` touched ``p``, then ``q``: by counts ``tp`` wins, by recency ``tq``."""
    seqs = {f"a{i}": ["p", "tp"] for i in range(6)}
    seqs |= {f"b{i}": ["q", "tq"] for i in range(4)}
    seqs |= {f"c{i}": ["q", "r"] for i in range(2)}
    seqs["me"] = ["p", "q"]
    ds = Dataset.from_frames(_frame(seqs))
    return ds, int(ds.users.to_internal(["me"])[0])


def _first(model, ds: Dataset, user: int) -> str:
    hist = ds.user_item_matrix(weighted=False, binary=True)[[user]].tocsr()
    top = model.fit(ds).recommend_batch(np.array([user]), 3, hist)
    return str(ds.items.to_external(top[0][:1])[0])


@pytest.mark.parametrize("peer", [RecencyItemKNN, CoVisitation], ids=lambda c: c.name)
def test_the_latest_item_predicts_the_next(peer) -> None:
    ds, me = _recency_log()
    assert _first(ItemKNN(neighbors=10), ds, me) == "tp"  # plain item-kNN: every history item counts alike
    assert _first(peer(recency_decay=0.5), ds, me) == "tq"  # the latest item counts most


def test_without_decay_recency_is_not_credited() -> None:
    ds, me = _recency_log()
    assert _first(RecencyItemKNN(recency_decay=1.0), ds, me) == "tp"


def _split_with_a_repeat():
    # a cycle through 6 items; "rep" ends on an item it touched before (a repeated target)
    seqs = {f"u{u}": [f"i{(u + j) % 6}" for j in range(4)] for u in range(12)}
    seqs["rep"] = ["i0", "i1", "i2", "i0"]
    return leave_one_out(Dataset.from_frames(_frame(seqs)))


@pytest.mark.parametrize("peer", [RecencyItemKNN(), CoVisitation()], ids=lambda m: m.name)
def test_masking_is_honoured(peer) -> None:
    split = _split_with_a_repeat()
    # strict: the protocol raises if the peer returns any masked item, the repeated target included
    r = evaluate_recommender(peer, split, k=(3, 5), keep_topk=True, strict=True)
    assert r["repeated_targets"] == 1 and "excluded_returned" not in r
    hist = split.train_full.user_item_matrix(weighted=False, binary=True).tocsr()
    for u, row in zip(r["users"], r["topk"], strict=True):
        row = row[row >= 0]
        assert len(row) == len(set(row.tolist()))
        assert not set(row.tolist()) & set(hist[u].indices.tolist())
    assert r["hr@5"] > 0.5  # the cycle is learnable


def test_unfitted_peer_says_so() -> None:
    with pytest.raises(NotFittedError, match="covisit"):
        CoVisitation().recommend_batch(np.array([0]), 3, _split_with_a_repeat().train.user_item_matrix())


def test_runner_grids_are_valid_settings() -> None:
    for name in ("itemknn-recency", "covisit"):
        spec = PEERS[name]
        assert name in DEFAULT_PEERS
        for params in [*spec.grid, *(spec.quick_grid or ())]:
            assert spec.build(**params).name == name  # the engine's config validates every value
    r = run_peer("covisit", _split_with_a_repeat(), quick=True)
    assert r["params"] == {"recency_decay": 0.8, "window": 20} and r["protocol"] == 2
