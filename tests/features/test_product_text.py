from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.features.product_text import product_texts, text_hash


def test_missing_fields_are_dropped_cleanly() -> None:
    df = pd.DataFrame(
        {
            "item_id": ["a", "b", "c"],
            "title": ["Red Kettle", "Blue Mug", "Cable"],
            "brand": ["Acme", None, np.nan],
            "category": ["Kitchen > Kettles", "Kitchen > Mugs", None],
            "description": [None, "Holds 300 ml.", "nan"],
        }
    )
    texts = product_texts(df)
    assert texts == ["Red Kettle. Acme. Kitchen > Kettles", "Blue Mug. Kitchen > Mugs. Holds 300 ml.", "Cable"]
    assert not any("nan" in t.lower() or "none" in t.lower() for t in texts)


def test_pandas_string_dtype_missing_values() -> None:
    df = pd.DataFrame({"title": pd.array(["A", None], dtype="string"), "brand": pd.array([None, "B"], dtype="string")})
    assert product_texts(df, "{title} | {brand}") == ["A", "B"]


def test_attributes_and_tags() -> None:
    df = pd.DataFrame(
        {
            "title": ["Shirt"],
            "attributes": [{"color": "red", "size": "M", "fit": None}],
            "tags": [["cotton", "summer"]],
        }
    )
    assert product_texts(df, "{title}. {attributes.color}. {tags}") == ["Shirt. red. cotton, summer"]
    assert product_texts(df, "{title}. {attributes}") == ["Shirt. color: red; size: M"]
    assert product_texts(df, "{title}. {attributes.material}") == ["Shirt"]


def test_bad_template_is_refused() -> None:
    with pytest.raises(ValueError, match="names no field"):
        product_texts(pd.DataFrame({"title": ["x"]}), "just text")


def test_text_hash_is_stable_and_content_sensitive() -> None:
    assert text_hash("Red Kettle") == text_hash("Red Kettle")
    assert text_hash("Red Kettle") != text_hash("Red kettle")
    assert len(text_hash("")) == 32
