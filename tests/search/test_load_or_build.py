"""The one "load the search index or build it" (:func:`shopsense.search.load_or_build`), used by the
CLI and the service."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

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


@pytest.mark.parametrize("backend", ["torch", "onnx-int8-unfused"])
def test_an_index_built_with_another_backend_keeps_its_encoder_for_queries(
    tmp_path: Path, sqlite_store: KnowledgeStore, products: pd.DataFrame, backend: str
) -> None:
    """Query and product vectors never come from two backends: an index built with torch before the
    default became onnx-int8 (or with the unfused int8 graph, the default before the fused one) has
    its queries encoded with that backend until it is rebuilt."""
    from shopsense.config import EncoderConfig

    sqlite_store.upsert_products(products)
    settings = load_settings(home=tmp_path / "home")
    assert settings.encoder.backend == "onnx-int8"
    torch_enc = TextEncoder(EncoderConfig(backend=backend))  # type: ignore[arg-type]
    SearchEngine.build(products, torch_enc).save(default_index_path(settings))
    loaded = load_or_build(sqlite_store, settings)
    assert loaded.encoder.model_id == torch_enc.model_id
    assert loaded.search("microwave", k=3).items  # queries go through the index's encoder
    rebuilt = load_or_build(sqlite_store, settings, rebuild=True)
    assert rebuilt.encoder.model_id == TextEncoder(settings.encoder).model_id


def test_processes_starting_at_once_build_the_index_once(
    tmp_path: Path, sqlite_store: KnowledgeStore, products: pd.DataFrame, minilm: TextEncoder, monkeypatch
) -> None:
    """The workers of one server starting on a home without an index: one builds, the others wait and
    load it (building into one folder at once, one failed and answered 503 to every search)."""
    import threading
    import time

    import shopsense.search as S

    sqlite_store.upsert_products(products)
    settings = load_settings(home=tmp_path / "home")
    real_build, builds = S.build_from_store, []

    def slow_build(*args, **kwargs):  # a build long enough for the others to arrive meanwhile
        builds.append(1)
        time.sleep(0.5)
        return real_build(*args, **kwargs)

    monkeypatch.setattr(S, "build_from_store", slow_build)
    got: list[object] = []

    def start() -> None:
        try:
            got.append(load_or_build(sqlite_store, settings, encoder=minilm))
        except Exception as e:  # noqa: BLE001 - the failure is what the test looks for
            got.append(e)

    workers = [threading.Thread(target=start) for _ in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert len(builds) == 1 and len(got) == 3
    assert all(isinstance(e, SearchEngine) and e.index.n_products == len(products) for e in got)
    leftovers = [p.name for p in default_index_path(settings).parent.iterdir() if ".tmp" in p.name or ".old" in p.name]
    assert not leftovers
