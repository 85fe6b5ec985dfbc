"""Product images in training: fetched, encoded by a tiny CLIP the test builds, fused into the item
vectors the content source, new products and similar products use, the weight chosen on validation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.dataset import Dataset
from shopsense.data.idmap import IdMap
from shopsense.images import CatalogImages, choose_weight, load_image_vectors, version_images
from shopsense.recommend import Recommender
from shopsense.service import engines
from shopsense.store import open_store
from shopsense.training import train
from tests.images import FAST, KINDS, TEXT_DIM, image_shop, make_tiny_clip, picture, shop_events, shop_products

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, clip: Path):
    store, settings, result = image_shop(tmp_path_factory.mktemp("home"), clip)
    yield store, settings, result
    store.close()


def test_training_fuses_the_images_into_the_item_vectors(trained) -> None:
    store, settings, result = trained
    report = result.metrics["images"]
    assert report["with_url"] == 16 and report["with_vector"] == 15
    assert report["failed_by_reason"] == {"not_found": 1}
    assert report["weight"] in (0.3, 0.5) and set(report["ndcg_by_weight"]) == {"0.3", "0.5"}
    fusion = version_images(result.path)
    assert fusion is not None and fusion.model == settings.images.model and fusion.image_dim == 16
    ids, vecs = load_image_vectors(result.path)  # type: ignore[misc]
    assert len(ids) == 15 and vecs.shape == (15, 16) and "scarf3" not in ids
    # images are not silently ignored: the content source's vectors carry them
    rec = Recommender(store, settings, result.path)
    assert rec.vectors is not None and rec.vectors.shape[1] == TEXT_DIM + 16
    row = int(rec.items.to_internal(["kettle0"])[0])
    w = fusion.weight
    np.testing.assert_allclose(np.linalg.norm(rec.vectors[row, TEXT_DIM:]), np.sqrt(w), atol=1e-4)
    missing = int(rec.items.to_internal(["scarf3"])[0])  # no picture: its text alone
    assert not rec.vectors[missing, TEXT_DIM:].any()


def test_a_shoppers_queries_meet_the_fused_vectors(trained) -> None:
    """Search queries are text vectors: they must still match products whose vectors carry pictures
    (a new shopper's query match, and the profile of one with history and searches)."""
    from shopsense.recommend import RecommendRequest

    store, settings, result = trained
    rec = Recommender(store, settings, result.path)
    new = rec.recommend(RecommendRequest(user_id="newcomer", query="red kettle", k=4))
    assert new and new[0].source == "search" and "kettle" in new[0].item_id  # the query-match fallback
    store.add_events(
        pd.DataFrame(
            {
                C.USER: ["u1", "u1"],
                C.ITEM: [None, "mug1"],
                C.EVENT_TYPE: [C.SEARCH, C.VIEW],
                C.TIMESTAMP: [1_760_000_000.0, 1_760_000_010.0],
                C.QUERY: ["blue mug", None],
            }
        )
    )
    assert rec.recommend(RecommendRequest(user_id="u1", k=4))


def test_new_products_and_similar_products_use_the_versions_fusion(trained) -> None:
    store, settings, result = trained
    (settings.media_dir / "kettle9.png").write_bytes(picture(KINDS["kettle"], seed=9))
    new = pd.DataFrame(
        {
            C.ITEM: ["kettle9"],
            C.TITLE: ["copper kettle model new"],
            C.CATEGORY: ["kettle"],
            C.IMAGE_URL: ["kettle9.png"],
        }
    )
    store.upsert_products(new)
    rec = Recommender(store, settings, result.path)
    assert rec.catalog.vectors is not None and rec.catalog.vectors.shape == (17, TEXT_DIM + 16)
    assert rec.catalog.vectors[-1, TEXT_DIM:].any()  # the new product's picture is in its vector
    served = engines.load(result.version, result.path, store, settings)
    served.refresh_catalog(search=False)
    assert served.catalog is not None and served.catalog.vectors.shape[1] == TEXT_DIM + 16
    found = served.similar("kettle0", 3)
    assert len(found) == 3 and "kettle0" not in [r.item_id for r in found]


def test_without_an_image_model_nothing_changes(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path)
    store = open_store(settings.store_url)
    store.upsert_products(shop_products(tmp_path))
    store.add_events(shop_events(12))
    result = train(store, settings, config=FAST)
    assert result.metrics["images"] is None and version_images(result.path) is None
    assert Recommender(store, settings, result.path).vectors.shape[1] == TEXT_DIM  # type: ignore[union-attr]
    store.close()


def test_a_model_that_cannot_load_leaves_the_text_vectors(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, images={"model": str(tmp_path / "no-such-clip")})
    store = open_store(settings.store_url)
    settings.media_dir.mkdir()
    store.upsert_products(shop_products(settings.media_dir))
    store.add_events(shop_events(12))
    result = train(store, settings, config=FAST)
    assert "CLIP" in result.metrics["images"]["failed"] and version_images(result.path) is None
    store.close()


def test_the_weight_is_chosen_where_the_images_tell_the_next_item() -> None:
    """Text vectors are noise, pictures say the kind, shoppers stay in one kind: the image must win."""
    rng = np.random.default_rng(0)
    n_kinds, per_kind = 4, 10
    items = [f"i{k}-{j}" for k in range(n_kinds) for j in range(per_kind)]
    text = rng.normal(size=(len(items), 8)).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    centres = np.eye(n_kinds, 6, dtype=np.float32)
    image = np.repeat(centres, per_kind, axis=0) + 0.05 * rng.normal(size=(len(items), 6)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    users, rows = [], []
    for u in range(60):
        k = u % n_kinds
        for step, j in enumerate(rng.choice(per_kind, 4, replace=False)):
            users.append(u)
            rows.append((u, k * per_kind + int(j), 1.0, float(step)))
    inter = pd.DataFrame(rows, columns=[C.USER_IDX, C.ITEM_IDX, C.WEIGHT, C.TIMESTAMP])
    ds = Dataset(
        users=IdMap([f"u{u}" for u in range(60)]),
        items=IdMap(items),
        interactions=inter,
        products=pd.DataFrame({C.ITEM: items}),
    )
    images = CatalogImages(image, np.ones(len(items), bool), "test")
    best, scores = choose_weight(ds, text, images, [0.0, 0.3, 0.5])
    assert best > 0 and scores[best] > scores[0.0] + 0.1
    # no signal in the pictures: ties go to the text alone
    flat = CatalogImages(np.ones_like(image) / np.sqrt(6), np.ones(len(items), bool), "test")
    assert choose_weight(ds, text, flat, [0.0, 0.3])[0] == 0.0


def test_an_incremental_training_keeps_the_served_versions_fusion(tmp_path: Path, clip: Path) -> None:
    store, settings, first = image_shop(tmp_path, clip)
    fusion = version_images(first.path)
    assert fusion is not None
    store.add_events(shop_events(30).assign(timestamp=lambda d: d["timestamp"] + 86_400 * 30))
    second = train(store, settings, incremental=True)
    kept = version_images(second.path)
    assert kept is not None and (kept.model_id, kept.weight) == (fusion.model_id, fusion.weight)
    assert second.metrics["images"]["weight_kept_from_served"] is True
    rec = Recommender(store, settings, second.path)
    assert rec.vectors is not None and rec.vectors.shape[1] == TEXT_DIM + 16
    # images switched off since: the served version's width still holds (the warm start needs it)
    off = settings.model_copy(update={"images": settings.images.model_copy(update={"enabled": False})})
    third = train(store, off, incremental=True)
    assert Recommender(store, off, third.path).vectors.shape[1] == TEXT_DIM + 16  # type: ignore[union-attr]
    store.close()


def test_offline_evaluation_fuses_the_pictures_as_a_training_does(trained) -> None:
    """``shopsense evaluate recommend`` (the EngineRecommender) measures the engine with its pictures."""
    from shopsense.training import EngineRecommender

    store, settings, _ = trained
    ds = Dataset.from_store(store, settings.event_weights)
    fitted = EngineRecommender(FAST, settings=settings).fit(ds)
    assert fitted.engine is not None
    assert fitted.engine.models["content"].vectors.shape[1] == TEXT_DIM + 16  # type: ignore[attr-defined]
