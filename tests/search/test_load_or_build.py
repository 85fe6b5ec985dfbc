"""The one "load the search index or build it" (:func:`shopsense.search.load_or_build`), used by the
CLI and the service."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from shopsense.config import load_settings
from shopsense.features.text import TextEncoder
from shopsense.search import SearchEngine, default_index_path, load_or_build
from shopsense.store import KnowledgeStore


def test_the_versions_own_index_then_the_path_else_a_build(
    tmp_path: Path, sqlite_store: KnowledgeStore, products: pd.DataFrame, minilm: TextEncoder
) -> None:
    sqlite_store.upsert_products(products)
    settings = load_settings(home=tmp_path / "home")
    version = tmp_path / "v1"
    built = load_or_build(sqlite_store, settings, version=version, encoder=minilm)  # nothing saved: built
    assert built.encoder is minilm and built.index.vectors is not None  # the caller's encoder, shared
    assert (default_index_path(settings) / "params.json").exists() and not (version / "search").exists()
    SearchEngine.build(products.head(3)).save(version / "search")  # training wrote the version's own
    assert load_or_build(sqlite_store, settings, version=version, encoder=minilm).index.n_products == 3
    assert load_or_build(sqlite_store, settings, encoder=minilm).index.n_products == len(products)
    rebuilt = load_or_build(sqlite_store, settings, version=version, encoder=minilm, rebuild=True)
    assert rebuilt.index.n_products == len(products)
    assert rebuilt.search("whirpool microwve", k=2).items == built.search("whirpool microwve", k=2).items
