"""The catalog's content knowledge in one object: products, their vectors, the vector index and the
relation graph, built from the knowledge store through the embedding cache.

``CatalogIndex.from_store(store, encoder, cache_dir=...)`` is what entry points call: it reuses a saved
index when the catalog (ids, product texts, brands, categories, availability, prices) and the model
are unchanged, and otherwise rebuilds it, encoding only products whose text is not in the embedding
cache. Training can save the same object into a model version folder.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.products import is_null, normalize_products
from shopsense.exceptions import NotFittedError, UnknownItemError
from shopsense.features.embeddings import embed_texts
from shopsense.features.product_text import is_missing, product_texts, text_hash
from shopsense.index.relations import RelationGraph, build_relations
from shopsense.index.vector import VectorIndex

FORMAT_VERSION = 1
#: catalog columns kept next to the vectors (what filters and explanations read)
KEEP_COLUMNS = (C.ITEM, C.TITLE, C.BRAND, C.CATEGORY, C.PRICE, C.AVAILABLE)
FILTER_KEYS = ("category", "brand", "available", "min_price", "max_price", "item_ids", "exclude")


def catalog_mask(products: pd.DataFrame, filters: Mapping[str, Any] | None) -> np.ndarray:
    """Boolean mask over ``products`` rows for a filter dict.

    Keys: ``category`` (a path or list of paths; "Kitchen" matches "Kitchen > Coffee"), ``brand``
    (name or list, case-insensitive), ``available`` (bool), ``min_price`` / ``max_price``,
    ``item_ids`` (allowed ids), ``exclude`` (ids to drop).
    """
    mask = np.ones(len(products), dtype=bool)
    if not filters:
        return mask
    unknown = set(filters) - set(FILTER_KEYS)
    if unknown:
        raise ValueError(f"unknown filter {sorted(unknown)[0]!r}; valid: {', '.join(FILTER_KEYS)}")
    for key, want in filters.items():
        if want is None:
            continue
        if key == "category":
            paths = [want] if isinstance(want, str) else list(want)
            col = products.get(C.CATEGORY, pd.Series([None] * len(products))).astype(object)
            cats = [str(v).strip().lower() if isinstance(v, str) else "" for v in col]
            wants = [p.strip().lower() for p in paths]
            mask &= np.array([any(c == w or c.startswith(w + " >") for w in wants) for c in cats], dtype=bool)
        elif key == "brand":
            names = {want.lower()} if isinstance(want, str) else {str(b).lower() for b in want}
            col = products.get(C.BRAND, pd.Series([None] * len(products))).astype(object)
            mask &= np.array([isinstance(b, str) and b.lower() in names for b in col], dtype=bool)
        elif key == "available":
            col = products.get(C.AVAILABLE, pd.Series([True] * len(products)))
            mask &= col.fillna(True).astype(bool).to_numpy() == bool(want)
        elif key in ("min_price", "max_price"):
            price = pd.to_numeric(products.get(C.PRICE, pd.Series([np.nan] * len(products))), errors="coerce")
            ok = price >= float(want) if key == "min_price" else price <= float(want)
            mask &= ok.fillna(False).to_numpy(dtype=bool)
        elif key == "item_ids":
            mask &= products[C.ITEM].isin(list(want)).to_numpy(dtype=bool)
        elif key == "exclude":
            mask &= ~products[C.ITEM].isin(list(want)).to_numpy(dtype=bool)
    return mask


class CatalogIndex:
    """Products (a few columns), row-aligned vectors, a :class:`VectorIndex` and a :class:`RelationGraph`."""

    def __init__(
        self,
        products: pd.DataFrame,
        vectors: np.ndarray,
        index: VectorIndex,
        relations: RelationGraph | None,
        *,
        model_id: str,
    ) -> None:
        self.products = products.reset_index(drop=True)
        self.vectors = vectors
        self.index = index
        self.relations = relations
        self.model_id = model_id
        self._row = {i: r for r, i in enumerate(self.products[C.ITEM])}
        self._groups: dict[str, list[str | None]] = {}

    def __len__(self) -> int:
        return len(self.products)

    def row(self, item_id: str) -> int:
        try:
            return self._row[item_id]
        except KeyError:
            raise UnknownItemError(f"unknown item {item_id!r}: not in the catalog") from None

    def vector(self, item_id: str) -> np.ndarray:
        return self.vectors[self.row(item_id)]

    def group_values(self, col: str) -> list[str | None]:
        """Each row's brand / category (any column) as clean text, None when missing (cached)."""
        if col not in self._groups:
            vals = self.products[col] if col in self.products.columns else [None] * len(self)
            self._groups[col] = [None if is_missing(v) else str(v).strip() for v in vals]
        return self._groups[col]

    def mask(self, filters: Mapping[str, Any] | None) -> np.ndarray:
        """:func:`catalog_mask` over this catalog (aligned with the index ids)."""
        return catalog_mask(self.products, filters)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        products: pd.DataFrame,
        encoder: Any,
        store: Any = None,
        *,
        template: str | None = None,
        progress: bool = False,
        relations: bool = True,
        vectors: np.ndarray | None = None,
    ) -> CatalogIndex:
        """Encode the catalog (through the store's cache when given) and index it.

        ``vectors`` (row-aligned) skips encoding, e.g. text vectors combined with image vectors.
        """
        if products.empty:
            raise NotFittedError("the catalog is empty: ingest products first")
        if template is None:
            template = getattr(getattr(encoder, "config", None), "template", None)
        if vectors is None:
            vectors = embed_texts(product_texts(products, template), encoder, store, progress=progress)
        keep = normalize_products(products)[list(KEEP_COLUMNS)]
        ids = keep[C.ITEM].astype(str).tolist()
        index = VectorIndex().build(vectors, ids)
        graph = None
        if relations:
            graph = build_relations(ids, vectors, brands=keep.get(C.BRAND), categories=keep.get(C.CATEGORY))
        return cls(keep, vectors, index, graph, model_id=encoder.model_id)

    @classmethod
    def from_store(
        cls,
        store: Any,
        encoder: Any,
        *,
        cache_dir: str | Path | None = None,
        progress: bool = False,
        vectors: Callable[[pd.DataFrame], np.ndarray | None] | None = None,
        vectors_id: str = "",
    ) -> CatalogIndex:
        """The catalog in ``store`` indexed; reuses ``cache_dir`` when nothing changed, else rebuilds it.

        ``vectors`` (the products -> their row-aligned vectors) replaces the text encoding, e.g. text
        vectors with image vectors fused in; ``vectors_id`` names how they are made (the saved copy is
        reused only for the same one, and, when given, the same image URLs)."""
        products = store.products()
        if products.empty:
            raise NotFittedError("the catalog is empty: ingest products first (shopsense ingest products FILE)")
        template = getattr(getattr(encoder, "config", None), "template", None)
        model_id = encoder.model_id
        if vectors_id:
            urls = products[C.IMAGE_URL].astype(str).tolist() if C.IMAGE_URL in products.columns else []
            model_id = f"{model_id}|{vectors_id}|{text_hash(chr(31).join(urls))}"
        fp = fingerprint(products, model_id, template)
        if cache_dir is not None and (Path(cache_dir) / "params.json").exists():
            try:
                cached = json.loads((Path(cache_dir) / "params.json").read_text())
                if cached.get("fingerprint") == fp and cached.get("format_version") == FORMAT_VERSION:
                    return cls.load(cache_dir)
            except (OSError, ValueError, NotFittedError):
                pass  # unreadable cache: rebuild below
        given = vectors(products) if vectors is not None else None
        cat = cls.build(products, encoder, store, template=template, progress=progress, vectors=given)
        if cache_dir is not None:
            cat.save(cache_dir, fingerprint=fp)
        return cat

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path, *, fingerprint: str | None = None) -> Path:
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        self.products.to_parquet(d / "products.parquet", index=False)
        np.save(d / "vectors.npy", self.vectors)
        self.index.save(d / "vector_index")
        if self.relations is not None:
            self.relations.save(d / "relations")
        params = {
            "format_version": FORMAT_VERSION,
            "model_id": self.model_id,
            "count": len(self),
            "fingerprint": fingerprint,
        }
        # params.json last: a folder without it is incomplete and never loaded
        (d / "params.json").write_text(json.dumps(params, indent=1))
        return d

    @classmethod
    def load(cls, path: str | Path) -> CatalogIndex:
        d = Path(path)
        try:
            params = json.loads((d / "params.json").read_text())
        except FileNotFoundError as e:
            raise NotFittedError(f"no catalog index at {d}") from e
        products = pd.read_parquet(d / "products.parquet")
        rel = RelationGraph.load(d / "relations") if (d / "relations" / "params.json").exists() else None
        return cls(
            products, np.load(d / "vectors.npy"), VectorIndex.load(d / "vector_index"), rel, model_id=params["model_id"]
        )


def fingerprint(products: pd.DataFrame, model_id: str, template: str | None = None) -> str:
    """Hash of everything a saved CatalogIndex depends on: model, texts and filterable columns."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{FORMAT_VERSION}|{model_id}|{template}".encode())
    texts = product_texts(products, template)
    norm = normalize_products(products)
    cols = [["" if is_null(v) else str(v) for v in norm[c].tolist()] for c in KEEP_COLUMNS]
    for t, *vals in zip(texts, *cols, strict=True):
        h.update(text_hash(t).encode())
        h.update("\x1f".join(vals).encode("utf-8", "surrogatepass"))
    return h.hexdigest()
