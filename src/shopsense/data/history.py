"""A shopper's history: the one rule that turns events into what models, recommendations and search read.

Training (:class:`~shopsense.data.dataset.Dataset`), the per-request recommender, search's
personalisation and its collaborative links all ask the same questions of the same events: which
events say something about an item (a view, click, add-to-cart, purchase or rating with an item id;
a search has none), how much each counts (the event-type weights of the settings), how old it is in
the shopper's sequence, and which queries the shopper searched. They are answered here once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C

#: event types that say a shopper is interested in an item (a search has no item; taking an item out
#: of the cart says what the cart holds, not interest)
ITEM_EVENT_TYPES = (C.VIEW, C.CLICK, C.FAVORITE, C.ADD_TO_CART, C.PURCHASE, C.RATING)
_ITEM_TYPES = frozenset(ITEM_EVENT_TYPES)

#: column -> values, oldest first (what the store's per-request reader returns; a DataFrame fits too)
EventColumns = Mapping[str, Sequence[Any]]


def item_event_mask(types: Any, items: Any) -> np.ndarray:
    """Which events are item events: an item event type and an item id (over whole columns)."""
    t = np.asarray(types, dtype=object)
    # set lookups in a loop: np.isin sorts object arrays, 3x slower for a request's few dozen events
    # and no faster for a training log of millions
    is_item_type = np.fromiter((x in _ITEM_TYPES for x in t), dtype=bool, count=len(t))
    return is_item_type & _present(np.asarray(items, dtype=object))


def query_event_mask(types: Any, queries: Any) -> np.ndarray:
    """Which events are searches with a query text."""
    return (np.asarray(types, dtype=object) == C.SEARCH) & _present(np.asarray(queries, dtype=object))


def _present(values: np.ndarray) -> np.ndarray:
    """Not missing (None, NaN, pandas NA) and not empty text."""
    if not len(values):
        return np.zeros(0, dtype=bool)
    return pd.notna(values) & (values != "")


def event_weights(types: Any, weights: Mapping[str, float]) -> np.ndarray:
    """The settings' weight of each event type (1 for a type the settings do not name)."""
    return np.array([weights.get(t, 1.0) for t in types], dtype=np.float32)


@dataclass(frozen=True)
class History:
    """One shopper's recent behaviour, oldest first.

    ``item_age`` / ``query_age``: steps back from the newest event of any kind (0 = the newest), so
    a search between two views ages the older view like any event would.
    """

    items: np.ndarray  # external item ids (object)
    types: np.ndarray  # their event types (object)
    weights: np.ndarray  # their event-type weights (float32)
    item_age: np.ndarray
    queries: list[str]
    query_age: np.ndarray

    @property
    def empty(self) -> bool:
        return not len(self.items) and not self.queries

    def recency(self, decay: float) -> np.ndarray:
        """``decay ** age`` for each item event."""
        return (decay**self.item_age).astype(np.float32)

    def only(self, keep: np.ndarray) -> History:
        """The same history with only the item events where ``keep`` (e.g. items a model knows)."""
        return History(
            self.items[keep], self.types[keep], self.weights[keep], self.item_age[keep], self.queries, self.query_age
        )


def history_of(events: EventColumns, weights: Mapping[str, float]) -> History:
    """The history in a shopper's events (item, event type and query columns, oldest first)."""
    small = _small_history(events, weights)
    if small is not None:
        return small
    types = np.asarray(events[C.EVENT_TYPE], dtype=object)
    n = len(types)
    items = np.asarray(events[C.ITEM], dtype=object) if n else np.zeros(0, dtype=object)
    queries = np.asarray(events[C.QUERY], dtype=object) if n and C.QUERY in events else np.full(n, None, object)
    age = np.arange(n)[::-1]
    is_item = item_event_mask(types, items)
    is_query = query_event_mask(types, queries)
    return History(
        items=items[is_item],
        types=types[is_item],
        weights=event_weights(types[is_item], weights),
        item_age=age[is_item],
        queries=[str(q) for q in queries[is_query]],
        query_age=age[is_query],
    )


#: events per call up to which the plain-Python rule below is used (a request reads 50)
_SMALL = 256
_TEXT = {str, type(None)}


def _small_history(events: EventColumns, weights: Mapping[str, float]) -> History | None:
    """:func:`history_of` for a request's few events as plain lists of text (what the store's
    per-request reader returns), or None for anything else: the same rule in a Python loop, about
    4x cheaper than building numpy object arrays for a few dozen values."""
    types = events[C.EVENT_TYPE]
    n = len(types)
    items = events[C.ITEM] if n else []
    queries = events[C.QUERY] if n and C.QUERY in events else [None] * n
    if not (isinstance(types, list) and isinstance(items, list) and isinstance(queries, list)) or n > _SMALL:
        return None
    kinds = {*map(type, types), *map(type, items), *map(type, queries)}
    if not kinds <= _TEXT:
        return None  # numbers, NaN or pandas' NA: the vectorised rule decides what is missing
    # a text value is present when non-empty (None and "" are missing)
    item_pos = [i for i in range(n) if types[i] in _ITEM_TYPES and items[i]]
    query_pos = [i for i in range(n) if types[i] == C.SEARCH and queries[i]]
    item_types = [types[i] for i in item_pos]
    return History(
        items=_objects([items[i] for i in item_pos]),
        types=_objects(item_types),
        weights=np.array([weights.get(t, 1.0) for t in item_types], dtype=np.float32),
        item_age=np.array([n - 1 - i for i in item_pos], dtype=np.int64),
        queries=[queries[i] for i in query_pos],
        query_age=np.array([n - 1 - i for i in query_pos], dtype=np.int64),
    )


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out
