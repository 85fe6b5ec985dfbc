from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.exceptions import UnknownItemError
from shopsense.features.text import TextEncoder
from shopsense.index.catalog import CatalogIndex, catalog_mask
from shopsense.similar import similar
from shopsense.store import KnowledgeStore, open_store

CATALOG = pd.DataFrame(
    {
        "item_id": ["k1", "k2", "k3", "m1", "m2", "c1"],
        "title": [
            "Stainless steel electric kettle 1.7 l",
            "Glass electric kettle with blue light",
            "Gooseneck pour-over kettle for coffee",
            "Ceramic coffee mug 350 ml",
            "Insulated travel mug for coffee",
            "USB-C charging cable 2 m",
        ],
        "brand": ["Acme", "Boilo", "Acme", "Acme", "Mugsy", "Wired"],
        "category": [
            "Kitchen > Kettles",
            "Kitchen > Kettles",
            "Kitchen > Kettles",
            "Kitchen > Mugs",
            "Kitchen > Mugs",
            "Electronics > Cables",
        ],
        "price": [30.0, 25.0, 45.0, 8.0, 15.0, 9.0],
        "available": [True, True, False, True, True, True],
    }
)


@pytest.fixture(scope="module")
def catalog(minilm_module: TextEncoder) -> CatalogIndex:
    return CatalogIndex.build(CATALOG, minilm_module)


@pytest.fixture(scope="module")
def minilm_module() -> TextEncoder:
    enc = TextEncoder()
    enc.encode(["warm up"])
    return enc


def test_similar_kettles_with_reasons(catalog: CatalogIndex) -> None:
    res = similar("k1", k=3, catalog=catalog)
    assert [r.item_id for r in res][:2] == ["k3", "k2"] or [r.item_id for r in res][:2] == ["k2", "k3"]
    assert "k1" not in [r.item_id for r in res]
    k3 = next(r for r in res if r.item_id == "k3")
    assert "same brand (Acme)" in k3.reasons and "same category (Kitchen > Kettles)" in k3.reasons
    assert all(r.reason for r in res)
    assert [r.score for r in res] == sorted((r.score for r in res), reverse=True)
    assert res[-1].item_id != "c1"  # the cable is the least like a kettle


def test_similar_filters(catalog: CatalogIndex) -> None:
    res = similar("k1", k=5, filters={"available": True, "category": "Kitchen"}, catalog=catalog)
    assert {r.item_id for r in res} == {"k2", "m1", "m2"}
    res = similar("k1", k=5, filters={"brand": "acme", "max_price": 40}, catalog=catalog)
    assert [r.item_id for r in res] == ["m1"]
    assert similar("k1", k=5, filters={"brand": "Nobody"}, catalog=catalog) == []
    with pytest.raises(ValueError, match="valid"):
        similar("k1", filters={"colour": "red"}, catalog=catalog)
    with pytest.raises(UnknownItemError):
        similar("nope", catalog=catalog)


def test_catalog_mask_on_missing_columns() -> None:
    df = pd.DataFrame({"item_id": ["a", "b"], "title": ["x", "y"]})
    assert catalog_mask(df, {"available": True}).tolist() == [True, True]
    assert catalog_mask(df, {"category": "K"}).tolist() == [False, False]
    assert catalog_mask(df, {"exclude": ["a"]}).tolist() == [False, True]


def test_catalog_index_save_load_and_cache(tmp_path: Path, catalog: CatalogIndex, minilm_module: TextEncoder) -> None:
    catalog.save(tmp_path / "cat")
    back = CatalogIndex.load(tmp_path / "cat")
    assert [r.item_id for r in similar("m1", 3, catalog=back)] == [r.item_id for r in similar("m1", 3, catalog=catalog)]

    store = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    store.upsert_products(CATALOG)
    cache = tmp_path / "cache"
    first = CatalogIndex.from_store(store, minilm_module, cache_dir=cache)
    stamp = (cache / "params.json").stat().st_mtime_ns
    CatalogIndex.from_store(store, minilm_module, cache_dir=cache)
    assert (cache / "params.json").stat().st_mtime_ns == stamp  # unchanged catalog: reused, not rebuilt
    changed = CATALOG.iloc[:1].assign(title="Red enamel stovetop kettle")
    store.upsert_products(changed)
    second = CatalogIndex.from_store(store, minilm_module, cache_dir=cache)
    assert (cache / "params.json").stat().st_mtime_ns != stamp
    assert float(first.vector("k1") @ second.vector("k1")) < 0.99
    store.close()


def _shop(tmp_path: Path) -> str:
    home = tmp_path / "home"
    s: KnowledgeStore = open_store(f"sqlite:///{home / 'shopsense.db'}")
    s.upsert_products(CATALOG)
    s.close()
    return str(home)


def test_cli_similar(tmp_path: Path, minilm_module: TextEncoder) -> None:
    runner = CliRunner()
    home = _shop(tmp_path)
    r = runner.invoke(app, ["--home", home, "similar", "k1", "-k", "2", "--json", "--in-stock"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 2 and '"reason"' in lines[0] and "k3" not in r.stdout  # k3 is out of stock
    r = runner.invoke(app, ["--home", home, "similar", "nope"])
    assert r.exit_code == 2 and "unknown item" in r.stderr
    r = runner.invoke(app, ["--home", str(tmp_path / "empty"), "similar", "k1"])
    assert r.exit_code == 2
