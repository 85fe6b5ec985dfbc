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


def test_an_index_built_with_another_backend_keeps_its_encoder_for_queries(
    tmp_path: Path, sqlite_store: KnowledgeStore, products: pd.DataFrame
) -> None:
    """Query and product vectors never come from two backends: an index built with torch before the
    default became onnx-int8 has its queries encoded with torch until it is rebuilt."""
    from shopsense.config import EncoderConfig

    sqlite_store.upsert_products(products)
    settings = load_settings(home=tmp_path / "home")
    assert settings.encoder.backend == "onnx-int8"
    torch_enc = TextEncoder(EncoderConfig(backend="torch"))
    SearchEngine.build(products, torch_enc).save(default_index_path(settings))
    loaded = load_or_build(sqlite_store, settings)
    assert loaded.encoder.model_id == torch_enc.model_id
    assert loaded.search("microwave", k=3).items  # queries go through the torch encoder
    rebuilt = load_or_build(sqlite_store, settings, rebuild=True)
    assert rebuilt.encoder.model_id == TextEncoder(settings.encoder).model_id
