"""The per-row path for small batches (:func:`clean_rows`) against the vectorised validator: where it
answers, it must answer exactly what :func:`validate_batch` stores; anything in doubt it leaves to it."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.plain_rows import clean_rows
from shopsense.data.readers import Batch
from shopsense.data.schemas import EVENT, PRODUCT
from shopsense.data.validation import validate_batch
from shopsense.store.rows import event_key, event_keys

CONFIG = IngestConfig(max_id_chars=12, max_field_chars=20)  # small limits: the fuzz reaches them

# mostly plausible values (so the fast path answers often), with every kind of doubt mixed in
plain_ids = st.one_of(
    st.sampled_from(["u1", " u1 ", "a/b", "zoë", "\u3000v\u3000", "é" * 12, "x y"]),
    st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=13),
)
odd_ids = st.one_of(
    st.sampled_from(["", "  ", "x\ty", "x\x00", "x" * 13, "\x1cx"]), st.text(max_size=14), st.integers(-5, 5)
)
plain_numbers = st.one_of(st.floats(0, 7_258_118_400.0), st.integers(0, 2**40), st.just(7_258_118_400.0))
odd = st.one_of(
    st.none(),
    odd_ids,
    st.integers(-(2**60), 2**60),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([-1, 7_258_118_401.0, True, 2**53, "VIEW", " view", "nope", "", "a\x00b", "x" * 21]),
    st.text(max_size=24),
)


@st.composite
def event(draw):
    """A plainly valid event, half the time with one field set to something doubtful."""
    kind = draw(st.sampled_from(C.EVENT_TYPES))
    maybe = st.one_of(st.none(), plain_ids)
    row = {
        C.EVENT_ID: draw(maybe),
        C.USER: draw(plain_ids),
        C.ITEM: draw(maybe if kind == C.SEARCH else plain_ids),
        C.EVENT_TYPE: kind,
        C.VALUE: draw(plain_numbers if kind == C.RATING else st.one_of(st.none(), plain_numbers)),
        C.TIMESTAMP: draw(plain_numbers),
        C.SESSION: draw(maybe),
        C.QUERY: draw(
            st.text(min_size=1, max_size=20) if kind == C.SEARCH else st.one_of(st.none(), st.text(max_size=20))
        ),
        C.REQUEST_ID: draw(maybe),
        C.ORDER_ID: draw(maybe),
    }
    if draw(st.booleans()):
        row[draw(st.sampled_from(list(row)))] = draw(odd)
    return row


def _vectorised(schema, rows):
    try:
        table = pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return None
    return validate_batch(schema, Batch(table, np.arange(1, len(rows) + 1)), "body", CONFIG)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b and type(a) is type(b)


TAKEN: list[int] = []  # lists the fast path answered


def test_clean_rows_agree_with_the_vectorised_validator():
    TAKEN.clear()
    _agree()
    assert len(TAKEN) >= 100, "the strategies must often reach the fast path, or this test proves little"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event(), min_size=1, max_size=3))
@example([{C.USER: "u", C.ITEM: "i", C.EVENT_TYPE: "view", C.TIMESTAMP: 1.0}])
def _agree(rows):
    clean = clean_rows(EVENT, rows, CONFIG)
    if clean is None:
        return
    TAKEN.append(len(rows))
    v = _vectorised(EVENT, rows)
    assert v is not None, "a row the fast path took must be readable by the vectorised one"
    assert not v.errors and v.blank == 0, v.errors
    stored = v.table.to_pylist()
    assert len(stored) == len(clean)
    for got, want in zip(clean, stored, strict=True):
        assert list(got) == list(want)
        assert all(_same(got[k], want[k]) for k in want), (got, want)


def test_plain_events_take_the_fast_path_and_doubtful_ones_do_not():
    row = {C.USER: " u1 ", C.ITEM: "i1", C.EVENT_TYPE: "view", C.TIMESTAMP: 1.7e9, C.VALUE: None, C.QUERY: ""}
    assert clean_rows(EVENT, [row], CONFIG) == [
        {C.USER: "u1", C.ITEM: "i1", C.EVENT_TYPE: "view", C.VALUE: None, C.TIMESTAMP: 1.7e9, C.QUERY: None}
    ]
    for doubt in (
        {C.EVENT_TYPE: "VIEW"},  # the vectorised path lower-cases it
        {C.TIMESTAMP: "2026-01-01"},  # ISO time
        {C.TIMESTAMP: 1e13},  # milliseconds: refused with a message
        {C.USER: "a\x01"},  # control character
        {C.ITEM: None},  # only a search may have no item
        {C.EVENT_TYPE: "rating"},  # a rating needs a value
        {C.EVENT_TYPE: "search"},  # a search needs a query
        {C.VALUE: float("nan")},
        {C.EVENT_TYPE: "purchase", C.VALUE: -0.5},  # an amount paid is >= 0
    ):
        assert clean_rows(EVENT, [{**row, **doubt}], CONFIG) is None, doubt


@pytest.mark.parametrize(
    "extra", [{}, {C.EVENT_ID: "e-1"}, {C.EVENT_ID: ""}, {C.ITEM: None, C.EVENT_TYPE: "search", C.QUERY: "q"}]
)
def test_event_key_of_one_record_is_the_vectorised_key(extra):
    row = {C.USER: "u", C.ITEM: "i", C.EVENT_TYPE: "view", C.TIMESTAMP: 1_700_000_000.25, **extra}
    frame = validate_batch(EVENT, Batch(pa.Table.from_pylist([row]), np.arange(1, 2)), "x").frame
    assert len(frame) == 1
    for ts in (1_700_000_000.25, 1e-7, 12345.0, 1.7e16):
        r = {**row, C.TIMESTAMP: ts}
        assert event_key(r) == event_keys(frame.assign(**{C.TIMESTAMP: [ts]})).iloc[0]


def test_products_with_tags_go_the_vectorised_way():
    assert clean_rows(PRODUCT, [{C.ITEM: "p", C.TITLE: "t", C.TAGS: "a,b"}]) is None
    assert clean_rows(PRODUCT, [{C.ITEM: "p", C.TITLE: "t", C.PRICE: 2, C.AVAILABLE: True}]) == [
        {C.ITEM: "p", C.TITLE: "t", C.PRICE: 2.0, C.AVAILABLE: True}
    ]
