"""Search by picture and text -> image retrieval: the products' CLIP image vectors over the rows of a
search index, and the CLIP model that reads a query (its text tower) or an uploaded picture.

A model version trained with images keeps its image vectors (:mod:`shopsense.images`);
:meth:`ImageRetriever.from_version` lines them up with a search index's rows. Search
(:class:`~shopsense.search.engine.SearchEngine`) adds the products whose pictures best match the query
text as a third retriever next to BM25 and the dense text vectors, and blends the image similarity
into the score (``[search] image_weight``); ``POST /search/image`` ranks by the uploaded picture.
Products added after the version was trained get their picture's vector when the served catalog
reloads (the service passes its store).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.config import Settings
from shopsense.data.idmap import IdMap
from shopsense.features.image import load_image
from shopsense.features.image_cache import ImageFetchError, check_image_bytes
from shopsense.images import catalog_images, image_encoder, load_image_vectors, version_images
from shopsense.lru import LRU
from shopsense.topk import top_k

#: query texts whose CLIP vectors are kept in memory (queries repeat)
QUERY_CACHE = 2000


class ImageRetriever:
    """Image vectors aligned with a search index's rows (rows without a picture are zeros)."""

    def __init__(self, encoder: Any, vectors: np.ndarray, has_image: np.ndarray) -> None:
        self.encoder = encoder
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.has_image = has_image
        self._queries: LRU[np.ndarray] = LRU(QUERY_CACHE)  # thread-safe: requests run on several threads

    @classmethod
    def from_version(
        cls,
        folder: Path | None,
        settings: Settings,
        row_of: Mapping[str, int],
        n_rows: int,
        store: Any = None,
    ) -> ImageRetriever | None:
        """The retriever of a version's image vectors over an index of ``n_rows`` rows (``row_of``: id
        -> row); None when the version kept none. With ``store``, the pictures of products the version
        does not know (added since it was trained) are read and encoded with its model too."""
        fusion = version_images(folder)
        kept = load_image_vectors(folder) if folder is not None and fusion is not None else None
        if folder is None or fusion is None or kept is None:
            return None
        ids, vecs = kept
        out = np.zeros((n_rows, vecs.shape[1]), np.float32)
        has = np.zeros(n_rows, bool)
        for i, item in enumerate(ids):
            r = row_of.get(item)
            if r is not None:
                out[r], has[r] = vecs[i], True
        # products the version was trained without (a product it knew without a picture stays so:
        # a broken URL is not fetched again at every load)
        known = set(ids) | set(_version_items(folder))
        added = [item for item in row_of if item not in known]
        if store is not None and added:
            products = store.products(added)
            found = catalog_images(products, settings, store, model=fusion.model)
            if found is not None and found.vectors.shape[1] == out.shape[1]:
                for item, v, ok in zip(products[C.ITEM].astype(str), found.vectors, found.valid, strict=True):
                    if ok:
                        out[row_of[item]], has[row_of[item]] = v, True
        if not has.any():
            return None
        return cls(image_encoder(fusion.model, settings), out, has)

    # ------------------------------------------------------------------ queries
    def text_vector(self, query: str) -> np.ndarray:
        """The query through CLIP's text tower (cached)."""
        v = self._queries.get(query)
        if v is None:
            v = self.encoder.encode_texts([query])[0]
            self._queries.put(query, v)
        return v

    def image_vector(self, data: bytes, max_bytes: int) -> np.ndarray:
        """An uploaded picture's vector; :class:`ImageFetchError` when it is too large or no image."""
        check_image_bytes(data, max_bytes)
        image = load_image(data)
        if image is None:
            raise ImageFetchError("not_an_image", "the picture cannot be decoded")
        vecs = self.encoder.encode([image])
        return np.asarray(vecs, dtype=np.float32)[0]

    def similarities(self, vector: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Cosine of ``vector`` with each row's picture (all rows, or ``rows``); 0 without a picture."""
        vecs = self.vectors if rows is None else self.vectors[rows]
        return (vecs @ vector).astype(np.float32)

    def top(self, vector: np.ndarray, n: int, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Rows of the ``n`` pictures most like ``vector`` (inside ``mask``), best first, and their cosines."""
        sims = np.where(self.has_image if mask is None else self.has_image & mask, self.similarities(vector), -np.inf)
        rows, scores = top_k(sims, n)
        return rows.astype(np.int64), scores.astype(np.float32)


def _version_items(folder: Path) -> list[str]:
    """The ids of the products a version was trained on (its ``items.json``)."""
    try:
        return [str(i) for i in IdMap.load(folder / "items.json").external_ids]
    except (OSError, ValueError):
        return []


def blend_image(scores: np.ndarray, image: np.ndarray, weight: float) -> np.ndarray:
    """``(1 - weight) * scores + weight * image``, each min-max scaled over the candidates: the image
    similarity counts as much whatever scale the ranker's scores have."""
    if weight <= 0 or not len(scores):
        return scores

    def scaled(x: np.ndarray) -> np.ndarray:
        span = float(x.max() - x.min())
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    return ((1 - weight) * scaled(scores) + weight * scaled(image)).astype(np.float32)
