"""The engine: fusion tuned on held-out next items, LambdaRank ranker, save/load, source attribution."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shopsense.exceptions import IncompatibleFormatError
from shopsense.models.base import Histories
from shopsense.ranking.pipeline import ENGINE_FORMAT, Engine, EngineConfig, holdout_last
from tests.models.conftest import make_dataset, topic_vectors

FAST = {
    "sequential": {"dim": 16, "heads": 1, "layers": 1, "epochs": 10, "lr": 0.01, "dropout": 0.0},
    "ease": {"l2": 1.0},
    "refit_epochs": 1,
    "per_source": 5,
}


@pytest.mark.parametrize("ranker", ["fusion", "lambdarank"])
def test_engine_ranks_the_topic_and_round_trips(ranker: str, tmp_path: Path):
    ds = make_dataset()
    vec = topic_vectors(ds)
    cfg = EngineConfig(**FAST, ranker=ranker, ranker_config={"rounds": 10, "min_data_in_leaf": 1})
    eng = Engine(cfg).fit(ds, vec)
    assert "heldout_ndcg@10_fusion" in eng.metrics
    hist = Histories([ds.items.to_internal(["b0", "b1"])])
    ex = hist.matrix(ds.n_items)
    items, scores, sources = eng.rank(hist, 3, ex)
    top = [str(x) for x in ds.items.to_external(items[0])]
    assert top[0] == "b2" and all(t.startswith("b") for t in top), top
    assert len(sources[0]) == 3 and set(sources[0]) <= set(eng.models)
    assert np.all(np.diff(scores[0]) <= 0)
    loaded = Engine.load(eng.save(tmp_path / "engine"))
    items2, scores2, _ = loaded.rank(hist, 3, ex)
    assert items2.tolist() == items.tolist()
    np.testing.assert_allclose(scores2, scores, rtol=1e-5)


def test_holdout_last_keeps_the_rest():
    ds = make_dataset()
    inner, users, targets = holdout_last(ds, 1000)
    assert len(users) == ds.n_users and len(inner.interactions) == len(ds.interactions) - len(users)
    seqs = ds.sequences()
    assert all(seqs[u][-1] == t for u, t in zip(users, targets, strict=True))


def test_tail_tuning_lifts_tail_targets_within_the_tolerance():
    """Two sources: 'head' ranks popular targets first, 'rare' ranks long-tail targets first. Tuned for
    overall NDCG the fusion follows 'head'; the tail pass may give up at most 5% of it for the tail."""
    from shopsense.ranking.tuning import TAIL_BIAS, heldout_ndcg, shortlist, tune_for_tail, tune_fusion

    rng = np.random.default_rng(0)
    n_users, n_items = 400, 60
    tail_item = np.arange(n_items) >= 45  # the 15 rarest items
    targets = np.where(np.arange(n_users) % 5 == 0, rng.integers(45, 60, n_users), rng.integers(0, 45, n_users))
    head = rng.standard_normal((n_users, n_items)).astype(np.float32)
    rare = rng.standard_normal((n_users, n_items)).astype(np.float32)
    rows = np.arange(n_users)
    head[rows, targets] += np.where(tail_item[targets], 0.0, 3.0)
    rare[rows, targets] += np.where(tail_item[targets], 3.0, 0.5)
    z, local = shortlist(
        {"head": head, "rare": rare}, targets, 20, {TAIL_BIAS: tail_item.astype(np.float32)}, tail_item
    )
    fusion, overall = tune_fusion({"head": z["head"], "rare": z["rare"]}, local)
    tail = tail_item[targets]
    tuned, metrics = tune_for_tail(fusion.weights, z, local, tail, 0.05)
    assert metrics["heldout_tail_ndcg@10"] > metrics["heldout_tail_ndcg@10_before"] + 0.05
    assert heldout_ndcg(tuned.weights, z, local) >= 0.95 * heldout_ndcg(fusion.weights, z, local) - 1e-9
    assert tuned.weights.get("tail:rare", 0) > 0 or tuned.weights.get(TAIL_BIAS, 0) > 0


def test_engine_load_refuses_another_format_saying_retrain(tmp_path: Path) -> None:
    (tmp_path / "engine.json").write_text(json.dumps({"format_version": ENGINE_FORMAT + 1}), encoding="utf-8")
    with pytest.raises(IncompatibleFormatError, match="shopsense train"):
        Engine.load(tmp_path)


def test_a_ranker_trained_without_the_content_source_serves_after_loading(tmp_path: Path):
    """Text vectors given but the content source off: the loaded engine has no vectors, so the ranker
    must not have learned the text-similarity features (it did, and every request failed)."""
    ds = make_dataset()
    cfg = EngineConfig(**FAST, content=None, ranker="lambdarank", ranker_config={"rounds": 5, "min_data_in_leaf": 1})
    eng = Engine(cfg).fit(ds, topic_vectors(ds))
    assert "sim_last" not in eng.ranker.names
    loaded = Engine.load(eng.save(tmp_path / "engine"))
    hist = Histories([ds.items.to_internal(["b0", "b1"])])
    items, _, _ = loaded.rank(hist, 3, hist.matrix(ds.n_items))
    assert (items[0] >= 0).all()
