"""The search index: one catalog's data and structures, built, saved and loaded here.

It holds the products search returns and filters on, their row lookup, the BM25 index and each
field's tokens, the product vectors and their vector index, the filter columns (facets), the
spelling corrector, autocomplete's entries and popularity. Querying it is
:class:`~shopsense.search.engine.SearchEngine`'s job.

A saved search is a folder of plain files::

    params.json         format version, search config, encoder model id
    products.parquet    the catalog columns search returns and filters on
    tokens.json         analysed tokens of each indexed field, per product
    bm25/               the field-weighted BM25 index (bm25s .npy/.json files)
    vectors/            the vector index (VectorIndex files), when semantic search is on
    popularity.npy      per-product interaction counts
    spelling.json       catalog vocabulary with frequencies
    autocomplete.json   suggestion entries
    reranker/           LightGBM text model + params.json, when trained

A folder is written next to its destination and renamed into place, so a crash never leaves a
half-written search where a complete one was.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.artifacts import read_params
from shopsense.config import SearchConfig
from shopsense.exceptions import NotFittedError, ShopsenseError
from shopsense.index.analyzer import normalize_text
from shopsense.index.bm25 import BM25Index, field_text
from shopsense.index.spelling import SpellCorrector
from shopsense.index.vector import VectorIndex
from shopsense.search.autocomplete import Autocomplete
from shopsense.search.filters import CatalogColumns
from shopsense.search.reranker import Reranker
from shopsense.search.tokens import CatalogTokens

__all__ = ["FORMAT_VERSION", "KEEP_COLUMNS", "SavedSearch", "SearchIndex", "built_encoder", "is_saved", "load_search"]

FORMAT_VERSION = 1
KEEP_COLUMNS = (C.ITEM, C.TITLE, C.BRAND, C.CATEGORY, C.PRICE, C.AVAILABLE)


class SearchIndex:
    """One catalog indexed for search (see the module docstring for what it holds).

    >>> index = SearchIndex.build(products, config=settings.search, encoder=TextEncoder())
    >>> index.row_of["p1"], index.n_products
    """

    def __init__(self, bm25: BM25Index | None = None) -> None:
        self.products = pd.DataFrame(columns=list(KEEP_COLUMNS))
        self.item_ids = np.zeros(0, dtype=object)
        self.row_of: dict[str, int] = {}
        self.bm25 = bm25 if bm25 is not None else BM25Index()
        self.tokens: dict[str, list[list[str]]] = {}
        self.title_norm = np.zeros(0, dtype=object)  # normalised titles (the phrase feature)
        self.vectors: np.ndarray | None = None
        self.vindex: VectorIndex | None = None
        self.speller: SpellCorrector | None = None
        self.autocompleter = Autocomplete({})
        self.columns = CatalogColumns(self.products)
        self.popularity = np.zeros(0, dtype=np.float32)
        self._catalog_tokens: CatalogTokens | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        products: pd.DataFrame,
        *,
        config: SearchConfig | None = None,
        encoder: Any = None,
        store: Any = None,
        vectors: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
        queries: Sequence[str] = (),
    ) -> SearchIndex:
        """Index a catalog. ``vectors`` (row-aligned) skip encoding; otherwise ``encoder`` embeds the
        products through the store's embedding cache. Without both, search is lexical only.
        ``queries`` (past searches) feed autocomplete. Of ``config``, ``bm25`` shapes the index,
        ``semantic_candidates = 0`` leaves the vectors out and ``spelling = false`` the speller."""
        config = config or SearchConfig()
        if products.empty:
            raise ShopsenseError("cannot build a search engine over an empty catalog")
        if products[C.ITEM].duplicated().any():
            raise ShopsenseError("product ids must be unique")
        idx = cls(BM25Index(config.bm25))
        idx.products = pd.DataFrame({c: products[c] if c in products.columns else None for c in KEEP_COLUMNS})
        idx.products[C.ITEM] = idx.products[C.ITEM].astype(str)
        idx.item_ids = idx.products[C.ITEM].to_numpy(dtype=object)
        idx.row_of = {str(i): r for r, i in enumerate(idx.item_ids)}
        analyzer = idx.bm25.analyzer
        weights = config.bm25.field_weights
        idx.tokens = {
            f: [analyzer.tokens(field_text(v)) for v in products[f].tolist()]
            for f in weights
            if weights[f] > 0 and f in products.columns
        }
        idx.bm25.fit_tokens(idx.tokens, len(products))
        idx.title_norm = _phrases(idx.products[C.TITLE].tolist())
        if vectors is None and encoder is not None:
            from shopsense.features.embeddings import embed_products

            vectors = embed_products(products, encoder, store)
        if vectors is not None and config.semantic_candidates > 0:
            idx._set_vectors(vectors, exact_max=config.dense_exact_max)
        idx.popularity = (
            np.zeros(len(products), np.float32) if popularity is None else np.asarray(popularity, np.float32)
        )
        if config.spelling:
            texts: list[str] = []
            for f in idx.tokens:
                texts.extend(field_text(v) for v in products[f].tolist())
            idx.speller = SpellCorrector.from_texts(texts, known=idx._known_word)
        idx.autocompleter = Autocomplete.build(idx.products[C.TITLE].tolist(), queries, idx.popularity)
        idx.columns = CatalogColumns(idx.products)
        return idx

    def _set_vectors(self, vectors: np.ndarray, *, exact_max: int) -> None:
        v = np.ascontiguousarray(vectors, dtype=np.float32)
        if len(v) != len(self.item_ids):
            raise ShopsenseError(f"{len(v)} product vectors for {len(self.item_ids)} products")
        self.vectors = v
        self.vindex = VectorIndex(exact_threshold=max(exact_max, 1)).build(v)

    def _known_word(self, word: str) -> bool:
        """A word the speller must leave alone: all its tokens are in the BM25 vocabulary."""
        toks = self.bm25.analyzer.tokens(word)
        return bool(toks) and all(self.bm25.has_token(t) for t in toks)

    # ------------------------------------------------------------------ reading
    @property
    def n_products(self) -> int:
        return len(self.item_ids)

    def check(self) -> None:
        """Raise :class:`NotFittedError` when nothing is indexed."""
        if self.n_products == 0:
            raise NotFittedError("the search engine is empty: build() or load() it first")

    @property
    def catalog_tokens(self) -> CatalogTokens:
        """Each product's tokens as integer ids (built on first use; the service's warm-up does it)."""
        if self._catalog_tokens is None:
            self._catalog_tokens = CatalogTokens.build(self.tokens, self.n_products)
        return self._catalog_tokens

    # ------------------------------------------------------------------ files
    def save(
        self, path: str | Path, *, config: SearchConfig, encoder: str | None = None, reranker: Reranker | None = None
    ) -> Path:
        """Write the index as a folder of plain files, with the searcher's ``config``, the model id of
        its ``encoder`` and its ``reranker`` (when trained), replacing a search folder at ``path``."""
        self.check()
        path = Path(path)
        if path.exists() and any(path.iterdir()) and not is_saved(path):
            # never replace a folder that is not a search engine (it would be deleted with its content)
            raise ShopsenseError(f"{path} exists and is not a search engine folder; choose another path")
        # names of this call's own: two processes saving at once must not write into one folder
        tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir(parents=True)
        params = {
            "format_version": FORMAT_VERSION,
            "config": config.model_dump(),
            "encoder": encoder,
            "n_products": self.n_products,
        }
        (tmp / "params.json").write_text(json.dumps(params, indent=1), encoding="utf-8")
        self.products.to_parquet(tmp / "products.parquet", index=False)
        (tmp / "tokens.json").write_text(json.dumps(self.tokens, ensure_ascii=False), encoding="utf-8")
        self.bm25.save(tmp / "bm25")
        if self.vindex is not None:
            self.vindex.save(tmp / "vectors")
        np.save(tmp / "popularity.npy", self.popularity)
        if self.speller is not None:
            self.speller.save(tmp / "spelling.json")
        self.autocompleter.save(tmp / "autocomplete.json")
        if reranker is not None and reranker.fitted:
            reranker.save(tmp / "reranker")
        if path.exists():
            old = path.with_name(f"{path.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            path.rename(old)
            tmp.rename(path)
            shutil.rmtree(old)
        else:
            tmp.rename(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SearchIndex:
        """Read the index of a folder written by :meth:`save` (:func:`load_search` reads the rest)."""
        return load_search(path).index

    @classmethod
    def _read(cls, path: Path) -> SearchIndex:
        idx = cls(BM25Index.load(path / "bm25"))
        idx.products = pd.read_parquet(path / "products.parquet")
        idx.item_ids = idx.products[C.ITEM].astype(str).to_numpy(dtype=object)
        idx.row_of = {i: r for r, i in enumerate(idx.item_ids)}
        idx.tokens = json.loads((path / "tokens.json").read_text(encoding="utf-8"))
        idx.title_norm = _phrases(idx.products[C.TITLE].tolist())
        if (path / "vectors").exists():
            idx.vindex = VectorIndex.load(path / "vectors")
            idx.vectors = np.ascontiguousarray(idx.vindex.vectors, dtype=np.float32)
        idx.popularity = np.load(path / "popularity.npy")
        if (path / "spelling.json").exists():
            idx.speller = SpellCorrector.load(path / "spelling.json", known=idx._known_word)
        idx.autocompleter = Autocomplete.load(path / "autocomplete.json")
        idx.columns = CatalogColumns(idx.products)
        return idx


def _phrases(titles: list[Any]) -> np.ndarray:
    """Normalised titles with single spaces (what the phrase feature looks for the query in), as an
    object array: a query's candidates are one fancy index."""
    return np.array([" ".join(normalize_text(field_text(t)).split()) for t in titles], dtype=object)


@dataclass
class SavedSearch:
    """What a search folder holds: the index and the searcher's settings and re-ranker."""

    index: SearchIndex
    config: SearchConfig
    encoder: str | None  # model id of the text encoder the vectors were made with
    reranker: Reranker | None


def is_saved(path: Path) -> bool:
    """Whether ``path`` is a search folder written by :meth:`SearchIndex.save`."""
    return (path / "params.json").exists()


def built_encoder(path: str | Path) -> str | None:
    """The model id of the encoder whose vectors the search folder at ``path`` holds (None: lexical,
    or no folder)."""
    try:
        return json.loads((Path(path) / "params.json").read_text(encoding="utf-8")).get("encoder")
    except (OSError, ValueError, AttributeError):
        return None


def load_search(path: str | Path, *, encoder: str | None = None) -> SavedSearch:
    """Read a search folder. ``encoder`` (the model id of the encoder that will encode queries) must
    be the one the index was built with, when both are known."""
    path = Path(path)
    params = read_params(
        path / "params.json",
        what=f"search engine at {path}",
        format_version=FORMAT_VERSION,
        missing=f"no search engine at {path}: build one first (shopsense search-index)",
    )
    config = SearchConfig(**params["config"])
    want = params.get("encoder")
    if want and encoder and want != encoder:
        raise ShopsenseError(f"search engine at {path} was built with encoder {want!r}, not {encoder!r}")
    index = SearchIndex._read(path)
    reranker = Reranker.load(path / "reranker") if (path / "reranker").exists() else None
    return SavedSearch(index=index, config=config, encoder=want, reranker=reranker)
