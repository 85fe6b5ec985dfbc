"""The Spark trainer against the local one on the sample shop: the exact sources equal entry for
entry, ALS (another solver) within a tolerance of held-out NDCG@10, one setting for both."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
import scipy.sparse as sp

from shopsense.data.dataset import Dataset
from shopsense.data.export import export_parquet
from shopsense.data.idmap import IdMap
from shopsense.engine_config import EngineConfig
from shopsense.exceptions import ConfigError
from shopsense.models.als import ALSModel
from shopsense.models.base import Histories, Model
from shopsense.ranking.pipeline import Engine, holdout_last
from shopsense.training import train
from tests.distributed.conftest import ENGINE, Trained, sample_settings, sample_store

if TYPE_CHECKING:
    from shopsense.distributed.heldout import HeldOut
    from shopsense.distributed.snapshot import SparkSnapshot

#: ALS and the sequential model on two processes: Spark's held-out NDCG@10 at least this share of
#: the local trainer's (the issue's 3%)
TOLERANCE = 0.03


@pytest.fixture(scope="module")
def local_trained(tmp_path_factory: pytest.TempPathFactory) -> Engine:
    """The local trainer's version of the same shop with the same settings."""
    settings = sample_settings(tmp_path_factory.mktemp("local") / "home")
    store = sample_store(settings)
    result = train(store, settings)
    store.close()
    return Engine.load(result.path / "engine")


def _same_matrix(a: sp.csr_matrix, b: sp.csr_matrix) -> bool:
    a, b = a.tocsr().copy(), b.tocsr().copy()
    a.sort_indices()
    b.sort_indices()
    return (
        a.shape == b.shape
        and np.array_equal(a.indptr, b.indptr)
        and np.array_equal(a.indices, b.indices)
        and np.array_equal(a.data, b.data)
    )


def test_both_trainers_build_the_same_sources_and_items(spark_trained: Trained, local_trained: Engine):
    spark_engine = Engine.load(spark_trained.result.path / "engine")
    assert (
        list(spark_engine.models)
        == list(local_trained.models)
        == ["itemknn", "covisit", "als", "sequential", "content"]
    )
    assert spark_engine.config.ease is None and spark_engine.config.returns is None
    assert spark_trained.result.metrics["trainer"] == "spark"
    items = IdMap.load(spark_trained.result.path / "items.json")
    local_items = Dataset.from_store(spark_trained.store, spark_trained.settings.event_weights).items
    assert items.external_ids.tolist() == local_items.external_ids.tolist()
    assert spark_trained.result.metrics["n_users"] == Dataset.from_store(spark_trained.store).n_users


def test_popularity_trend_and_categories_equal_the_local_ones(spark_trained: Trained, local_trained: Engine):
    spark_pop = Engine.load(spark_trained.result.path / "engine").popular
    local_pop = local_trained.popular
    assert spark_pop is not None and local_pop is not None
    for name in ("popularity", "trend", "counts", "category"):
        assert np.array_equal(getattr(spark_pop, name), getattr(local_pop, name)), name
    assert spark_pop.categories == local_pop.categories


@pytest.mark.parametrize("source", ["covisit", "itemknn"])
def test_neighbour_lists_equal_the_local_ones(spark_trained: Trained, local_trained: Engine, source: str):
    spark_sim = Engine.load(spark_trained.result.path / "engine").models[source].sim  # type: ignore[attr-defined]
    local_sim = local_trained.models[source].sim  # type: ignore[attr-defined]
    assert spark_sim.nnz > 1000
    assert _same_matrix(spark_sim, local_sim)


def test_the_executors_encode_the_product_texts_the_local_trainer_would(spark_trained: Trained, local_trained: Engine):
    from shopsense.features.embeddings import embed_products
    from shopsense.features.text import TextEncoder

    counts = spark_trained.result.metrics["text_vectors"]
    assert counts["encoded"] == counts["texts"] > 300 and counts["cached"] == 0  # a fresh home: all on Spark
    spark_vectors = Engine.load(spark_trained.result.path / "engine").models["content"].item_vectors()  # type: ignore[attr-defined]
    local_vectors = local_trained.models["content"].item_vectors()  # type: ignore[attr-defined]
    assert spark_vectors.shape == local_vectors.shape
    # int8 activations are quantised per batch: the executors' batches differ from the local ones
    cosines = (spark_vectors * local_vectors).sum(axis=1)
    assert cosines.min() > 0.99, cosines.min()
    # the store's cache now answers for every product under the local trainer's keys: nothing to encode
    settings, store = spark_trained.settings, spark_trained.store
    products = Dataset.from_store(store, settings.event_weights).products

    class Refuses(TextEncoder):
        def encode(self, texts, **_k):  # type: ignore[no-untyped-def, override]
            raise AssertionError(f"{len(texts)} text(s) not found in the cache")

    cached = embed_products(products, Refuses(settings.encoder), store)
    assert np.array_equal(cached, spark_vectors)


def test_bought_together_counts_equal_the_local_ones(spark_trained: Trained, local_trained: Engine):
    spark_c = Engine.load(spark_trained.result.path / "engine").complements
    local_c = local_trained.complements
    assert spark_c is not None and local_c is not None and local_c.pairs.nnz > 100
    assert _same_matrix(spark_c.pairs, local_c.pairs) and _same_matrix(spark_c.cat_pairs, local_c.cat_pairs)
    assert np.array_equal(spark_c.baskets, local_c.baskets) and np.array_equal(spark_c.category, local_c.category)


def _ndcg_at_10(model: Model, hist: Histories, targets: np.ndarray) -> float:
    seen = hist.matrix(model.n_items)
    top, _ = model.recommend(hist, 10, exclude=seen)
    hits = top == targets[:, None]
    gains = (hits / np.log2(np.arange(2, 12))[None, :]).sum(axis=1)
    return float(gains.mean())


@dataclass
class Split:
    """Every eligible user's last interaction held out of the sample shop, on Spark and locally."""

    config: EngineConfig
    snap: SparkSnapshot
    held: HeldOut  # the Spark split
    inner: Dataset  # the local split


@pytest.fixture(scope="module")
def split(spark: Any, spark_trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Split:
    """The held-out split both model tests below read (made once: an export and a Spark job)."""
    from shopsense.distributed.heldout import hold_out
    from shopsense.distributed.snapshot import SparkSnapshot

    settings, store = spark_trained.settings, spark_trained.store
    config = EngineConfig(**{**ENGINE, "ranker_users": 100_000})  # every eligible user held out
    folder = tmp_path_factory.mktemp("split")
    export_parquet(store, folder / "snap")
    snap = SparkSnapshot.from_parquet(spark, folder / "snap", settings.event_weights)
    held = hold_out(snap, config, folder / "work")
    inner, _, local_targets = holdout_last(Dataset.from_store(store, settings.event_weights), 100_000)
    assert sorted(local_targets.tolist()) == sorted(held.targets.tolist())  # the same held-out items
    return Split(config, snap, held, inner)


def test_spark_als_is_within_tolerance_of_the_local_als(split: Split, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from shopsense.distributed import als as spark_als_module
    from shopsense.distributed.als import fit_als

    config, held = split.config, split.held
    assert config.als is not None
    checkpoints: list[str] = []  # what MLlib wrote into the job's checkpoint folder, seen before it is removed
    remove = shutil.rmtree

    def watched_rmtree(path: Any, *a: Any, **k: Any) -> None:
        checkpoints.extend(str(f.relative_to(path)) for f in Path(path).glob("checkpoints/*/rdd-*"))
        remove(path, *a, **k)

    monkeypatch.setattr(spark_als_module.shutil, "rmtree", watched_rmtree)
    spark_als = fit_als(split.snap, config.als, tmp_path / "als", interactions=held.inner)
    # the factors' lineage was cut (a long one overflows a task's stack): MLlib checkpoints only
    # where the job gave it a folder
    assert config.als.iterations >= spark_als_module.CHECKPOINT_INTERVAL and checkpoints
    local_als = ALSModel(config.als).fit(split.inner)
    spark_ndcg = _ndcg_at_10(spark_als, held.histories, held.targets)
    local_ndcg = _ndcg_at_10(local_als, held.histories, held.targets)
    print(f"held-out NDCG@10 over {len(held.targets)} users: Spark ALS {spark_ndcg:.4f}, local ALS {local_ndcg:.4f}")
    assert local_ndcg > 0.04  # a real model (random lists score about 0.01 here), not two broken ones
    assert spark_ndcg >= (1 - TOLERANCE) * local_ndcg


def test_the_sequential_model_launched_by_spark_trains_as_the_local_one(
    split: Split, spark_trained: Trained, tmp_path: Path
):
    from shopsense.distributed.sequential import fit_sequential
    from shopsense.models.sequential import SequentialModel

    config, snap, held, inner = split.config, split.snap, split.held, split.inner
    assert config.sequential is not None
    vectors = Engine.load(spark_trained.result.path / "engine").models["content"].item_vectors()  # type: ignore[attr-defined]
    local = SequentialModel(config.sequential).fit(inner, item_vectors=vectors)
    one, windows = fit_sequential(
        snap, config.sequential, tmp_path / "one", interactions=held.inner, item_vectors=vectors, processes=1
    )
    two, _ = fit_sequential(
        snap, config.sequential, tmp_path / "two", interactions=held.inner, item_vectors=vectors, processes=2
    )
    assert windows == sum(len(s) >= 2 for s in inner.sequences())
    # one process: the local training itself (the same windows in the same order, the same seed)
    assert np.allclose(one.item_table(), local.item_table(), atol=1e-4)
    models = {"local": local, "one": one, "two": two}
    scores = {name: _ndcg_at_10(m, held.histories, held.targets) for name, m in models.items()}
    print(f"held-out NDCG@10 over {len(held.targets)} users: {scores}")
    assert scores["local"] > 0.04 and scores["one"] == pytest.approx(scores["local"], rel=1e-3)
    # two processes, each half of every batch, gradients averaged: the local trainer's steps in another
    # batch composition; within the 3% (0.058 against 0.055 here)
    assert scores["two"] >= (1 - TOLERANCE) * scores["local"]


def test_the_spark_trainer_asks_for_the_sparse_sources(spark: Any, tmp_path: Path):
    from shopsense.config import load_settings
    from shopsense.distributed.job import train_on_spark

    settings = load_settings(home=tmp_path / "home")  # sources = "all": EASE, sequential, returns on
    with pytest.raises(ConfigError, match='sources = "sparse"'):
        train_on_spark(sample_store(settings), settings, spark=spark)
