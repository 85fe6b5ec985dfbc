"""Stage 1's fingerprint and lazy query encoding, and the settings a precomputed list depends on."""

from __future__ import annotations

import numpy as np

from shopsense.engine_config import OnlineConfig
from shopsense.ranking.return_features import ShopperEvents
from shopsense.recommend.history import ShopperHistory, history_key
from shopsense.recommend.precomputed import list_pool, signature

ITEMS, TYPES, QUERIES = ["a", "b", None], ["view", "click", "search"], [None, None, "red kettle"]


def test_the_fingerprint_changes_with_any_event_and_its_order():
    base = history_key(ITEMS, TYPES, QUERIES)
    assert base == history_key(list(ITEMS), list(TYPES), list(QUERIES))
    assert base != history_key(["a", "c", None], TYPES, QUERIES)  # another item
    assert base != history_key(ITEMS, ["view", "add_to_cart", "search"], QUERIES)  # another event type
    assert base != history_key(ITEMS, TYPES, [None, None, "blue kettle"])  # another query
    assert base != history_key(["b", "a", None], ["click", "view", "search"], QUERIES)  # another order
    assert base != history_key([*ITEMS, "a"], [*TYPES, "view"], [*QUERIES, None])  # one more event
    # item and query columns are not confused with each other
    assert history_key(["x"], ["view"], [None]) != history_key([None], ["view"], ["x"])


def test_query_vectors_are_encoded_once_and_only_when_asked():
    calls: list[list[str]] = []

    def encode(queries: list[str]) -> np.ndarray:
        calls.append(queries)
        return np.ones((len(queries), 4), np.float32)

    empty = ShopperEvents(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    h = ShopperHistory(np.array([1]), ["view"], np.ones(1), ["kettle"], empty, 0.0, "u", 1, encode)
    assert not calls
    assert h.query_vectors is not None and h.query_vectors.shape == (1, 4)
    assert calls == [["kettle"]]
    none = ShopperHistory(np.array([1]), ["view"], np.ones(1), [], empty, 0.0, "u", 1, encode)
    assert none.query_vectors is None and calls == [["kettle"]]  # no queries: nothing encoded


def test_the_lists_signature_names_every_setting_a_ranking_depends_on():
    cfg, weights, exclude = OnlineConfig(), {"view": 1.0, "purchase": 8.0}, ("view", "purchase")
    base = signature(cfg, weights, exclude)
    assert base == signature(cfg, dict(reversed(weights.items())), tuple(reversed(exclude)))  # order-free
    assert base != signature(OnlineConfig(history=20), weights, exclude)
    assert base != signature(OnlineConfig(pool=80), weights, exclude)
    assert base != signature(cfg, {**weights, "view": 2.0}, exclude)
    assert base != signature(cfg, weights, ("purchase",))
    # what a list does not depend on leaves it usable
    assert base == signature(OnlineConfig(diversity=0.5, max_return_share=0.5), weights, exclude)
    assert list_pool(OnlineConfig(pool=10)) == 50  # a request of 10 ranks at least 5 x 10
