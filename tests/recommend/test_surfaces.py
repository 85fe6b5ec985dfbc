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


def _complements_by_definition(comp: Complements, anchors: np.ndarray, k: int, exclude: np.ndarray, cap: int):
    """The module docstring's ranking over the whole catalog: direct basket shares first, then the best
    sellers of the categories bought with the anchors'; no anchor, excluded item or anchor category;
    at most ``cap`` per category; ties to the lower item index."""
    n = len(comp.category)
    direct = np.asarray((comp.pairs[anchors].T @ (1.0 / (comp.baskets[anchors] + 2.0))).ravel()).ravel()
    anchor_cats = np.unique(comp.category[anchors][comp.category[anchors] >= 0])
    cat_score = np.asarray(comp.cat_pairs[anchor_cats].sum(axis=0)).ravel()
    fallback = (direct <= 0) & (comp.category >= 0) & (comp.sales > 0)
    fallback &= cat_score[np.maximum(comp.category, 0)] > 0
    rel = cat_score[np.maximum(comp.category, 0)] / (cat_score.max() + 1e-9)
    score = np.where(direct > 0, direct, 0.0)
    score = np.where(fallback, 1e-3 * rel * np.log1p(comp.sales) / (np.log1p(comp.sales.max()) + 1e-9), score)
    ok = (score > 0) & ~np.isin(np.arange(n), anchors) & ~np.isin(np.arange(n), exclude)
    ok &= ~np.isin(comp.category, anchor_cats) | (comp.category < 0)
    out, taken = [], {}
    for i in sorted(np.flatnonzero(ok), key=lambda i: (-score[i], i)):
        c = int(comp.category[i])
        if c < 0 or taken.get(c, 0) < cap:
            taken[c] = taken.get(c, 0) + 1
            out.append(int(i))
    return out[:k]


def test_complements_read_only_the_best_sellers_they_need_and_still_match_the_definition():
    """The category fallback reads a prefix of each category's best sellers (not the catalog): the
    same lists as the definition, on random shops where anchors, excluded items and direct partners
    sit among a category's best sellers."""
    rng = np.random.default_rng(0)
    for trial in range(30):
        n, n_cat = 300, 6
        category = rng.integers(-1, n_cat, n)
        events = 600
        inter = pd.DataFrame(
            {
                C.USER_IDX: rng.integers(0, 80, events),
                C.ITEM_IDX: rng.zipf(1.5, events) % n,
                C.EVENT_TYPE: rng.choice([C.ADD_TO_CART, C.PURCHASE], events),
                C.TIMESTAMP: np.sort(rng.uniform(0, 5e5, events)),
            }
        )
        comp = Complements().fit(inter, n, category)
        sold = np.flatnonzero(comp.sales > 0)
        anchors = rng.choice(sold, int(rng.integers(1, 4)), replace=False)
        exclude = rng.choice(sold, int(rng.integers(0, 6)), replace=False)
        cap = int(rng.integers(1, 3))
        items, _ = comp.of(anchors, 12, exclude=exclude, per_category=cap)
        assert items.tolist() == _complements_by_definition(comp, anchors, 12, exclude, cap), trial
