"""The engine: fusion tuned on held-out next items, LambdaRank ranker, save/load, source attribution."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopsense.models.base import Histories
from shopsense.ranking.pipeline import Engine, EngineConfig, holdout_last
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
