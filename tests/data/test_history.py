"""The one rule from events to a shopper's history: the per-request path agrees with the vectorised one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.history import History, history_of

WEIGHTS = {C.VIEW: 1.0, C.ADD_TO_CART: 3.0, C.PURCHASE: 5.0}
EVENTS = {
    C.ITEM: ["a", None, "b", "", "c", "a", None, "d"],
    C.EVENT_TYPE: [C.VIEW, C.SEARCH, C.ADD_TO_CART, C.VIEW, "remove_from_cart", C.PURCHASE, C.SEARCH, C.CLICK],
    C.QUERY: [None, "red kettle", None, None, None, None, "", None],
}


def _same(a: History, b: History) -> None:
    for name in ("items", "types", "weights", "item_age", "query_age"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert a.queries == b.queries


def test_plain_lists_and_a_frame_give_the_same_history() -> None:
    lists = history_of(EVENTS, WEIGHTS)  # the store's per-request reader returns plain lists
    frame = history_of(pd.DataFrame(EVENTS), WEIGHTS)  # the vectorised rule
    _same(lists, frame)
    assert lists.items.tolist() == ["a", "b", "a", "d"]  # no search, no empty id, no cart removal
    assert lists.weights.tolist() == [1.0, 3.0, 5.0, 1.0]  # a type the settings do not name counts 1
    assert lists.item_age.tolist() == [7, 5, 2, 0] and lists.queries == ["red kettle"]
    assert lists.query_age.tolist() == [6]


def test_values_that_are_not_text_take_the_vectorised_rule() -> None:
    events = {**EVENTS, C.ITEM: [*EVENTS[C.ITEM][:-1], float("nan")]}  # NaN is missing, not an id
    h = history_of(events, WEIGHTS)
    _same(h, history_of(pd.DataFrame(events), WEIGHTS))
    assert h.items.tolist() == ["a", "b", "a"]


def test_no_events() -> None:
    h = history_of({C.ITEM: [], C.EVENT_TYPE: [], C.QUERY: []}, WEIGHTS)
    assert h.empty and h.items.dtype == object and h.weights.dtype == np.float32
