"""The catalog frame every reader sees: each product column present, one spelling of "missing".

Only ``item_id`` and ``title`` are required, so a catalog may lack every other column, and where
it has them they may mix None, NaN and empty strings (a file's empty cells, a product put over HTTP
without a brand, a frame built by hand). pandas adds its own variety: under pandas 3 a text column
with gaps is a ``str`` column holding NaN, and ``astype(str)`` keeps that NaN a float.
:func:`normalize_products` gives each column one shape, so nothing downstream meets a float in a
text column or a missing column. Text columns are object columns holding None (not pandas' ``str``
dtype holding NaN): iterating them never yields a float, on pandas 2 and 3 alike; their ``.str``
methods answer NaN for a missing value, so a mask built from them takes ``na=False``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C

#: product columns holding text: ``str`` or None, never NaN or a blank string
TEXT_COLUMNS = (C.ITEM, C.TITLE, C.DESCRIPTION, C.CATEGORY, C.BRAND, C.IMAGE_URL)
#: product columns holding numbers: float, NaN when unknown
NUMBER_COLUMNS = (C.PRICE, C.CREATED_AT, C.UPDATED_AT)


def is_null(v: Any) -> bool:
    """True for None, NaN, pd.NA and NaT (not for containers or strings)."""
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float | np.floating) and math.isnan(v)


def _texts(values: pd.Series) -> pd.Series:
    """``str`` or None per value (vectorised: a server reads the whole catalog at each change)."""
    missing = values.isna()
    text = values.astype(object).where(~missing, "").astype(str)
    blank = text.str.strip().eq("").fillna(True).to_numpy(dtype=bool)
    return text.astype(object).where(~(missing.to_numpy() | blank), None)


def _tags(v: Any) -> Any:
    if isinstance(v, np.ndarray):  # lists read back from parquet
        v = v.tolist()
    return [] if is_null(v) or (isinstance(v, str) and not v.strip()) else v


def _attributes(v: Any) -> Any:
    if isinstance(v, Mapping):
        return dict(v)
    return {} if is_null(v) or (isinstance(v, str) and not v.strip()) else v


def _containers(values: list[Any], kind: type, clean: Any) -> list[Any]:
    # the store's frames already hold lists / dicts everywhere: check that first, cheaply
    return values if all(type(v) is kind for v in values) else [clean(v) for v in values]


def normalize_products(products: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``products`` with every column of :data:`shopsense.columns.PRODUCT_COLUMNS`.

    Text columns are object columns of ``str`` or None (blank strings become None); ``price`` and
    the timestamps are float (NaN when unknown); ``available`` is bool (True when unknown);
    ``tags`` are lists and ``attributes`` dicts (empty when unknown). Other columns are kept as
    they are, after the product columns. Normalising a normalised frame changes nothing.
    """
    out = pd.DataFrame(index=products.index)
    for col in C.PRODUCT_COLUMNS:
        values = products[col] if col in products.columns else pd.Series(None, index=products.index, dtype=object)
        if col in TEXT_COLUMNS:
            out[col] = _texts(values)
        elif col in NUMBER_COLUMNS:
            numbers = values if pd.api.types.is_numeric_dtype(values) else pd.to_numeric(values, errors="coerce")
            out[col] = numbers.astype(np.float64)
        elif col == C.AVAILABLE:
            # an empty cell means available (the ingest rule): only an explicit false hides a product
            out[col] = values.astype(object).where(values.notna(), True).astype(bool)
        elif col == C.TAGS:
            out[col] = pd.Series(_containers(values.tolist(), list, _tags), index=products.index, dtype=object)
        else:
            out[col] = pd.Series(_containers(values.tolist(), dict, _attributes), index=products.index, dtype=object)
    for col in products.columns:
        if col not in out.columns:
            out[col] = products[col]
    return out
