"""The return scorer: features of a shopper's own items, learning what brings shoppers back to buy."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import ReturnsConfig
from shopsense.ranking.return_features import (
    CART,
    FEATURES,
    PURCHASE,
    REMOVAL,
    VIEW,
    ItemStats,
    ShopperEvents,
    cart_items,
    return_features,
)
from shopsense.ranking.returns import ReturnScorer

F = {n: i for i, n in enumerate(FEATURES)}
T0 = 1_700_000_000.0


def _products(n: int = 40) -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.ITEM: [f"p{i}" for i in range(n)],
            C.TITLE: [f"product {i}" for i in range(n)],
            C.CATEGORY: ["Coffee" if i < 5 else f"Cat {i % 7}" for i in range(n)],
        }
    )


def _log(n_shoppers: int = 150, seed: int = 0) -> pd.DataFrame:
    """Shoppers browse 6 products (some twice), cart one of them mid-way, browse on, then buy the
    carted one: the product they viewed last or most is a decoy."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_shoppers):
        t = T0 + u * 10_000
        seen = rng.choice(np.arange(5, 40), 6, replace=False)
        carted = seen[2]
        for step, item in enumerate([*seen[:3], carted, *seen[3:], seen[5], seen[4], *[seen[5]] * 4]):
            rows.append((f"u{u}", f"p{item}", C.VIEW, t + 60 * step))
            if step == 3:
                rows.append((f"u{u}", f"p{carted}", C.ADD_TO_CART, t + 60 * step + 5))
        rows.append((f"u{u}", f"p{carted}", C.PURCHASE, t + 3000))
    return pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP])


def _stats(n: int = 3) -> ItemStats:
    z = np.zeros(0, np.int64)
    return ItemStats.from_events(z, z, z, z.astype(float), _products(n))


def test_features_count_kinds_and_keep_the_cart_until_removed_or_bought():
    ev = ShopperEvents(
        np.array([0, 1, 0, 1, 2, 2]),
        np.array([VIEW, CART, VIEW, REMOVAL, CART, PURCHASE]),
        np.array([0.0, 10, 20, 30, 40, 50]) + T0,
    )
    items, f = return_features(ev, T0 + 3600, _stats())
    assert list(items) == [0, 1, 2]
    assert list(f[:, F["n_view"]]) == [2, 0, 0] and list(f[:, F["n_cart"]]) == [0, 1, 1]
    assert list(f[:, F["in_cart"]]) == [0, 0, 0]  # 1 removed, 2 bought since it was carted
    assert list(f[:, F["bought"]]) == [0, 0, 1] and list(f[:, F["is_last"]]) == [0, 0, 1]
    assert list(cart_items(ev)) == []
    assert list(cart_items(ShopperEvents(np.array([3, 4, 4]), np.array([CART, CART, REMOVAL]), np.zeros(3)))) == [3]
    kept = ShopperEvents(np.array([1]), np.array([CART]), np.array([T0]))
    assert return_features(kept, T0 + 60, _stats())[1][0, F["in_cart"]] == 1


def test_scorer_learns_that_carted_items_are_bought():
    ds = Dataset.from_frames(_log(), _products())
    scorer = ReturnScorer.fit(ds, ReturnsConfig(rounds=100))
    assert scorer is not None
    m = scorer.metrics
    assert m["oof_purchase_ndcg@10_returns"] > m["oof_purchase_ndcg@10_decayed_count"] + 0.1
    # a new shopper of the same habits: the carted product first, though viewed less and less lately
    fresh = _log(20, seed=1)
    hits = 0
    for _, g in fresh.groupby(C.USER):
        buy = g[g[C.EVENT_TYPE] == C.PURCHASE].iloc[0]
        before = g[g[C.TIMESTAMP] < buy[C.TIMESTAMP]]
        ev = ShopperEvents.of(ds.items.to_internal(before[C.ITEM]), before[C.EVENT_TYPE], before[C.TIMESTAMP])
        items, probs, _ = scorer.score(ev, float(buy[C.TIMESTAMP]))
        hits += items[np.argmax(probs)] == ds.items.to_internal([buy[C.ITEM]])[0]
        assert ((probs >= 0) & (probs <= 1)).all()
    assert hits >= 18


def test_a_log_without_returns_learns_nothing():
    rows = [(f"u{u}", f"p{(u + s) % 40}", C.RATING, T0 + s) for u in range(100) for s in range(3)]
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP]), _products())
    assert ReturnScorer.fit(ds, ReturnsConfig()) is None


def test_rebuy_is_learned_per_category_and_the_settings_override_it(tmp_path):
    rows = []
    for u in range(20):  # coffee is bought again a week later; four other categories once
        rows += [(f"u{u}", "p1", C.PURCHASE, T0 + u), (f"u{u}", "p2", C.PURCHASE, T0 + 7 * 86400 + u)]
        rows += [(f"u{u}", f"p{i}", C.PURCHASE, T0 + 100 * i + u) for i in (12, 13, 14, 15)]
        rows += [(f"u{u}", "p1", C.VIEW, T0 + 2000 + u)] + [(f"u{u}", "p12", C.VIEW, T0 + 3000 + u)] * 2
    ds = Dataset.from_frames(pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP]), _products())
    scorer = ReturnScorer.fit(ds, ReturnsConfig(min_moments=5, rounds=20))
    assert scorer is not None
    coffee, other = ds.items.to_internal(["p1", "p12"])
    # the shop's rate (1 in 5 categories re-bought) decides for categories with few buyers, not these
    assert list(scorer.rebuyable(np.array([coffee, other]))) == [True, False]
    scorer.config = scorer.config.model_copy(
        update={"never_rebuy_categories": ["Coffee"], "rebuy_categories": ["Cat 5"]}
    )
    assert list(scorer.rebuyable(np.array([coffee, other]))) == [False, True]  # p12 is in "Cat 5"
    scorer.save(tmp_path / "r")
    again = ReturnScorer.load(tmp_path / "r")
    ev = ShopperEvents(np.array([coffee, other]), np.array([PURCHASE, VIEW]), np.array([T0, T0 + 5]))
    np.testing.assert_allclose(again.score(ev, T0 + 99)[1], scorer.score(ev, T0 + 99)[1], rtol=1e-6)


@pytest.mark.parametrize("n", [1, 5])
def test_features_have_one_row_per_distinct_item(n):
    ev = ShopperEvents(np.arange(n).repeat(2), np.full(2 * n, VIEW), T0 + np.arange(2 * n, dtype=float))
    items, f = return_features(ev, T0 + 100, _stats(max(n, 3)))
    assert f.shape == (n, len(FEATURES)) and np.isfinite(f[:, F["decayed_count"]]).all()


def test_a_bare_chinese_catalog_still_learns_returns():
    """A shop's minimal catalog: item_id and a Chinese title, no category or price."""
    bare = pd.DataFrame({C.ITEM: [f"p{i}" for i in range(40)], C.TITLE: [f"咖啡机 {i}" for i in range(40)]})
    ds = Dataset.from_frames(_log(), bare)
    scorer = ReturnScorer.fit(ds, ReturnsConfig(rounds=50))
    assert scorer is not None and scorer.stats.categories == []
    ev = ShopperEvents(np.array([5, 6]), np.array([VIEW, CART]), np.array([T0, T0 + 60]))
    items, probs, feats = scorer.score(ev, T0 + 120)
    assert list(items) == [5, 6] and probs[1] > probs[0]
    assert np.isnan(feats[:, F["log_price"]]).all() and (feats[:, F["cat_events"]] == 0).all()
    assert scorer.rebuyable(items).shape == (2,)
