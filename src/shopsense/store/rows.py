"""Turning validated frames into what the database driver takes: event identities and plain row tuples."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from shopsense import columns as C


def event_keys(df: pd.DataFrame) -> pd.Series:
    """An event's identity: its ``event_id`` when given, else user, item, type and timestamp."""
    ts = _float_repr(df[C.TIMESTAMP])
    item = df[C.ITEM].fillna("") if C.ITEM in df.columns else ""
    composite = "k:" + df[C.USER].astype(str) + "\x1f" + item + "\x1f" + df[C.EVENT_TYPE] + "\x1f" + ts
    if C.EVENT_ID in df.columns:
        eid = df[C.EVENT_ID]
        return ("i:" + eid.astype(str)).where(eid.notna() & (eid.astype(str) != ""), composite)
    return composite


def event_key(row: Mapping[str, Any]) -> str:
    """:func:`event_keys` for one validated record (what the few events of an HTTP request take)."""
    eid = row.get(C.EVENT_ID)
    if eid is not None and str(eid) != "":
        return "i:" + str(eid)
    item = row.get(C.ITEM) or ""
    return f"k:{row[C.USER]}\x1f{item}\x1f{row[C.EVENT_TYPE]}\x1f{float(row[C.TIMESTAMP])!r}"


def _float_repr(ts: pd.Series) -> pd.Series:
    """``ts.map(repr)``, vectorised for floats (bulk ingest computes millions of keys).

    Arrow prints the same shortest round-trip digits as Python; where it would differ in form
    (exponent notation, or outside the range where repr uses fixed notation) repr itself is used,
    so keys are identical to the ones ``map(repr)`` writes.
    """
    if not len(ts):
        return ts.astype(str)
    if ts.dtype.kind != "f":
        return ts.map(repr)
    x = ts.to_numpy(dtype=np.float64)
    s = pc.cast(pa.array(x), pa.string())
    ax = np.abs(x)
    exact = ((ax >= 1e-4) & (ax < 1e16)) | (x == 0)
    exact &= ~pc.match_substring_regex(s, "[eEnN]").to_numpy(zero_copy_only=False)
    whole = pc.invert(pc.match_substring(s, "."))
    s = pc.if_else(whole, pc.binary_join_element_wise(s, ".0", ""), s)
    out = s.to_pandas().set_axis(ts.index)
    if not exact.all():
        idx = np.flatnonzero(~exact)
        out.iloc[idx] = [repr(v) for v in x[idx].tolist()]
    return out.astype(str)


def to_db_rows(df: pd.DataFrame) -> list[tuple]:
    """DataFrame rows as tuples of plain Python values (NaN -> None) for the DB driver.

    Column by column (``tolist``, then the missing cells set to None) and zipped: faster than
    ``astype(object)`` + ``itertuples`` on the large frames bulk ingest writes.
    """
    if not df.shape[1]:
        return [() for _ in range(len(df))]
    return list(zip(*[_pylist(df.iloc[:, c]) for c in range(df.shape[1])], strict=True))


def _pylist(col: pd.Series) -> list[Any]:
    n = len(col)
    na = col.isna().to_numpy()
    if na.all():
        return [None] * n
    missing = np.flatnonzero(na)
    if len(missing) > n // 2:  # mostly empty: start from None and fill the few values
        present = np.flatnonzero(~na)
        vals: list[Any] = [None] * n
        for i, v in zip(present.tolist(), col.iloc[present].tolist(), strict=True):
            vals[i] = v
        return vals
    vals = col.tolist()
    for i in missing.tolist():
        vals[i] = None
    return vals


def json_or_none(v: Any) -> str | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, np.ndarray):
        v = v.tolist()
    return json.dumps(v, sort_keys=True, ensure_ascii=False)
