"""Text -> image retrieval in hybrid search: a version trained with pictures adds a third retriever
(CLIP's text tower over the products' image vectors) and blends its similarity into the score."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopsense.search.images import ImageRetriever, blend_image
from shopsense.service import engines
from tests.images import image_shop, make_tiny_clip

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    clip = make_tiny_clip(tmp_path_factory.mktemp("clip"))
    store, settings, result = image_shop(tmp_path_factory.mktemp("home"), clip)
    yield engines.load(result.version, result.path, store, settings)
    store.close()


def test_a_version_with_pictures_searches_them_too(served) -> None:
    searcher = served.searcher
    images = searcher.images
    assert isinstance(images, ImageRetriever)
    assert images.has_image.sum() == 15  # scarf3's picture is missing
    q = images.text_vector("red kettle")
    assert q.shape == (16,) and abs(float(np.linalg.norm(q)) - 1) < 1e-5
    assert images.text_vector("red kettle") is q  # cached
    # the picture retriever proposes what the text does not find: a product text search misses...
    searcher.use_images(None)
    text_only = searcher.search("red kettle", k=20).items
    searcher.use_images(images)
    target = next(
        i for i in searcher.index.item_ids if i not in text_only and images.has_image[searcher.index.row_of[i]]
    )
    # ...whose picture the query "looks like"
    images._queries.put("red kettle", images.vectors[searcher.index.row_of[target]])
    cand = searcher.candidates("red kettle")
    assert cand.image is not None and cand.from_image is not None
    assert target in [str(searcher.index.item_ids[r]) for r in cand.rows[cand.from_image]]
    result = searcher.search("red kettle", k=20)
    fields = dict(zip(result.items, result.matched_fields, strict=True))
    assert target in fields and "image" in fields[target]


def test_pictures_never_answer_alone(served) -> None:
    """A query no text matches is relaxed or empty as before, not filled with look-alike pictures."""
    searcher = served.searcher
    cand = searcher.candidates("zzqxv")
    assert cand.from_image is None or not cand.from_image.any()


def test_blend_image_scales_both_parts() -> None:
    s = np.array([10.0, 5.0, 0.0], np.float32)
    img = np.array([0.1, 0.3, 0.2], np.float32)
    np.testing.assert_allclose(blend_image(s, img, 0.5), [0.5, 0.75, 0.25])
    assert blend_image(s, img, 0.0) is s


def test_the_library_and_cli_search_use_the_served_versions_pictures_too(served) -> None:
    from shopsense.search import load_or_build

    engine = load_or_build(served.store, served.settings)
    assert isinstance(engine.images, ImageRetriever) and engine.images.has_image.sum() == 15
    assert load_or_build(served.store, served.settings, active_links=False).images is None


def test_products_added_since_training_get_their_pictures_searched(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pandas as pd

    import shopsense.search.images as search_images
    from shopsense import columns as C
    from tests.images import KINDS, picture

    read: list[list[str]] = []
    real = search_images.catalog_images

    def spy(products, *a, **kw):  # type: ignore[no-untyped-def]
        read.append(sorted(products[C.ITEM]))
        return real(products, *a, **kw)

    monkeypatch.setattr(search_images, "catalog_images", spy)

    store, settings, result = image_shop(tmp_path / "home", make_tiny_clip(tmp_path / "clip"))
    served = engines.load(result.version, result.path, store, settings)
    (settings.media_dir / "lamp9.png").write_bytes(picture(KINDS["lamp"], seed=9))
    store.upsert_products(
        pd.DataFrame({C.ITEM: ["lamp9"], C.TITLE: ["brass lamp new"], C.CATEGORY: ["lamp"], C.IMAGE_URL: ["lamp9.png"]})
    )
    served.refresh_catalog()
    images = served.searcher.images
    assert images is not None and images.has_image[served.searcher.index.row_of["lamp9"]]
    found = served.search_image((settings.media_dir / "lamp9.png").read_bytes(), 1)
    assert [r.item_id for r in found] == ["lamp9"]
    # only the new product's picture was read: scarf3's (missing since training) is not tried again
    assert read and all(r == ["lamp9"] for r in read)
    store.close()
