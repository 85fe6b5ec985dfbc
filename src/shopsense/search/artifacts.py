"""Saving and loading a :class:`~shopsense.search.engine.SearchEngine` as a folder of plain files.

::

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
half-written engine where a complete one was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense.artifacts import read_params
from shopsense.exceptions import ShopsenseError
from shopsense.index.analyzer import normalize_text
from shopsense.index.bm25 import BM25Index, field_text
from shopsense.index.spelling import SpellCorrector
from shopsense.index.vector import VectorIndex
from shopsense.search.autocomplete import Autocomplete
from shopsense.search.filters import CatalogColumns
from shopsense.search.reranker import Reranker

if TYPE_CHECKING:
    from shopsense.search.engine import SearchEngine

FORMAT_VERSION = 1


def save_engine(engine: SearchEngine, path: Path) -> Path:
    engine._check()
    if path.exists() and any(path.iterdir()) and not (path / "params.json").exists():
        # never replace a folder that is not a search engine (it would be deleted with its content)
        raise ShopsenseError(f"{path} exists and is not a search engine folder; choose another path")
    tmp = path.with_name(path.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    params = {
        "format_version": FORMAT_VERSION,
        "config": engine.config.model_dump(),
        "encoder": getattr(engine.encoder, "model_id", None),
        "n_products": engine.n_products,
    }
    (tmp / "params.json").write_text(json.dumps(params, indent=1), encoding="utf-8")
    engine.products.to_parquet(tmp / "products.parquet", index=False)
    (tmp / "tokens.json").write_text(json.dumps(engine.tokens, ensure_ascii=False), encoding="utf-8")
    engine.bm25.save(tmp / "bm25")
    if engine.vindex is not None:
        engine.vindex.save(tmp / "vectors")
    np.save(tmp / "popularity.npy", engine.popularity)
    if engine.speller is not None:
        engine.speller.save(tmp / "spelling.json")
    engine.autocompleter.save(tmp / "autocomplete.json")
    if engine.reranker is not None and engine.reranker.fitted:
        engine.reranker.save(tmp / "reranker")
    if path.exists():
        old = path.with_name(path.name + ".old")
        if old.exists():
            shutil.rmtree(old)
        path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old)
    else:
        tmp.rename(path)
    return path


def load_engine(cls: type[SearchEngine], path: Path, encoder: Any = None) -> SearchEngine:
    from shopsense.search.engine import SearchConfig

    params = read_params(
        path / "params.json",
        what=f"search engine at {path}",
        format_version=FORMAT_VERSION,
        missing=f"no search engine at {path}: build one first (shopsense search build)",
    )
    eng = cls(SearchConfig(**params["config"]), encoder)
    want, have = params.get("encoder"), getattr(encoder, "model_id", None)
    if want and have and want != have:
        raise ShopsenseError(f"search engine at {path} was built with encoder {want!r}, not {have!r}")
    eng.products = pd.read_parquet(path / "products.parquet")
    eng.item_ids = eng.products["item_id"].astype(str).to_numpy(dtype=object)
    eng.row_of = {i: r for r, i in enumerate(eng.item_ids)}
    eng.tokens = json.loads((path / "tokens.json").read_text(encoding="utf-8"))
    eng.bm25 = BM25Index.load(path / "bm25")
    eng.title_norm = [normalize_text(field_text(t)) for t in eng.products["title"].tolist()]
    if (path / "vectors").exists():
        eng.vindex = VectorIndex.load(path / "vectors")
        eng.vectors = np.ascontiguousarray(eng.vindex.vectors, dtype=np.float32)
    eng.popularity = np.load(path / "popularity.npy")
    if (path / "spelling.json").exists():
        eng.speller = SpellCorrector.load(path / "spelling.json", known=eng._known_word)
    eng.autocompleter = Autocomplete.load(path / "autocomplete.json")
    eng.columns = CatalogColumns(eng.products)
    if (path / "reranker").exists():
        eng.reranker = Reranker.load(path / "reranker")
    return eng
