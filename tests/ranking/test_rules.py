"""Filters, business rules, MMR diversity and explanations on hand-made catalogs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.ranking.explain import explain
from shopsense.ranking.rules import Catalog, Filters, allowed, mmr

PRODUCTS = pd.DataFrame(
    {
        C.ITEM: ["p0", "p1", "p2", "p3", "p4"],
        C.TITLE: ["red kettle", "blue kettle", "green mug", "drill", "saw"],
        C.CATEGORY: ["Kitchen > Kettles", "Kitchen > Kettles", "Kitchen > Mugs", "Tools > Power", None],
        C.PRICE: [20.0, 35.0, 8.0, 99.0, np.nan],
        C.AVAILABLE: [True, False, True, True, True],
    }
)
ALL = np.arange(5)


def test_unavailable_and_seen_are_removed():
    cat = Catalog(PRODUCTS)
    ok = allowed(ALL, cat, Filters(), seen={2})
    assert ok.tolist() == [True, False, False, True, True]
    assert allowed(ALL, cat, Filters(only_available=False)).all()


def test_category_include_exclude_any_level_case_insensitive():
    cat = Catalog(PRODUCTS)
    assert allowed(ALL, cat, Filters(include_categories=("kitchen",), only_available=False)).tolist() == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert allowed(ALL, cat, Filters(include_categories=("Kitchen > Mugs",))).tolist() == [
        False,
        False,
        True,
        False,
        False,
    ]
    assert allowed(ALL, cat, Filters(exclude_categories=("Kettles",))).tolist() == [False, False, True, True, True]


def test_price_range_drops_unknown_prices():
    cat = Catalog(PRODUCTS)
    assert allowed(ALL, cat, Filters(price_min=10, price_max=50, only_available=False)).tolist() == [
        True,
        True,
        False,
        False,
        False,
    ]


def test_mmr_weight_zero_keeps_order_and_high_weight_diversifies():
    vec = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0, 1]], np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    items, scores = np.arange(4), np.array([1.0, 0.95, 0.9, 0.5])
    assert mmr(items, scores, vec, 2, 0.0).tolist() == [0, 1]
    assert mmr(items, scores, vec, 2, 0.7).tolist() == [0, 3]  # the near-duplicate kettle gives way


def test_explanations_name_the_reason():
    titles = PRODUCTS[C.TITLE].to_numpy(dtype=object)
    hist = np.array([0, 2])
    types = [C.VIEW, C.PURCHASE]
    assert explain("sequential", 1, hist, types, titles) == "often chosen next after “green mug”"
    assert explain("covisit", 3, hist, types, titles) == "because you bought “green mug”"  # no model: last item
    assert explain("popular_in_category", 3, hist, types, titles, category="Tools") == "popular in Tools"
    assert explain("content", 1, hist, types, titles, query="kettle") == "similar to your search “kettle”"
    vec = np.eye(5, dtype=np.float32)
    vec[1] = vec[0]
    assert explain("content", 1, hist, types, titles, vectors=vec) == "similar to “red kettle”"
    assert explain("trending", 4, hist, types, titles) == "trending now"
