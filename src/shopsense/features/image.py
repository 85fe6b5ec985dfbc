"""Image encoder (CLIP) behind the same interface as :class:`~shopsense.features.text.TextEncoder`.

Two backends read real CLIP weights from a local folder or file (nothing is downloaded unless the
user's own environment allows it):

- ``backend="transformers"`` (default): a Hugging Face CLIP folder (``config.json``,
  ``model.safetensors``, ``preprocessor_config.json``), e.g. a copy of ``openai/clip-vit-base-patch32``
  made with ``huggingface-cli download openai/clip-vit-base-patch32 --local-dir ./clip-b32`` on a
  machine with internet. Needs only torch, transformers and Pillow.
- ``backend="open_clip"``: ``model="ViT-B-32"`` plus ``pretrained="/path/open_clip_pytorch_model.bin"``
  (or a pretrained tag when the hub is reachable). Needs the ``image`` extra (``open_clip_torch``,
  which imports torchvision: install a torchvision built for your torch).

Images are local paths, ``file://`` / ``http(s)://`` URLs, raw bytes or PIL images. An image that is
missing or cannot be read gets a zero vector; :meth:`ImageEncoder.encode` reports which rows are valid
via ``return_valid=True``. :func:`combine_vectors` joins text and image vectors into one product vector.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from shopsense.config import StrictModel
from shopsense.exceptions import ConfigError
from shopsense.features.image_cache import ImageFetcher

_MODEL_CACHE: dict[tuple[str, str, str | None], tuple[Any, Any]] = {}
_LOCK = threading.Lock()


class ImageEncoderConfig(StrictModel):
    """Which CLIP model encodes product images (``model`` is a local folder, or an open_clip architecture)."""

    model: str
    backend: Literal["transformers", "open_clip"] = "transformers"
    pretrained: str | None = Field(None, description="open_clip: weights file or tag")
    batch_size: int = Field(32, ge=1)
    url_timeout_s: float = Field(10.0, gt=0)


def load_image(ref: Any, timeout: float = 10.0) -> Any:
    """A PIL RGB image from a path, URL, bytes or PIL image; None when missing or unreadable."""
    from PIL import Image, UnidentifiedImageError

    if ref is None or (isinstance(ref, float) and np.isnan(ref)) or (isinstance(ref, str) and not ref.strip()):
        return None
    try:
        if isinstance(ref, Image.Image):
            img = ref
        elif isinstance(ref, bytes | bytearray):
            img = Image.open(io.BytesIO(ref))
        elif isinstance(ref, str) and ref.startswith(("http://", "https://")):
            import urllib.request

            with urllib.request.urlopen(ref, timeout=timeout) as r:  # noqa: S310 - the catalog's own image URLs
                img = Image.open(io.BytesIO(r.read()))
        else:
            path = str(ref)[7:] if str(ref).startswith("file://") else ref
            img = Image.open(Path(path))
        return img.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError):
        return None


class ImageEncoder:
    """Encode product images to L2-normalised float32 vectors with a CLIP model, loaded lazily once per process."""

    def __init__(self, config: ImageEncoderConfig | str, *, device: str = "cpu") -> None:
        self.config = ImageEncoderConfig(model=config) if isinstance(config, str) else config
        self.device = device
        self._loaded: tuple[Any, Any] | None = None
        self._tok: Any = None

    @property
    def model_id(self) -> str:
        """Stable name of the model (the embedding-cache key)."""
        c = self.config
        p = Path(c.model)
        name = str(p.resolve()) if p.exists() else c.model
        extra = f"+{c.pretrained}" if c.pretrained else ""
        return f"image:{c.backend}:{name}{extra}"

    def _model(self) -> tuple[Any, Any]:
        if self._loaded is None:
            key = (self.config.backend, self.config.model, self.config.pretrained)
            with _LOCK:
                if key not in _MODEL_CACHE:
                    _MODEL_CACHE[key] = self._load()
                self._loaded = _MODEL_CACHE[key]
        return self._loaded

    def _load(self) -> tuple[Any, Any]:
        c = self.config
        if c.backend == "open_clip":
            try:
                import open_clip
            except ImportError as e:
                raise ConfigError(
                    "backend 'open_clip' needs the image extra: pip install 'shopsense[image]' "
                    f"(open_clip_torch and a torchvision matching your torch): {e}"
                ) from e
            model, _, preprocess = open_clip.create_model_and_transforms(
                c.model, pretrained=c.pretrained, device=self.device
            )
            return model.eval(), preprocess
        import transformers

        # the PIL processor where it exists: transformers 5's default "fast" one needs torchvision
        processor_cls: Any = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
        try:
            model = transformers.CLIPModel.from_pretrained(c.model)
            model = model.to(self.device).eval()  # type: ignore[arg-type]
            processor = processor_cls.from_pretrained(c.model)
        except (OSError, ValueError) as e:
            raise ConfigError(
                f"cannot load CLIP model from {c.model!r}: {e}. Give a local Hugging Face CLIP folder."
            ) from e
        return model, processor

    @property
    def dim(self) -> int:
        model, _ = self._model()
        if self.config.backend == "open_clip":
            return int(model.visual.output_dim)
        return int(model.config.projection_dim)

    def _features(self, images: list[Any]) -> np.ndarray:
        import torch

        model, prep = self._model()
        with torch.inference_mode():
            if self.config.backend == "open_clip":
                batch = torch.stack([prep(im) for im in images]).to(self.device)
                out = model.encode_image(batch)
            else:
                inputs = prep(images=images, return_tensors="pt").to(self.device)
                out = model.get_image_features(**inputs)
                # transformers >= 5 returns an output object whose pooler_output is the projection
                out = out if isinstance(out, torch.Tensor) else out.pooler_output
        return out.float().cpu().numpy()

    def encode(
        self,
        images: list[Any],
        *,
        batch_size: int | None = None,
        progress: bool = False,
        return_valid: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """(n, dim) float32 unit vectors; rows of missing or unreadable images are zeros.

        With ``return_valid=True`` also returns the boolean mask of rows that had an image.
        """
        bs = batch_size or self.config.batch_size
        loaded = [load_image(r, self.config.url_timeout_s) for r in images]
        valid = np.array([im is not None for im in loaded], dtype=bool)
        out = np.zeros((len(images), self.dim if len(images) else 0), dtype=np.float32)
        rows = np.flatnonzero(valid)
        starts = range(0, len(rows), bs)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="encoding images", unit="batch")
        for s in starts:
            idx = rows[s : s + bs]
            feats = self._features([loaded[i] for i in idx])
            out[idx] = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
        return (out, valid) if return_valid else out

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        """(n, dim) float32 unit vectors of texts through CLIP's text tower: search queries in the
        image space (text -> image retrieval)."""
        import torch

        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model, _ = self._model()
        tokenizer = self._tokenizer()
        with torch.inference_mode():
            if self.config.backend == "open_clip":
                out = model.encode_text(tokenizer(list(texts)).to(self.device))
            else:
                limit = int(model.config.text_config.max_position_embeddings)
                inputs = tokenizer(
                    list(texts), padding=True, truncation=True, max_length=limit, return_tensors="pt"
                ).to(self.device)
                out = model.get_text_features(**inputs)
                out = out if isinstance(out, torch.Tensor) else out.pooler_output
        feats = out.float().cpu().numpy()
        return (feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)).astype(np.float32)

    def _tokenizer(self) -> Any:
        if self._tok is None:
            c = self.config
            if c.backend == "open_clip":
                import open_clip

                self._tok = open_clip.get_tokenizer(c.model)
            else:
                import transformers

                try:
                    self._tok = transformers.AutoTokenizer.from_pretrained(c.model)
                except (OSError, ValueError) as e:
                    raise ConfigError(
                        f"cannot load the CLIP tokenizer from {c.model!r}: {e}. The folder needs the "
                        "tokenizer files (huggingface-cli download copies them)."
                    ) from e
        return self._tok


def combine_vectors(
    text: np.ndarray, image: np.ndarray, valid: np.ndarray | None = None, *, image_weight: float = 0.3
) -> np.ndarray:
    """One unit vector per product: ``[sqrt(1-w) * text, sqrt(w) * image]`` where an image exists.

    Text and image models live in different spaces (and dimensions), so the parts are concatenated,
    not added; the weights make the result unit-length and set how much the image counts in a cosine.
    A product without an image gets ``[text, 0]``: its cosine with another product is the text cosine
    scaled by ``sqrt(1-w)`` when the other has an image, and the plain text cosine when neither does.
    """
    if not 0.0 <= image_weight <= 1.0:
        raise ValueError("image_weight must be between 0 and 1")
    if len(text) != len(image):
        raise ValueError(f"{len(text)} text vectors but {len(image)} image vectors")
    if valid is None:
        valid = np.linalg.norm(image, axis=1) > 0
    wt = np.where(valid, np.sqrt(1.0 - image_weight), 1.0).astype(np.float32)[:, None]
    wi = np.where(valid, np.sqrt(image_weight), 0.0).astype(np.float32)[:, None]
    out = np.hstack([text * wt, image * wi]).astype(np.float32)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def clear_model_cache() -> None:
    with _LOCK:
        _MODEL_CACHE.clear()


#: pictures read and encoded at a time (a catalog's pictures are never all in memory at once)
IMAGE_CHUNK = 256


def embed_product_images(
    products: Any,
    encoder: ImageEncoder,
    store: Any = None,
    *,
    fetcher: ImageFetcher | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Image vectors of a catalog's ``image_url`` column (row-aligned) and the mask of rows that have one
    (no columns when no image could be read: the model is not even loaded). Pictures are read and
    encoded :data:`IMAGE_CHUNK` at a time.

    Images are read through ``fetcher`` (:class:`~shopsense.features.image_cache.ImageFetcher`: its
    limits, its disk cache, its count of failures; a fetcher without a disk cache when None) and their
    vectors cached in the store's embedding cache by image model and a hash of the image's bytes: the
    same picture under two URLs is encoded once, a changed picture under the same URL again. Images
    that cannot be read get no vector (and are tried again next time).
    """
    from shopsense.features.product_text import text_hash

    fetcher = fetcher if fetcher is not None else ImageFetcher()
    refs = list(products["image_url"]) if "image_url" in products.columns else [None] * len(products)
    vectors: dict[int, np.ndarray] = {}
    done: dict[str, np.ndarray | None] = {}  # picture hash -> its vector (None: it did not decode)
    starts = range(0, len(refs), IMAGE_CHUNK)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="product images", unit="chunk")
    for s in starts:  # a chunk of pictures in memory at a time, not the catalog's
        rows = range(s, min(s + IMAGE_CHUNK, len(refs)))
        data = {i: b for i, b in zip(rows, fetcher.fetch_many([refs[i] for i in rows]), strict=True) if b is not None}
        keys = {i: text_hash("image:" + hashlib.sha256(b).hexdigest()) for i, b in data.items()}
        wanted = sorted({k for k in keys.values() if k not in done})
        if store is not None and wanted:
            done.update(store.get_embeddings(encoder.model_id, wanted))
        todo: dict[str, int] = {}  # each new picture once, however many products show it
        for i, k in keys.items():
            if k not in done:
                todo.setdefault(k, i)
        if todo:
            new, ok = encoder.encode([data[i] for i in todo.values()], return_valid=True)
            fresh = {k: new[n] for n, k in enumerate(todo) if ok[n]}
            done.update({k: fresh.get(k) for k in todo})
            if store is not None and fresh:
                store.put_embeddings(encoder.model_id, list(fresh), np.stack(list(fresh.values())))
        for i, k in keys.items():
            v = done.get(k)
            if v is not None:
                vectors[i] = v
    dim = len(next(iter(vectors.values()))) if vectors else 0
    out = np.zeros((len(refs), dim), dtype=np.float32)
    valid = np.zeros(len(refs), dtype=bool)
    for i, v in vectors.items():
        out[i], valid[i] = v, True
    return out, valid
