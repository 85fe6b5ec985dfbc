"""Items' click-through rates in the impression log: position-corrected, smoothed, and never from a
list's own outcomes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.outcomes import label_impressions
from shopsense.ranking.ctr import NAMES, PRIOR_EXAMINATIONS, ItemRates, overwrite
from shopsense.ranking.propensity import Propensities


def test_rates_are_smoothed_towards_the_logs_rate() -> None:
    # item 0: shown 40 times, acted on 20; item 1: shown 10 times, never; item 2: never shown
    items = np.array([0] * 40 + [1] * 10)
    acted = np.array([True] * 20 + [False] * 20 + [False] * 10)
    r = ItemRates(np.arange(50.0), items, np.ones(50), acted, n_items=3)
    assert r.prior == pytest.approx(20 / 50)
    f = r.as_of()
    assert f[0, 0] == pytest.approx((20 + PRIOR_EXAMINATIONS * 0.4) / (40 + PRIOR_EXAMINATIONS))
    assert f[1, 0] == pytest.approx(PRIOR_EXAMINATIONS * 0.4 / (10 + PRIOR_EXAMINATIONS))
    assert f[2, 0] == pytest.approx(0.4) and f[2, 1] == 0.0  # never shown: the log's rate, nothing behind it
    assert f[0, 0] > f[2, 0] > f[1, 0]
    assert f[0, 1] == pytest.approx(np.log1p(40))


def test_a_lists_rates_come_from_the_impressions_before_it() -> None:
    items = np.array([0, 0, 0, 1])
    r = ItemRates(np.array([1.0, 2.0, 3.0, 3.0]), items, np.ones(4), np.array([True, True, False, True]), 2)
    # a list at time 3 sees the two impressions before it; one at time 1 sees none
    late, early = r.at_lists(np.array([3.0, 1.0]), [np.array([0, 1]), np.array([0])])
    assert late[0, 1] == pytest.approx(np.log1p(2)) and late[1, 1] == 0.0
    assert early[0, 1] == 0.0 and early[0, 0] == pytest.approx(r.prior)
    assert np.allclose(r.at_lists(np.array([np.inf]), [np.array([0, 1])])[0], r.as_of())
    x = [np.zeros((2, 4), np.float32)]
    overwrite(x, ["a", *NAMES, "b"], [late])
    assert np.allclose(x[0][:, 1:3], late) and not x[0][:, [0, 3]].any()


def test_a_click_at_the_bottom_counts_for_more_than_one_on_top() -> None:
    items = [f"i{i}" for i in range(2)]
    ds = Dataset.from_frames(
        pd.DataFrame({C.USER: ["u"] * 2, C.ITEM: items, C.EVENT_TYPE: [C.VIEW] * 2, C.TIMESTAMP: [0.0, 1.0]}),
        pd.DataFrame({C.ITEM: items}),
    )
    rows = []
    for n in range(30):  # i0 always on top, i1 always at position 10; each acted on 3 times in 30
        for item, pos in (("i0", 0), ("i1", 9)):
            rows.append({C.REQUEST_ID: f"r{n}", C.USER: "u", C.ITEM: item, C.POSITION: pos, C.TIMESTAMP: 10.0 + n})
    clicks = pd.DataFrame(
        [
            {C.USER: "u", C.ITEM: item, C.EVENT_TYPE: C.CLICK, C.TIMESTAMP: 11.0 + n, C.REQUEST_ID: f"r{n}"}
            for n in range(0, 30, 10)
            for item in items
        ]
    )
    labelled = label_impressions(pd.DataFrame(rows), clicks)
    plain = ItemRates.from_outcomes(labelled, ds, None).as_of()
    assert plain[0, 0] == pytest.approx(plain[1, 0])
    fair = ItemRates.from_outcomes(labelled, ds, Propensities(eta=1.0)).as_of()
    assert fair[1, 0] > 2 * fair[0, 0]  # examined a tenth as often, acted on as often: far better
