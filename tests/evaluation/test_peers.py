"""Every in-process peer honours the protocol; EASE matches its closed form; the runner tunes on validation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.data.dataset import Dataset
from shopsense.data.splits import leave_one_out
from shopsense.evaluation.peers.factorization import ALS, BPR
from shopsense.evaluation.peers.neighbors import EASE, ItemKNN
from shopsense.evaluation.peers.popular import MostPopular
from shopsense.evaluation.protocol import evaluate_recommender
from shopsense.evaluation.runner import PEERS, parse_peers, tune_and_test


def _split(n_users: int = 40, n_items: int = 12, seed: int = 0):
    # two taste groups: users in group g buy items of group g in a cycle, so the next item is predictable
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        g = u % 2
        items = [i for i in range(n_items) if i % 2 == g]
        start = rng.integers(len(items))
        for j in range(4):
            rows.append((f"u{u}", f"i{items[(start + j) % len(items)]}"))
    ev = pd.DataFrame(rows, columns=["user_id", "item_id"]).assign(event_type="purchase")
    ev["timestamp"] = np.arange(len(ev), dtype=float)
    return leave_one_out(Dataset.from_frames(ev))


@pytest.mark.parametrize(
    "model",
    [MostPopular(), ItemKNN(neighbors=5), EASE(l2=1.0), ALS(factors=4, iterations=3), BPR(factors=4, iterations=5)],
    ids=lambda m: m.name,
)
def test_peer_contract(model) -> None:
    split = _split()
    r = evaluate_recommender(model, split, k=(3, 5), keep_topk=True, strict=True)  # raises on an excluded item
    top = r["topk"]
    assert top.shape == (40, 5)
    for row in top:  # no duplicates inside a list
        row = row[row >= 0]
        assert len(row) == len(set(row.tolist()))
    assert 0 <= r["hr@5"] <= 1


def test_item_models_learn_the_taste_groups() -> None:
    split = _split()
    for model in (ItemKNN(neighbors=5), EASE(l2=1.0)):
        r = evaluate_recommender(model, split, k=(3,), keep_topk=True)
        groups = split.train_full.items.to_external(r["topk"][r["topk"] >= 0])
        # users of group g are recommended group-g items: parity of the recommended item matches the user
        users = np.repeat(r["users"], 3)[(r["topk"] >= 0).ravel()]
        user_g = np.array([int(split.train_full.users.to_external([u])[0][1:]) % 2 for u in users])
        item_g = np.array([int(x[1:]) % 2 for x in groups])
        assert (user_g == item_g).mean() > 0.7, model.name  # chance: 0.5
        assert r["hr@3"] > 0.3


def test_ease_matches_the_closed_form() -> None:
    split = _split(n_users=10, n_items=6)
    model = EASE(l2=2.0).fit(split.train)
    x = split.train.user_item_matrix(weighted=False, binary=True).toarray().astype(np.float64)
    p = np.linalg.inv(x.T @ x + 2.0 * np.eye(x.shape[1]))
    b = np.eye(x.shape[1]) - p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    assert np.allclose(model.weights, b, atol=1e-4)


def test_parse_peers() -> None:
    assert parse_peers("pop, ease") == ["pop", "ease"]
    assert "sasrec" in parse_peers("all") and "pop-all" not in parse_peers("all")
    assert parse_peers("all,pop-all")[-1] == "pop-all"
    assert parse_peers(None) == [] and parse_peers("none") == []
    with pytest.raises(ValueError, match="valid: all"):
        parse_peers("pop,magic")
    assert set(PEERS) >= {"pop", "pop-all", "als", "bpr", "itemknn", "ease", "sasrec"}


def test_tune_and_test_picks_the_best_setting_on_validation() -> None:
    split = _split()
    grid = [{"neighbors": 1}, {"neighbors": 5}]
    r = tune_and_test(lambda p: ItemKNN(**p), grid, split, k=(3,), metric="ndcg@3")
    assert [v["params"] for v in r["valid"]] == grid
    best = max(r["valid"], key=lambda v: v["ndcg@3"])["params"]
    assert r["params"] == best
    assert "hr@3" in r and r["tune_seconds"] >= 0


class _EpochPicker(ItemKNN):
    """An item-kNN that 'early-stops' on the validation targets it is given: the protocol of SASRecPeer."""

    def __init__(self, neighbors: int = 5, epochs: int = 50) -> None:
        super().__init__(neighbors=neighbors)
        self.max_epochs = epochs
        self.valid: tuple[np.ndarray, np.ndarray] | None = None
        self.fitted_with_valid: list[bool] = []

    def set_validation(self, users: np.ndarray, items: np.ndarray) -> None:
        self.valid = (users, items)

    def fit(self, train):  # type: ignore[no-untyped-def]
        self.fitted_with_valid.append(self.valid is not None)
        return super().fit(train)

    def chosen_params(self) -> dict:
        return {"epochs": self.neighbors + 1}

    def validation_report(self) -> dict:
        assert self.valid is not None
        return {"best_epochs": self.neighbors + 1, "curve": [{"epoch": 1, "ndcg@10": 0.1}], "n": len(self.valid[0])}


def test_tune_and_test_with_early_stopping() -> None:
    split = _split()
    built: list[_EpochPicker] = []

    def build(p: dict) -> _EpochPicker:
        built.append(_EpochPicker(**p))
        return built[-1]

    r = tune_and_test(build, [{"neighbors": 5}], split, k=(3,), metric="ndcg@3", early_stopping=True)
    # one setting is validated all the same (the epochs come from it); the test fit gets no targets
    assert len(built) == 2 and built[0].fitted_with_valid == [True] and built[1].fitted_with_valid == [False]
    assert built[0].valid is not None and len(built[0].valid[0]) == len(split.valid)
    assert r["params"] == {"neighbors": 5, "epochs": 6} and built[1].max_epochs == 6
    (entry,) = r["valid"]
    assert entry["best_epochs"] == 6 and entry["chosen"] == r["params"] and entry["n"] == len(split.valid)


def test_grid_override() -> None:
    from shopsense.evaluation.runner import override_grid, parse_grid_override

    name, axes = parse_grid_override("sasrec:dropout_rate=0.2,0.5; budget_seconds=1800;loss=softmax")
    assert name == "sasrec" and axes == {"dropout_rate": [0.2, 0.5], "budget_seconds": [1800], "loss": ["softmax"]}
    grid = override_grid(PEERS["sasrec"].grid, axes)
    assert [g["dropout_rate"] for g in grid] == [0.2, 0.5] and all(g["budget_seconds"] == 1800 for g in grid)
    assert all(g["epochs"] == PEERS["sasrec"].grid[0]["epochs"] for g in grid)
    for bad in ("magic:x=1", "sasrec", "sasrec:x", "sasrec:x="):
        with pytest.raises(ValueError, match="--grid"):
            parse_grid_override(bad)


def test_sasrec_chooses_its_epochs_on_validation() -> None:
    spec = PEERS["sasrec"]
    assert spec.early_stopping and {g["loss"] for g in spec.grid} == {"softmax"}
    assert len({g["dropout_rate"] for g in spec.grid}) > 1 and all(g["epochs"] > 5 for g in spec.grid)
