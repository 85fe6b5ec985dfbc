"""What a shopper was already shown: the exposure columns, and an outcome ranker that learns from a
log where a product passed over once is never clicked later."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.outcomes import label_impressions
from shopsense.models.base import Histories
from shopsense.ranking.exposure import DAY, HOUR, NAMES, Exposure
from shopsense.ranking.pipeline import Engine, EngineConfig
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.training import train
from tests.ranking.test_outcomes import FAST, T0, browse, catalog, impression, logged_store

N_USERS = 240


def test_columns_count_what_was_shown_before_now_within_the_window() -> None:
    shown = Exposure(
        np.array([5, 7, 5, 9, 5]),
        np.array([3, 0, 1, 2, 8]),
        np.array([0.0, 10 * DAY, 20 * DAY, 29 * DAY, 30 * DAY]),
    )
    cols = shown.columns(np.array([5, 7, 9, 11]), now=30 * DAY, days=25, limit=100)
    assert list(NAMES) == ["times_shown", "best_shown_position", "hours_since_shown"]
    # item 5: the showing at day 0 is outside the window, the one at day 30 is not before now
    assert cols[0].tolist() == [1.0, 1.0, 10 * DAY / HOUR]
    assert cols[1].tolist() == [1.0, 0.0, 20 * DAY / HOUR]
    assert cols[2].tolist() == [1.0, 2.0, 1 * DAY / HOUR]
    assert cols[3, 0] == 0 and np.isnan(cols[3, 1:]).all()  # never shown
    # only the latest ``limit`` impressions count
    latest = shown.columns(np.array([5, 7, 9]), now=31 * DAY, days=40, limit=2)
    assert latest[:, 0].tolist() == [1.0, 0.0, 1.0]
    assert Exposure.none().columns(np.array([1, 2]), 0.0, 30, 10)[:, 0].tolist() == [0.0, 0.0]


def shop(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Shoppers browse one category; on four days they are shown ten products of the others, and
    click a product half the time the first time they see it, never again after passing it over."""
    rng = np.random.default_rng(seed)
    items, products = catalog()
    events: list[tuple] = []
    impressions = []
    for u in range(N_USERS):
        cat, _ = browse(rng, u, events)
        others = [x for x in items if not x.startswith(f"c{cat}i")][:15]  # a small pool: showings repeat
        seen: set[str] = set()
        for n in range(4):
            t = T0 + (8 + n) * DAY + u
            rid = f"r{u}-{n}"
            for pos, item in enumerate(rng.choice(others, 10, replace=False)):
                impressions.append(impression(rid, f"u{u}", str(item), pos, t))
                if item not in seen and rng.random() < 0.5:
                    events.append((f"u{u}", item, C.CLICK, t + 10, rid))
                seen.add(str(item))
    ev = pd.DataFrame(events, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.REQUEST_ID])
    return products, ev.sort_values(C.TIMESTAMP, kind="stable"), pd.DataFrame(impressions)


@pytest.fixture(scope="module")
def logged() -> tuple[Dataset, pd.DataFrame]:
    products, events, impressions = shop()
    ds = Dataset.from_frames(events.drop(columns=[C.REQUEST_ID]), products)
    return ds, label_impressions(impressions, events)


def test_the_outcome_ranker_learns_that_a_product_passed_over_is_not_clicked(
    logged: tuple[Dataset, pd.DataFrame],
) -> None:
    ds, labelled = logged
    eng = Engine(EngineConfig(**FAST)).fit(ds, outcomes=labelled)
    blind = Engine(EngineConfig(**{**FAST, "outcomes": {**FAST["outcomes"], "exposure": False}})).fit(
        ds, outcomes=labelled
    )
    m, b = eng.metrics["outcomes"], blind.metrics["outcomes"]
    assert m["chosen"] == "outcome ranker" and eng.wants_exposure and not blind.wants_exposure
    # what was shown before is what tells the clicks apart here: without it the ranker is near chance
    assert m["heldout_ndcg@10"]["outcome_ranker"] > b["heldout_ndcg@10"]["outcome_ranker"] + 0.1, (m, b)
    assert "times_shown" in eng.ranker.importance() if eng.ranker is not None else False
    # served: the products shown yesterday fall behind the ones never shown
    hist = Histories([ds.items.to_internal(["c0i1", "c0i2", "c0i3"])])
    now = T0 + 20 * DAY
    first, _, _ = eng.rank(hist, 10, hist.matrix(ds.n_items), None, now)
    top = first[0][:5]
    shown = Exposure(top, np.arange(5), np.full(5, now - DAY))
    again, _, _ = eng.rank(hist, 10, hist.matrix(ds.n_items), [shown], now)
    assert not set(again[0][:5].tolist()) & set(top.tolist()), (first, again)


def test_served_lists_read_the_shoppers_latest_impressions(tmp_path: Path) -> None:
    products, events, impressions = shop()
    store, settings = logged_store(tmp_path, products, events, impressions)
    train(store, settings)
    rec = Recommender.from_store(store, settings)
    assert rec.engine.wants_exposure
    first = [r.item_id for r in rec.recommend(RecommendRequest(user_id="u0", k=10))]
    now = time.time()
    store.log_impressions(
        pd.DataFrame(
            {
                C.REQUEST_ID: "later",
                C.USER: "u0",
                C.ITEM: first[:5],
                C.POSITION: range(5),
                C.SURFACE: "recommend",
                C.TIMESTAMP: now - HOUR,
            }
        )
    )
    again = [r.item_id for r in rec.recommend(RecommendRequest(user_id="u0", k=10))]
    assert not set(again[:5]) & set(first[:5]), (first, again)
    # as of a moment before those impressions (the recommender's clock), they do not count
    rec.clock = lambda: now - 2 * HOUR
    assert [r.item_id for r in rec.recommend(RecommendRequest(user_id="u0", k=10))] == first
    # another shopper's list does not move
    other = [r.item_id for r in rec.recommend(RecommendRequest(user_id="u1", k=10))]
    assert other == [r.item_id for r in rec.recommend(RecommendRequest(user_id="u1", k=10))]
