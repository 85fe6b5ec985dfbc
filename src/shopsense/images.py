"""Product images in the item vectors: fetched, encoded by CLIP, fused with the text vectors.

When ``[images] model`` is set and the catalog has ``image_url`` values, a training
(:func:`shopsense.training.train`) reads the images through the bounded fetch cache
(:class:`~shopsense.features.image_cache.ImageFetcher`), encodes them with CLIP
(:class:`~shopsense.features.image.ImageEncoder`; vectors cached in the store by model and image
content hash) and joins them to the text vectors with
:func:`~shopsense.features.image.combine_vectors`. The fused vectors are the item vectors the content
source, the new-product slot (cold start), the content -> collaborative mapping and similar products
use. The image's share is ``[images] weight``, or chosen on validation (:func:`choose_weight`: the
content source's next-item NDCG@10 on each shopper's last item). A fused vector starts with the text
vector (scaled), so a search query's text vector still has a meaning in that space: zeros pad it.

The version records what it fused (``images.json``: the model, the weight, what the fetches did), so
serving encodes new products with the same model and weight (:func:`version_images`). A version with
image vectors also keeps them (``image_vectors.npy`` + ``image_items.json``) for ``POST /search/image``
and text -> image retrieval in search.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.data.dataset import Dataset
from shopsense.engine_config import ContentConfig
from shopsense.features.image import ImageEncoder, ImageEncoderConfig, combine_vectors, embed_product_images
from shopsense.features.image_cache import ImageFetcher, is_missing_ref
from shopsense.models.content import content_profile

__all__ = [
    "IMAGES_FILE",
    "CatalogImages",
    "ImageFusion",
    "catalog_images",
    "choose_weight",
    "fuse",
    "fuse_as",
    "image_encoder",
    "version_images",
]

IMAGES_FILE = "images.json"
VECTORS_FILE = "image_vectors.npy"
ITEMS_FILE = "image_items.json"
FORMAT_VERSION = 1

_ENCODERS: dict[tuple[str, int], ImageEncoder] = {}
_LOCK = threading.Lock()


def image_encoder(model: str, settings: Settings) -> ImageEncoder:
    """The CLIP encoder of ``model`` (one per process: loading a model costs seconds)."""
    key = (model, settings.images.batch_size)
    with _LOCK:
        if key not in _ENCODERS:
            cfg = ImageEncoderConfig(
                model=model, batch_size=settings.images.batch_size, url_timeout_s=settings.images.timeout_s
            )
            _ENCODERS[key] = ImageEncoder(cfg)
        return _ENCODERS[key]


@dataclass
class CatalogImages:
    """Row-aligned image vectors of a catalog, which rows have one, and what reading them did."""

    vectors: np.ndarray
    valid: np.ndarray
    model_id: str
    report: dict[str, Any] = field(default_factory=dict)


def n_with_url(products: pd.DataFrame) -> int:
    """Products whose ``image_url`` is set."""
    if C.IMAGE_URL not in products.columns:
        return 0
    return int(sum(not is_missing_ref(r) for r in products[C.IMAGE_URL].tolist()))


def catalog_images(
    products: pd.DataFrame, settings: Settings, store: Any = None, *, model: str | None = None
) -> CatalogImages | None:
    """The image vectors of ``products`` with ``model`` (a version's), else the ``[images]`` model when
    images are on; None when there is no model or no product has an ``image_url``. Images that cannot
    be read are counted, never raised."""
    if model is None:
        model = settings.images.model if settings.images.active else None
    if model is None or not n_with_url(products):
        return None
    encoder = image_encoder(model, settings)
    fetcher = ImageFetcher.from_config(settings.images, settings.home)
    vectors, valid = embed_product_images(products, encoder, store, fetcher=fetcher)
    report = {"with_url": n_with_url(products), "with_vector": int(valid.sum()), **fetcher.report.as_dict()}
    return CatalogImages(vectors, valid, encoder.model_id, report)


@dataclass
class ImageFusion:
    """What a version fused: the CLIP model and the image's share of each product vector."""

    model: str
    model_id: str
    weight: float
    text_dim: int
    image_dim: int
    report: dict[str, Any] = field(default_factory=dict)

    def save(self, folder: Path) -> None:
        data = {"format_version": FORMAT_VERSION, **asdict(self)}
        (folder / IMAGES_FILE).write_text(json.dumps(data, indent=1), encoding="utf-8")


def version_images(folder: Path | None) -> ImageFusion | None:
    """The image fusion a version folder records (None: its vectors are text alone)."""
    if folder is None or not (folder / IMAGES_FILE).exists():
        return None
    data = json.loads((folder / IMAGES_FILE).read_text(encoding="utf-8"))
    data.pop("format_version", None)
    return ImageFusion(**data)


def fuse(text: np.ndarray, images: CatalogImages | None, weight: float) -> np.ndarray:
    """The product vectors: ``text`` alone when there are no images or ``weight`` is 0, else
    ``[sqrt(1-w) text, sqrt(w) image]`` (:func:`~shopsense.features.image.combine_vectors`)."""
    if images is None or weight <= 0 or not images.valid.any():
        return text
    return combine_vectors(text, images.vectors, images.valid, image_weight=weight)


def fuse_as(fusion: ImageFusion, text: np.ndarray, images: CatalogImages | None) -> np.ndarray:
    """``text`` fused as a version fused its catalog (same model, weight and width): products added
    since, with or without a readable image, land in the version's space."""
    if fusion.weight <= 0:
        return text
    if images is None or not images.valid.any():
        images = CatalogImages(np.zeros((len(text), fusion.image_dim), np.float32), np.zeros(len(text), bool), "")
    return combine_vectors(text, images.vectors, images.valid, image_weight=fusion.weight)


def save_image_vectors(folder: Path, item_ids: list[str], images: CatalogImages) -> None:
    """Keep a version's image vectors (rows with an image only) for image search."""
    rows = np.flatnonzero(images.valid)
    np.save(folder / VECTORS_FILE, np.ascontiguousarray(images.vectors[rows], dtype=np.float32))
    (folder / ITEMS_FILE).write_text(json.dumps([item_ids[i] for i in rows]), encoding="utf-8")


def load_image_vectors(folder: Path) -> tuple[list[str], np.ndarray] | None:
    """The item ids and image vectors a version kept (None when it kept none)."""
    if not (folder / VECTORS_FILE).exists():
        return None
    ids = json.loads((folder / ITEMS_FILE).read_text(encoding="utf-8"))
    return [str(i) for i in ids], np.load(folder / VECTORS_FILE)


# ---------------------------------------------------------------------------- the weight
#: shoppers whose last item the weight is chosen on (a sample: enough to tell a few weights apart)
VALIDATION_USERS = 3000


def choose_weight(
    ds: Dataset,
    text: np.ndarray,
    images: CatalogImages,
    weights: list[float],
    config: ContentConfig | None = None,
    *,
    k: int = 10,
    seed: int = 0,
) -> tuple[float, dict[float, float]]:
    """The image share among ``weights`` whose content profile ranks each shopper's last item best
    (NDCG@``k``, the earlier items as the history, seen items excluded), and the NDCG of each. Ties
    go to the smaller share: an image must earn its place."""
    holdout = _last_items(ds, VALIDATION_USERS, seed)
    scores = {}
    for w in sorted(set(weights)):
        scores[float(w)] = _ndcg(fuse(text, images, w), holdout, config or ContentConfig(), k)
    best = max(scores, key=lambda w: (round(scores[w], 6), -w))
    return best, scores


def _last_items(ds: Dataset, n_users: int, seed: int) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """(history rows, their weights, the last item) of up to ``n_users`` shoppers with a new last item."""
    from shopsense.models.base import Histories

    hist = Histories.from_dataset(ds)
    users = [u for u, h in enumerate(hist.items) if len(h) >= 2 and h[-1] not in set(h[:-1].tolist())]
    if len(users) > n_users:
        users = sorted(np.random.default_rng(seed).choice(users, n_users, replace=False).tolist())
    return [(hist.items[u][:-1], hist.weights_of(u)[:-1], int(hist.items[u][-1])) for u in users]


def _ndcg(vectors: np.ndarray, holdout: list[tuple[np.ndarray, np.ndarray, int]], cfg: ContentConfig, k: int) -> float:
    if not holdout:
        return 0.0
    total = 0.0
    for start in range(0, len(holdout), 256):
        part = holdout[start : start + 256]
        profiles = np.stack([content_profile(vectors, h, w, None, cfg) for h, w, _ in part])
        scores = profiles @ vectors.T
        for n, (h, _, target) in enumerate(part):
            row = scores[n]
            row[h] = -np.inf
            rank = int((row > row[target]).sum())
            if rank < k:
                total += 1.0 / np.log2(rank + 2)
    return total / len(holdout)


def train_images(
    ds: Dataset,
    text: np.ndarray,
    settings: Settings,
    store: Any,
    folder: Path | None,
    say: Callable[[str], None],
    *,
    keep: ImageFusion | None = None,
) -> tuple[np.ndarray, dict[str, Any] | None]:
    """A training's item vectors with the catalog's images fused in (``text`` when images are off or
    none could be read) and what the metrics say about them. ``keep`` (an incremental training: the
    served version's fusion) fixes the model and weight so old and new vectors stay comparable.
    The version ``folder`` receives the fusion and the image vectors (None: an offline evaluation
    keeps nothing)."""
    model = keep.model if keep is not None else settings.images.model
    if model is None or (keep is None and not settings.images.active):
        return text, None
    say(f"reading and encoding product images with {model}")
    metrics: dict[str, Any]
    try:
        images = catalog_images(ds.products, settings, store, model=model)
    except Exception as e:  # a model that cannot load must not cost the shop its version
        say(f"product images not used: {type(e).__name__}: {e}")
        images, metrics = None, {"failed": f"{type(e).__name__}: {e}"}
    else:
        metrics = {"with_url": 0} if images is None else {"model_id": images.model_id, **images.report}
    if images is not None:
        say(
            f"images: {images.report['with_vector']:,} of {images.report['with_url']:,} encoded, "
            f"{images.report['failed']:,} failed {images.report['failed_by_reason']}"
        )
    if keep is not None:  # the served version's width, whatever this catalog's pictures gave
        metrics.update(weight=keep.weight, weight_kept_from_served=True)
        if folder is not None:
            if images is not None and images.valid.any():
                save_image_vectors(folder, [str(i) for i in ds.items.external_ids], images)
            ImageFusion(keep.model, keep.model_id, keep.weight, keep.text_dim, keep.image_dim, metrics).save(folder)
        return fuse_as(keep, text, images), metrics
    if images is None or not images.valid.any():
        return text, metrics
    if settings.images.weight is not None:
        weight = settings.images.weight
    else:
        weight, ndcg = choose_weight(ds, text, images, settings.images.weights, settings.engine.content)
        metrics["ndcg_by_weight"] = ndcg
        say(f"image weight {weight} chosen on the content source's next items (NDCG@10 {ndcg})")
    metrics["weight"] = weight
    if folder is not None:
        save_image_vectors(folder, [str(i) for i in ds.items.external_ids], images)
        fusion = ImageFusion(model, images.model_id, weight, int(text.shape[1]), int(images.vectors.shape[1]), metrics)
        fusion.save(folder)
    return fuse(text, images, weight), metrics
