"""The surfaces' list logic: the for_you mix of discovery and return items, and complements."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.models.complements import Complements
from shopsense.recommend.fallbacks import Ranked
from shopsense.recommend.surfaces import RETURN, for_you


def _ranked(items, scores, source):
    return Ranked(np.array(items, np.int64), np.array(scores, np.float32), [source] * len(items))


def test_for_you_orders_by_probability_and_caps_the_return_share():
    discovery = _ranked([10, 11, 12, 13, 14], [9, 8, 7, 6, 5], "itemknn")
    hit_rate = [0.05, 0.03, 0.02, 0.01, 0.01]
    returns = _ranked([1, 2, 3, 4], [0.5, 0.04, 0.025, 0.001], RETURN)
    mixed = for_you(discovery, hit_rate, returns, k=5, max_share=1.0)
    assert list(mixed.items[:6]) == [1, 10, 2, 11, 3, 12]
    capped = for_you(discovery, hit_rate, returns, k=5, max_share=0.4)  # at most 2 of the first 5
    first = list(capped.items[:5])
    assert sum(i < 10 for i in first) == 2 and first[:2] == [1, 10]
    assert sorted(capped.items.tolist()) == sorted([*discovery.items, *returns.items])  # nothing lost
    assert for_you(discovery, hit_rate, _ranked([], [], RETURN), 5, 0.8) is discovery


def _baskets() -> tuple[pd.DataFrame, np.ndarray]:
    """Item 0 (a coffee machine) is bought with 1 (filters) and 2 (cups) and sometimes 3 (another
    machine, same category); 4 and 5 are cups too; 6 is bought alone."""
    rows = []
    for u in range(12):
        t = 1e9 + u * 1e5
        basket = [0, 1, 2] if u % 3 else [0, 1, 3]
        rows += [(u, i, C.PURCHASE, t + 10 * j) for j, i in enumerate(basket)]
        rows += [(u, 6, C.PURCHASE, t + 5000)]  # a later session
    rows += [(20, 4, C.ADD_TO_CART, 2e9), (20, 5, C.PURCHASE, 2e9 + 60), (20, 2, C.PURCHASE, 2e9 + 90)]
    inter = pd.DataFrame(rows, columns=[C.USER_IDX, C.ITEM_IDX, C.EVENT_TYPE, C.TIMESTAMP])
    category = np.array([0, 1, 2, 0, 2, 2, 3])
    return inter, category


def test_complements_are_bought_together_not_substitutes():
    inter, category = _baskets()
    comp = Complements().fit(inter, 7, category)
    items, scores = comp.of(np.array([0]), 5)
    assert list(items[:2]) == [1, 2]  # filters, cups; never the other machine (3), never 6 (another session)
    assert 3 not in items and 6 not in items and 0 not in items
    assert (np.diff(scores) <= 0).all()


def test_complements_keep_categories_diverse_and_exclude_the_cart():
    inter, category = _baskets()
    comp = Complements().fit(inter, 7, category)
    items, _ = comp.of(np.array([1]), 5, per_category=1)
    cats = category[items]
    assert len(set(cats.tolist())) == len(cats)  # one per category
    cart_items, _ = comp.of(np.array([0, 1]), 5, exclude=np.array([2]))
    assert 2 not in cart_items and 0 not in cart_items and 1 not in cart_items
