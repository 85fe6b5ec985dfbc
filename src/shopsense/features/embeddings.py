"""Product vectors through the knowledge store's embedding cache.

The cache is keyed by ``encoder.model_id`` and :func:`text_hash` of the product text, so
re-ingesting a catalog re-encodes only products whose text changed, and two products with the
same text are encoded once.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import pandas as pd

from shopsense.features.product_text import product_texts, text_hash


class Encoder(Protocol):
    """What :func:`embed_texts` needs from an encoder (``TextEncoder`` fits)."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def encode(self, texts: list[str], *, batch_size: int | None = None, progress: bool = False) -> np.ndarray: ...


class EmbeddingCache(Protocol):
    """The two store methods the cache uses (``KnowledgeStore`` fits)."""

    def get_embeddings(self, model_id: str, text_hashes: list[str]) -> dict[str, np.ndarray]: ...

    def put_embeddings(self, model_id: str, text_hashes: list[str], vectors: np.ndarray) -> int: ...


class QueryCache(EmbeddingCache, Protocol):
    """The cache of query vectors adds the store's keyed hash of a query (``KnowledgeStore`` fits)."""

    def query_keys(self, queries: list[str]) -> list[str]: ...


def embed_texts(
    texts: list[str], encoder: Encoder, store: EmbeddingCache | None = None, *, progress: bool = False
) -> np.ndarray:
    """Vectors for ``texts`` (row-aligned), encoding only texts not already in the store's cache."""
    n = len(texts)
    hashes = [text_hash(t) for t in texts]
    unique = list(dict.fromkeys(hashes))
    found: dict[str, np.ndarray] = {}
    if store is not None and unique:
        found = store.get_embeddings(encoder.model_id, unique)
    todo = [h for h in unique if h not in found]
    if todo:
        first_text = dict(zip(hashes, texts, strict=True))
        new = encoder.encode([first_text[h] for h in todo], progress=progress)
        if store is not None:
            store.put_embeddings(encoder.model_id, todo, new)
        found.update(zip(todo, new, strict=True))
    if n == 0:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    dims = {v.shape[0] for v in found.values()}
    if len(dims) != 1:
        raise ValueError(f"embedding cache for {encoder.model_id!r} holds vectors of several sizes {sorted(dims)}")
    return np.ascontiguousarray(np.stack([found[h] for h in hashes]), dtype=np.float32)


def embed_products(
    products: pd.DataFrame,
    encoder: Encoder,
    store: EmbeddingCache | None = None,
    progress: bool = False,
    *,
    template: str | None = None,
) -> np.ndarray:
    """One L2-normalised vector per product row (same order), via the store's embedding cache.

    ``template`` defaults to the encoder's configured template (``EncoderConfig.template``).
    """
    if template is None:
        template = getattr(getattr(encoder, "config", None), "template", None)
    return embed_texts(product_texts(products, template), encoder, store, progress=progress)
