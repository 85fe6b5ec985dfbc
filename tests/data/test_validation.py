"""Vectorised validation: conversions and one reason per bad value, with line and column."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.readers import Batch
from shopsense.data.schemas import EVENT, PRODUCT, USER, schema_for
from shopsense.data.validation import check_columns, validate_batch
from shopsense.exceptions import SchemaError


def _batch(cols: dict, lines=None) -> Batch:
    t = pa.table(cols)
    return Batch(t, np.asarray(lines or range(2, t.num_rows + 2), dtype=np.int64))


def _bin(*vals):
    return pa.array([None if v is None else (v if isinstance(v, bytes) else v.encode()) for v in vals], pa.binary())


def test_schema_lookup() -> None:
    assert schema_for("events") is EVENT
    assert EVENT.required_columns == (C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP)
    assert PRODUCT.required_columns == (C.ITEM, C.TITLE)
    assert USER.required_columns == (C.USER,)
    with pytest.raises(ValueError, match="valid: products, events, users"):
        schema_for("orders")


def test_missing_column_names_it_and_lists_the_file_columns() -> None:
    with pytest.raises(SchemaError) as e:
        check_columns(EVENT, ["user_id", "item_id", "event_type", "ts"], "f.csv")
    assert "'timestamp'" in str(e.value) and "the file has: user_id, item_id, event_type, ts" in str(e.value)
    assert check_columns(EVENT, ["user_id", "item_id", "event_type", "timestamp", "extra"], "f.csv") == ["extra"]


def test_timestamps_iso_and_unix_to_seconds() -> None:
    ts = [
        "1700000000",
        "1700000000.5",
        "2023-11-14T22:13:20Z",
        "2023-11-14 23:13:20+01:00",
        "2023-11-14T22:13:20",
        "2023-11-14",
    ]
    n = len(ts)
    v = validate_batch(
        EVENT,
        _batch(
            {
                C.USER: _bin(*["u"] * n),
                C.ITEM: _bin(*["i"] * n),
                C.EVENT_TYPE: _bin(*["view"] * n),
                C.TIMESTAMP: _bin(*ts),
            }
        ),
        "f",
    )
    assert not v.errors
    assert v.frame[C.TIMESTAMP].tolist() == [1.7e9, 1.7e9 + 0.5, 1.7e9, 1.7e9, 1.7e9, 1699920000.0]


def test_event_errors_name_line_column_and_reason() -> None:
    b = _batch(
        {
            C.USER: _bin("u1", "", "u3", "u4", "u5", "u6", "u7", "u8"),
            C.ITEM: _bin("i1", "i1", "i1", "", "i1", "", "i1", "i1"),
            C.EVENT_TYPE: _bin("View ", "view", "like", "view", "rating", "search", "view", "view"),
            C.TIMESTAMP: _bin("1", "1", "1", "1", "1", "1", "yesterday", "17000000000000"),
            C.VALUE: _bin("", "", "", "", "", "", "", ""),
        }
    )
    v = validate_batch(EVENT, b, "f.csv")
    got = {(e.line, e.column): e.reason for e in v.errors}
    assert got[(3, C.USER)] == "empty user_id"
    assert got[(4, C.EVENT_TYPE)].startswith("unknown event type 'like'; valid: view, click, favorite, add_to_cart")
    assert got[(5, C.ITEM)] == "empty item_id (only a search may have none)"
    assert got[(6, C.VALUE)] == "a rating event needs a value"
    assert got[(7, C.QUERY)] == "a search event needs a query"
    assert got[(8, C.TIMESTAMP)] == "bad timestamp 'yesterday': expected ISO 8601 or unix seconds"
    assert "milliseconds" in got[(9, C.TIMESTAMP)]
    assert len(got) == 7  # one reason per cause: no follow-up "missing value" errors
    assert v.frame[C.EVENT_TYPE].tolist() == ["view"]  # trimmed and lower-cased
    assert v.lines.tolist() == [2]
    assert json.loads(v.errors[0].raw)[C.USER] == ""


def test_product_conversions() -> None:
    b = _batch(
        {
            C.ITEM: pa.array([1, 2, 3]),  # numeric ids become text
            C.TITLE: _bin("A", "B", "C"),
            C.PRICE: _bin("1.5", "", "2e1"),
            C.TAGS: _bin("red|big", '["x", "y"]', "a, b,"),
            C.ATTRIBUTES: _bin('{"b": 1, "a": 2}', "", "{}"),
            C.AVAILABLE: _bin("yes", "0", ""),
            C.CATEGORY: pa.array([["Home", "Kitchen"], None, []], pa.list_(pa.string())),
        }
    )
    v = validate_batch(PRODUCT, b, "p.csv")
    assert not v.errors
    f = v.frame
    assert f[C.ITEM].tolist() == ["1", "2", "3"]
    assert f[C.PRICE].tolist()[0] == 1.5 and np.isnan(f[C.PRICE].tolist()[1]) and f[C.PRICE].tolist()[2] == 20.0
    assert [json.loads(t) if t else None for t in f[C.TAGS]] == [["red", "big"], ["x", "y"], ["a", "b"]]
    assert f[C.ATTRIBUTES].tolist()[0] == '{"a": 2, "b": 1}'
    assert f[C.AVAILABLE].tolist() == [True, False, None]
    assert f[C.CATEGORY].tolist()[0] == "Home > Kitchen"


def test_product_errors() -> None:
    b = _batch(
        {
            C.ITEM: _bin("a", "b", "c", "d", "e", "f"),
            C.TITLE: _bin("ok", b"bad \xff byte", "x" * 50, "ok", "ok", "ok"),
            C.PRICE: _bin("1", "1", "1", "-2", "abc", "1"),
            C.ATTRIBUTES: _bin("", "", "", "", "", "[1, 2]"),
            C.AVAILABLE: _bin("", "", "", "", "", "maybe"),
        }
    )
    v = validate_batch(PRODUCT, b, "p.csv", IngestConfig(max_field_chars=20))
    got = {(e.line, e.column): e.reason for e in v.errors}
    assert got == {
        (3, C.TITLE): "not valid UTF-8 text",
        (4, C.TITLE): "field too long: more than 20 characters",
        (5, C.PRICE): "must be >= 0, got '-2'",
        (6, C.PRICE): "not a number: 'abc'",
        (7, C.ATTRIBUTES): "attributes: expected a JSON object, found list",
        (7, C.AVAILABLE): "not a boolean (true/false): 'maybe'",
    }
    assert v.frame[C.ITEM].tolist() == ["a"]


def test_long_ids_use_the_id_limit() -> None:
    b = _batch({C.USER: _bin("u" * 300, "ok")})
    v = validate_batch(USER, b, "u.csv")
    assert [(e.line, e.column) for e in v.errors] == [(2, C.USER)]
    assert "256" in v.errors[0].reason


def test_blank_rows_are_skipped_silently() -> None:
    b = _batch({C.USER: _bin("", "u1"), C.ATTRIBUTES: _bin("", '{"age": 3}')})
    v = validate_batch(USER, b, "u.csv")
    assert not v.errors and v.blank == 1 and v.frame[C.USER].tolist() == ["u1"]


def test_typed_columns_from_parquet() -> None:
    b = _batch(
        {
            C.USER: pa.array([7, 8]),
            C.ITEM: pa.array(["i", None]),
            C.EVENT_TYPE: pa.array(["rating", "search"]),
            C.TIMESTAMP: pa.array([1_700_000_000_000_000, 1_700_000_001_000_000], pa.timestamp("us", tz="UTC")),
            C.VALUE: pa.array([4.0, float("nan")]),
            C.QUERY: pa.array([None, "shoes"]),
        }
    )
    v = validate_batch(EVENT, b, "e.parquet")
    assert not v.errors
    assert v.frame[C.USER].tolist() == ["7", "8"]
    assert v.frame[C.TIMESTAMP].tolist() == [1.7e9, 1.7e9 + 1]
