"""The next-purchase protocol's pieces: which logs are funnels, the README's own-items peer, the metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.evaluation.next_purchase import gains, is_funnel_log, own_items_by_weighted_count, summarise
from shopsense.ranking.return_features import CART, PURCHASE, VIEW, ShopperEvents

DAY = 86400.0


def _ds(types: list[str]) -> Dataset:
    return Dataset.from_frames(
        pd.DataFrame({C.USER: "u", C.ITEM: [f"i{j}" for j in range(len(types))], C.EVENT_TYPE: types, C.TIMESTAMP: 1.0})
    )


def test_a_funnel_log_has_purchases_and_the_steps_before_them() -> None:
    assert is_funnel_log(_ds([C.VIEW, C.ADD_TO_CART, C.PURCHASE]))
    assert not is_funnel_log(_ds([C.PURCHASE, C.PURCHASE]))  # purchases only (a ratings log)
    assert not is_funnel_log(_ds([C.VIEW, C.CLICK]))  # nothing bought


def test_own_items_weighted_count_decays_by_day_and_breaks_ties_by_recency() -> None:
    now = 10 * DAY
    ev = ShopperEvents(
        np.array([1, 1, 2, 3, 4]),
        np.array([VIEW, VIEW, CART, VIEW, PURCHASE]),
        np.array([now - DAY, now - DAY, now - DAY, now - 3600, now - 5 * DAY]),
    )
    ranked = own_items_by_weighted_count([ev], np.array([now]))[0]
    # item 2: one cart a day ago (3 x 0.5 = 1.5) > item 1: two views a day ago (1.0) > item 3: one view
    # an hour ago (~0.97) > item 4: a purchase five days ago (4 / 32)
    assert ranked.tolist() == [2, 1, 3, 4]


def test_gains_and_summary() -> None:
    assert gains(np.array([5, 7, 9]), 5)["ndcg@10"] == 1.0
    assert abs(gains(np.array([5, 7, 9]), 7)["ndcg@10"] - 1 / np.log2(3)) < 1e-9
    g = gains(np.array([-1] * 15 + [3]), 3)
    assert g["hr@10"] == 0.0 and g["hr@20"] == 1.0
    s = summarise([np.array([1, 2]), np.array([2, 1])], np.array([1, 3]))
    assert s["hr@10"] == 0.5 and s["n_users"] == 2 and s["primary"] == "ndcg@10"
