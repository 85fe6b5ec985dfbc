"""The swap-intervention estimator recovers known examination probabilities from a simulated log."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.experiments.position_swap import SWAP_DEPTH, position_swap
from shopsense.ranking.propensity import MIN_PROPENSITY, estimate


def simulated_log(eta: float, n_requests: int, share: float, seed: int = 0) -> pd.DataFrame:
    """Lists of 10 whose ranked items grow less relevant down the list, shown with the service's
    swap, clicked under a position-based model: P(click) = examination(position) x relevance."""
    rng = np.random.default_rng(seed)
    coin = random.Random(seed)
    rows = []
    for r in range(n_requests):
        relevance = np.sort(rng.uniform(0.05, 0.6, 10))[::-1]  # the ranking puts the best on top
        shown, ranked = position_swap(list(range(10)), share, coin)
        for pos, item in enumerate(shown):
            p = (pos + 1.0) ** -eta * relevance[item]
            rows.append(
                {
                    C.REQUEST_ID: f"r{r}",
                    C.POSITION: pos,
                    C.RANKED_POSITION: None if ranked is None else ranked[pos],
                    C.EXPERIMENT: None,
                    C.CLICK: bool(rng.random() < p),
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("eta", [1.0, 0.5])
def test_estimate_recovers_the_examination_curve(eta: float) -> None:
    log = simulated_log(eta, 40_000, share=0.1)
    got = estimate(log)
    assert got is not None
    assert got.eta == pytest.approx(eta, abs=0.15)
    positions = np.arange(SWAP_DEPTH)
    np.testing.assert_allclose(got.at(positions), np.maximum((positions + 1.0) ** -eta, MIN_PROPENSITY), atol=0.07)
    assert got.swapped_requests == pytest.approx(4_000, rel=0.15)


def test_without_a_position_effect_eta_is_near_zero() -> None:
    got = estimate(simulated_log(0.0, 30_000, share=0.1))
    assert got is not None and got.eta < 0.15


def test_too_few_swapped_clicks_give_no_estimate() -> None:
    assert estimate(simulated_log(1.0, 300, share=0.02)) is None
    assert estimate(pd.DataFrame()) is None


def test_the_swap_keeps_the_items_and_records_where_each_was_ranked() -> None:
    coin = random.Random(3)
    shown, ranked = position_swap(list("abcdefghijkl"), 1.0, coin)
    assert ranked is not None and sorted(shown) == list("abcdefghijkl")
    k = ranked[0]
    assert 1 <= k < SWAP_DEPTH and shown[0] == "abcdefghijkl"[k] and shown[k] == "a"
    assert [list("abcdefghijkl")[p] for p in ranked] == shown
    assert position_swap(list("ab"), 0.0, coin) == (["a", "b"], None)
    assert position_swap(["a"], 1.0, coin) == (["a"], None)
