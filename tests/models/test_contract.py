"""The contract every model passes: fit twice, save/load round trip, config round trip, obvious answers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopsense.data.dataset import Dataset
from shopsense.exceptions import ConfigError, NotFittedError
from shopsense.models import MODELS
from shopsense.models.base import Histories

SMALL = {
    "sequential": {"dim": 16, "heads": 1, "layers": 1, "epochs": 15, "lr": 0.01, "dropout": 0.0},
    "als": {"factors": 8, "iterations": 5},
    "ease": {"l2": 1.0},
}


def build(name: str):
    return MODELS[name](SMALL.get(name, {}))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_twice_save_load_and_config_round_trip(name: str, tiny: Dataset, tiny_vectors: np.ndarray, tmp_path: Path):
    hist = Histories.from_dataset(tiny)
    a = build(name).fit(tiny, item_vectors=tiny_vectors)
    b = build(name).fit(tiny, item_vectors=tiny_vectors)
    sa, sb = a.score(hist), b.score(hist)
    assert sa.shape == (tiny.n_users, tiny.n_items)
    np.testing.assert_allclose(sa, sb, rtol=1e-5, atol=1e-5)  # deterministic
    a.save(tmp_path / name)
    loaded = type(a).load(tmp_path / name)
    np.testing.assert_allclose(loaded.score(hist), sa, rtol=1e-5, atol=1e-6)
    again = type(a)(a.config.model_dump())
    assert again.config == a.config


@pytest.mark.parametrize("name", sorted(MODELS))
def test_unknown_config_key_fails_naming_it(name: str):
    with pytest.raises(Exception, match="not_a_setting"):
        MODELS[name]({"not_a_setting": 1})


@pytest.mark.parametrize("name", ["ease", "itemknn", "covisit", "als", "sequential", "content"])
def test_history_in_topic_a_scores_topic_a_first(name: str, tiny: Dataset, tiny_vectors: np.ndarray):
    m = build(name).fit(tiny, item_vectors=tiny_vectors)
    idx = tiny.items.to_internal(["a0", "a1"])
    k = 2 if name == "sequential" else 3
    ids, _ = m.recommend(Histories([idx]), k, exclude=Histories([idx]).matrix(tiny.n_items))
    top = [str(x) for x in tiny.items.to_external(ids[0][ids[0] >= 0])]
    assert top and all(t.startswith("a") or t == "cold_a" for t in top), top
    assert not {"a0", "a1"} & set(top)


def test_sequential_follows_the_order(tiny: Dataset):
    m = build("sequential").fit(tiny)
    ids, _ = m.recommend(Histories([tiny.items.to_internal(["b1", "b2"])]), 1)
    assert tiny.items.to_external(ids[0])[0] == "b3"


@pytest.mark.parametrize("use_text", [True, False])
def test_sequential_numpy_inference_matches_torch(tiny: Dataset, tiny_vectors: np.ndarray, use_text: bool):
    """Requests (a few histories) take the numpy copy of the network, batches take torch: the same
    vectors, and a history's vector does not depend on what else is in the batch."""
    import torch

    from shopsense.models.sequential import SMALL_BATCH

    cfg = {"dim": 16, "heads": 2, "layers": 2, "epochs": 3, "dropout": 0.2, "use_text": use_text}
    m = MODELS["sequential"](cfg).fit(tiny, item_vectors=tiny_vectors)
    rng = np.random.default_rng(0)
    hist = Histories([rng.integers(0, tiny.n_items, n) for n in (1, 3, 7, 0, 2)])
    assert len(hist) <= SMALL_BATCH
    with torch.no_grad():
        alone = np.stack(
            [m.net(torch.as_tensor(h[None] + 1))[0, -1].numpy() if len(h) else np.zeros(16) for h in hist.items]
        )
    np.testing.assert_allclose(m.user_vectors(hist), alone, atol=1e-4)  # numpy, mixed lengths
    big = Histories(hist.items * (SMALL_BATCH + 1))  # torch
    np.testing.assert_allclose(m.user_vectors(big)[: len(hist)], alone, atol=1e-4)
    np.testing.assert_allclose(m.user_vectors(hist[[2]])[0], alone[2], atol=1e-4)


def test_content_needs_vectors_and_unfitted_models_refuse(tiny: Dataset):
    with pytest.raises(ConfigError):
        MODELS["content"]().fit(tiny)
    with pytest.raises(NotFittedError):
        MODELS["covisit"]().score(Histories([np.array([0])]))


def test_cold_item_reaches_content_and_als(tiny: Dataset, tiny_vectors: np.ndarray):
    cold = tiny.items.index_of("cold_a")
    hist = Histories([tiny.items.to_internal(["a0", "a1", "a2"])])
    content = MODELS["content"]().fit(tiny, item_vectors=tiny_vectors).score(hist)[0]
    assert content[cold] > content[tiny.items.index_of("b0")]
    als = MODELS["als"](SMALL["als"]).fit(tiny, item_vectors=tiny_vectors).score(hist)[0]
    assert als[cold] > np.median(als[tiny.items.to_internal(["b0", "b1", "b2"])])


def test_popular_in_category(tiny: Dataset):
    m = MODELS["popular"]().fit(tiny)
    items, _ = m.top(3, category="tools")
    assert all(str(x).startswith("b") for x in tiny.items.to_external(items))
    assert len(m.top(3, category="unknown")[0]) == 0


@pytest.mark.parametrize("name", ["ease", "itemknn", "covisit", "als", "sequential", "content"])
def test_proposals_agree_with_dense_scores(name: str, tiny: Dataset, tiny_vectors: np.ndarray):
    """What serving reads (top items, any item's score, the row's mean and spread) equals the dense row."""
    m = build(name).fit(tiny, item_vectors=tiny_vectors)
    hist = Histories.from_dataset(tiny)
    dense = m.score(hist)
    excluded = [np.unique(h)[:1] for h in hist.items]
    for r, (row, p, ex) in enumerate(zip(dense, m.propose(hist, 4, excluded), excluded, strict=True)):
        one = m.propose(hist[[r]], 4, [ex])[0]  # a request's single history may take a faster path
        np.testing.assert_allclose(one.scores, p.scores, atol=1e-5)  # items may swap places only in ties
        np.testing.assert_allclose(p.score_of(one.items), one.scores, atol=1e-5)
        assert (one.mean, one.std) == pytest.approx((p.mean, p.std), abs=1e-5)
        assert p.mean == pytest.approx(float(row.mean()), abs=1e-5)
        assert p.std == pytest.approx(float(row.std()), abs=1e-5)
        everything = np.arange(tiny.n_items)
        np.testing.assert_allclose(p.score_of(everything), row, atol=1e-5)
        assert not set(p.items) & set(ex.tolist())
        np.testing.assert_allclose(p.scores, row[p.items], atol=1e-5)
        allowed = np.delete(row, ex)
        best = np.sort(allowed)[::-1][: len(p.items)]
        np.testing.assert_allclose(np.sort(p.scores)[::-1], best[: len(p.scores)], atol=1e-5)


def test_content_proposals_from_the_hnsw_index(tiny: Dataset, tmp_path: Path):
    """A catalog above ``ann_min_items`` answers from the saved HNSW index; moments stay exact."""
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((tiny.n_items, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    m = MODELS["content"]({"ann_min_items": 2}).fit(tiny, item_vectors=vectors)
    m.save(tmp_path / "content")
    loaded = type(m).load(tmp_path / "content")
    assert loaded.ann is not None and loaded.ann.kind == "hnsw"
    hist = Histories.from_dataset(tiny)
    dense = m.score(hist)
    for row, p in zip(dense, loaded.propose(hist, 3), strict=True):
        assert p.mean == pytest.approx(float(row.mean()), abs=1e-5)
        assert p.std == pytest.approx(float(row.std()), abs=1e-5)
        assert list(p.items) == list(np.argsort(-row, kind="stable")[:3])


def test_inner_product_proposals_from_the_index_find_long_vectors(tmp_path: Path):
    """Item vectors of different lengths (the sequential table): the index must still return the
    largest inner products, not the nearest directions; scores are exact; a saved index is reused."""
    from shopsense.index.vector import VectorIndex
    from shopsense.models.indexed import IndexedVectors, mips_items

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((30, 16))  # items in topics, as a trained table has them
    v = centres[rng.integers(0, 30, 3000)] + 0.3 * rng.standard_normal((3000, 16))
    v = (v * rng.uniform(0.2, 2.0, (3000, 1))).astype(np.float32)
    iv = IndexedVectors(v, ann_min_items=1000)
    assert iv.build_index() is not None and iv.build_index().dim == 17
    users = (centres[rng.integers(0, 30, 50)] + 0.3 * rng.standard_normal((50, 16))).astype(np.float32)
    exact = np.argsort(-(users @ v.T), axis=1)[:, :20]
    found = [iv.propose(u, 20, np.zeros(0, np.int64)) for u in users]
    recall = np.mean([len(set(p.items) & set(e)) / 20 for p, e in zip(found, exact, strict=True)])
    assert recall >= 0.95
    for p, u in zip(found, users, strict=True):
        np.testing.assert_allclose(p.scores, v[p.items] @ u, rtol=1e-5)
        assert list(p.scores) == sorted(p.scores, reverse=True)
    saved = iv.index.save(tmp_path / "ann")  # type: ignore[union-attr]
    again = IndexedVectors(v, 1000, VectorIndex.load(saved)).propose(users[0], 20, found[0].items[:2])
    assert not set(again.items) & set(found[0].items[:2]) and set(found[0].items[2:]) <= set(again.items)
    unit = v / np.linalg.norm(v, axis=1, keepdims=True)
    assert mips_items(unit) is not None and mips_items(unit).shape == unit.shape  # text vectors: unchanged
