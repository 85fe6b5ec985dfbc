"""The catalog frame: every product column, one spelling of missing, whatever the frame came with."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.products import normalize_products
from shopsense.index.catalog import fingerprint
from shopsense.store import KnowledgeStore


def test_only_required_columns_get_every_product_column() -> None:
    out = normalize_products(pd.DataFrame({C.ITEM: ["a", "b"], C.TITLE: ["Kettle", "Mug"]}))
    assert list(out.columns) == list(C.PRODUCT_COLUMNS)
    assert out[C.BRAND].tolist() == [None, None] and out[C.BRAND].dtype == object
    assert np.isnan(out[C.PRICE]).all() and out[C.PRICE].dtype == np.float64
    assert out[C.AVAILABLE].tolist() == [True, True]
    assert out[C.TAGS].tolist() == [[], []] and out[C.ATTRIBUTES].tolist() == [{}, {}]


def test_none_nan_and_blank_strings_are_one_missing() -> None:
    raw = pd.DataFrame(
        {
            C.ITEM: ["a", "b", "c", "d"],
            C.TITLE: ["Kettle", "Mug", "Knife", "Towel"],
            # under pandas 3 this is a str column holding NaN: astype(str) keeps the NaN a float
            C.BRAND: pd.Series(["Acme", None, "", "  "]),
            C.CATEGORY: [np.nan, "Kitchen", None, pd.NA],
            C.PRICE: ["12.5", None, "", np.nan],
            C.AVAILABLE: [None, False, np.nan, True],
            C.TAGS: [["x"], None, np.nan, ""],
            "extra": [1, 2, 3, 4],
        }
    )
    out = normalize_products(raw)
    assert out[C.BRAND].tolist() == ["Acme", None, None, None]
    assert out[C.CATEGORY].tolist() == [None, "Kitchen", None, None]
    assert out[C.PRICE].iloc[0] == 12.5 and out[C.PRICE].iloc[1:].isna().all()
    assert out[C.AVAILABLE].tolist() == [True, False, True, True]
    assert out[C.TAGS].tolist() == [["x"], [], [], []]
    assert out["extra"].tolist() == [1, 2, 3, 4]
    pd.testing.assert_frame_equal(normalize_products(out), out)  # idempotent


def test_fingerprint_of_a_catalog_with_gaps() -> None:
    bare = pd.DataFrame({C.ITEM: ["a", "b"], C.TITLE: ["Kettle", "Mug"]})
    gaps = bare.assign(brand=pd.Series([None, ""]), category=pd.Series(["", np.nan]), price=[None, np.nan])
    assert fingerprint(bare, "m") == fingerprint(gaps, "m")  # no TypeError, and gaps mean nothing
    assert fingerprint(bare, "m") != fingerprint(bare.assign(brand=["Acme", None]), "m")


def test_store_reads_a_product_without_optional_fields_as_missing(sqlite_store: KnowledgeStore) -> None:
    sqlite_store.upsert_products(pd.DataFrame({C.ITEM: ["a"], C.TITLE: ["Kettle"], C.BRAND: ["Acme"]}))
    sqlite_store.upsert_products(pd.DataFrame({C.ITEM: ["b"], C.TITLE: ["Mug"]}))
    got = sqlite_store.products()
    assert got[C.BRAND].tolist() == ["Acme", None] and got[C.BRAND].dtype == object
    assert got[C.CATEGORY].tolist() == [None, None] and got[C.PRICE].isna().all()
    assert fingerprint(got, "m")  # what `shopsense similar` and the service compute first
