"""The image path with a tiny CLIP the test builds itself (no weights can be downloaded here)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopsense.exceptions import ConfigError
from shopsense.features.image import ImageEncoder, ImageEncoderConfig, combine_vectors, embed_product_images
from shopsense.store import KnowledgeStore

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer CLIP saved as a Hugging Face folder, like real weights would be."""
    from transformers import CLIPConfig, CLIPModel

    try:
        from transformers import CLIPImageProcessorPil as Processor
    except ImportError:
        from transformers import CLIPImageProcessor as Processor
    cfg = CLIPConfig(
        text_config={"vocab_size": 99, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                     "num_attention_heads": 2, "max_position_embeddings": 16, "bos_token_id": 0, "eos_token_id": 1},
        vision_config={"image_size": 32, "patch_size": 8, "hidden_size": 32, "intermediate_size": 64,
                       "num_hidden_layers": 2, "num_attention_heads": 2},
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny-clip")
    CLIPModel(cfg).eval().save_pretrained(folder)
    Processor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    from PIL import Image

    d = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(0)
    paths = []
    for i, colour in enumerate([(200, 30, 30), (30, 30, 200)]):
        arr = np.clip(np.array(colour) + rng.normal(0, 20, size=(48, 64, 3)), 0, 255).astype("uint8")
        p = d / f"p{i}.png"
        Image.fromarray(arr).save(p)
        paths.append(str(p))
    (d / "broken.jpg").write_bytes(b"not an image")
    paths.append(str(d / "broken.jpg"))
    return paths


def test_encode_images_with_tiny_clip(tiny_clip: Path, images: list[str]) -> None:
    enc = ImageEncoder(ImageEncoderConfig(model=str(tiny_clip)))
    assert enc.dim == 16 and str(tiny_clip) in enc.model_id
    v, valid = enc.encode([images[0], images[1], images[0], None, images[2]], return_valid=True)
    assert v.shape == (5, 16) and v.dtype == np.float32
    assert valid.tolist() == [True, True, True, False, False]
    np.testing.assert_allclose(np.linalg.norm(v[valid], axis=1), 1.0, atol=1e-5)
    assert not v[~valid].any()
    np.testing.assert_allclose(v[0], v[2], atol=1e-6)  # deterministic
    assert float(v[0] @ v[1]) < 0.9999  # different pictures, different vectors
    again = ImageEncoder(str(tiny_clip)).encode([f"file://{images[1]}"])
    np.testing.assert_allclose(again[0], v[1], atol=1e-5)


def test_product_images_cached_and_combined(tiny_clip: Path, images: list[str], sqlite_store: KnowledgeStore) -> None:
    enc = ImageEncoder(str(tiny_clip))
    products = pd.DataFrame({"item_id": ["a", "b", "c"], "image_url": [images[0], None, images[1]]})
    vecs, valid = embed_product_images(products, enc, sqlite_store)
    assert valid.tolist() == [True, False, True]
    calls: list[int] = []
    real = enc.encode
    enc.encode = lambda imgs, **kw: (calls.append(len(imgs)), real(imgs, **kw))[1]  # type: ignore[method-assign]
    vecs2, valid2 = embed_product_images(products, enc, sqlite_store)
    assert calls == [] and valid2.tolist() == valid.tolist()  # served from the cache
    np.testing.assert_allclose(vecs2, vecs, atol=1e-6)

    text = np.eye(3, 4, dtype=np.float32)
    both = combine_vectors(text, vecs, valid, image_weight=0.3)
    assert both.shape == (3, 20)
    np.testing.assert_allclose(np.linalg.norm(both, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(both[1, :4], text[1])  # no image: the text vector alone
    np.testing.assert_allclose(both[0, :4] @ text[0], np.sqrt(0.7), atol=1e-5)


def test_bad_model_folder_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CLIP"):
        _ = ImageEncoder(str(tmp_path / "missing")).dim


def test_pictures_are_read_a_chunk_at_a_time_and_each_encoded_once(
    tiny_clip: Path, images: list[str], sqlite_store: KnowledgeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shopsense.features.image as image_module
    from shopsense.features.image_cache import ImageFetcher

    monkeypatch.setattr(image_module, "IMAGE_CHUNK", 2)
    enc = ImageEncoder(str(tiny_clip))
    encoded: list[int] = []
    real = enc.encode
    enc.encode = lambda imgs, **kw: (encoded.append(len(imgs)), real(imgs, **kw))[1]  # type: ignore[method-assign]
    refs = [images[0], images[1], images[0], None, images[2], images[1], images[0]]
    fetcher = ImageFetcher()
    vecs, valid = embed_product_images(pd.DataFrame({"image_url": refs}), enc, sqlite_store, fetcher=fetcher)
    assert valid.tolist() == [True, True, True, False, False, True, True]
    assert sum(encoded) == 2  # two distinct pictures, whatever chunk they came in
    np.testing.assert_allclose(vecs[0], vecs[6], atol=1e-6)
    np.testing.assert_allclose(vecs[1], vecs[5], atol=1e-6)
    assert fetcher.report.fetched == 5 and dict(fetcher.report.failed) == {"not_an_image": 1}
