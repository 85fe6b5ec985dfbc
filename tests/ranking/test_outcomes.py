"""The ranker learned from outcomes: a synthetic shop whose shoppers browse one category but click,
in the lists they are shown, the items of other categories. Next-item labels alone teach "more of
the same category"; the logged outcomes teach the opposite, and the outcome ranker must follow them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import Settings, load_settings
from shopsense.data.dataset import Dataset
from shopsense.data.outcomes import label_impressions
from shopsense.models.base import Histories
from shopsense.ranking.outcomes import ndcg_at, shown_lists
from shopsense.ranking.pipeline import Engine, EngineConfig
from shopsense.store import KnowledgeStore, open_store

DAY = 86_400.0
T0 = 1_700_000_000.0
N_CAT, PER_CAT, N_USERS = 6, 10, 240

FAST = {
    "ease": None,
    "sequential": None,
    "content": None,
    "returns": None,
    "per_source": 20,
    "ranker_config": {"rounds": 40, "min_data_in_leaf": 5},
    "outcomes": {"min_impressions": 100, "heldout_share": 0.25},
}


def catalog() -> tuple[list[str], pd.DataFrame]:
    """The item ids and products: ``N_CAT`` categories of ``PER_CAT`` items."""
    items = [f"c{c}i{i}" for c in range(N_CAT) for i in range(PER_CAT)]
    return items, pd.DataFrame({C.ITEM: items, C.TITLE: items, C.CATEGORY: [f"cat{i // PER_CAT}" for i in range(60)]})


def browse(rng: np.random.Generator, u: int, events: list[tuple]) -> tuple[int, list[str]]:
    """Shopper ``u`` views 8 items of their category (``u % N_CAT``), one a day on days 0..7;
    returns the category and its items."""
    cat = u % N_CAT
    own = [f"c{cat}i{i}" for i in range(PER_CAT)]
    for step, item in enumerate(rng.permutation(own)[:8]):
        events.append((f"u{u}", item, C.VIEW, T0 + step * DAY + rng.uniform(0, 3600), None))
    return cat, own


def shop(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(products, events with the outcome events, impressions)."""
    rng = np.random.default_rng(seed)
    items, products = catalog()
    events: list[tuple] = []
    impressions = []
    for u in range(N_USERS):
        cat, own = browse(rng, u, events)
        for n in range(3):  # lists shown on day 8: half the own category, half others; clicks on others
            t = T0 + 8 * DAY + n * 3600 + u
            others = [x for x in items if not x.startswith(f"c{cat}i")]
            shown = list(
                rng.permutation(list(rng.choice(own, 5, replace=False)) + list(rng.choice(others, 5, replace=False)))
            )
            rid = f"r{u}-{n}"
            for pos, item in enumerate(shown):
                impressions.append(impression(rid, f"u{u}", item, pos, t))
                p = 0.05 if item.startswith(f"c{cat}i") else 0.5
                if rng.random() < p:
                    events.append((f"u{u}", item, C.CLICK, t + 10, rid))
    ev = pd.DataFrame(events, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.REQUEST_ID])
    return products, ev.sort_values(C.TIMESTAMP, kind="stable"), pd.DataFrame(impressions)


def impression(request_id: str, user: str, item: str, position: int, t: float) -> dict:
    """One logged impression of the home page's list, outside any experiment."""
    return {
        C.REQUEST_ID: request_id,
        C.USER: user,
        C.ITEM: item,
        C.POSITION: position,
        C.SURFACE: "recommend",
        C.TIMESTAMP: t,
        C.EXPERIMENT: None,
        C.RANKED_POSITION: None,
    }


def logged_store(
    tmp_path: Path, products: pd.DataFrame, events: pd.DataFrame, impressions: pd.DataFrame
) -> tuple[KnowledgeStore, Settings]:
    """A knowledge store under ``tmp_path`` holding a logged shop, and settings with the small engine."""
    settings = load_settings(home=tmp_path / "home").model_copy(update={"engine": EngineConfig(**FAST)})
    store = open_store(settings.store_url)
    store.upsert_products(products)
    store.add_events(events)
    store.log_impressions(impressions)
    return store, settings


@pytest.fixture(scope="module")
def logged() -> tuple[Dataset, pd.DataFrame]:
    products, events, impressions = shop()
    ds = Dataset.from_frames(events.drop(columns=[C.REQUEST_ID]), products)
    return ds, label_impressions(impressions, events)


def test_shown_lists_keep_lists_with_an_outcome_in_time_order(logged: tuple[Dataset, pd.DataFrame]) -> None:
    ds, labelled = logged
    cfg = EngineConfig(**FAST).outcomes
    assert cfg is not None
    lists = shown_lists(labelled, ds, cfg)
    assert 0.9 * 3 * N_USERS <= len(lists) <= 3 * N_USERS  # almost every list drew a click
    assert np.all(np.diff(lists.times) >= 0) and lists.cutoff == pytest.approx(T0 + 8 * DAY)
    assert all(len(i) == 10 and set(g.tolist()) <= {0, 1} for i, g in zip(lists.items, lists.grades, strict=True))
    assert len(shown_lists(labelled.assign(surface="search"), ds, cfg)) == 0  # other surfaces teach nothing here


def test_the_outcome_ranker_learns_what_shoppers_clicked(logged: tuple[Dataset, pd.DataFrame]) -> None:
    ds, labelled = logged
    eng = Engine(EngineConfig(**FAST)).fit(ds, outcomes=labelled)
    m = eng.metrics["outcomes"]
    assert m["chosen"] == "outcome ranker", m
    h = m["heldout_ndcg@10"]
    assert h["outcome_ranker"] > h["served_without_it"] + 0.1 and h["outcome_ranker"] > h["logged_order"] + 0.1
    assert m["propensities"].startswith("not measured")  # no swapped slice in this log
    # served: for a shopper of category 0, other categories' items come first
    hist = Histories([ds.items.to_internal(["c0i1", "c0i2", "c0i3"])])
    items, _, _ = eng.rank(hist, 5, hist.matrix(ds.n_items))
    top = [str(x) for x in ds.items.to_external(items[0][items[0] >= 0])]
    assert top and sum(not t.startswith("c0i") for t in top) >= 4, top


def test_a_thin_log_leaves_the_fusion(logged: tuple[Dataset, pd.DataFrame]) -> None:
    ds, labelled = logged
    cfg = {**FAST, "outcomes": {"min_impressions": 10**6}}
    eng = Engine(EngineConfig(**cfg)).fit(ds, outcomes=labelled)
    assert eng.ranker is None and eng.metrics["outcomes"]["chosen"].startswith("not used")


def test_ndcg_weights_gains_by_grade_and_propensity() -> None:
    g = [np.array([0, 1, 3])]
    assert ndcg_at([np.array([0.0, 1.0, 2.0])], g, [np.ones(3)]) == pytest.approx(1.0)
    worse = ndcg_at([np.array([2.0, 1.0, 0.0])], g, [np.ones(3)])
    assert 0 < worse < 1
    # a click weighted up (seen rarely where it was shown) counts more than the purchase
    assert ndcg_at([np.array([0.0, 2.0, 1.0])], g, [np.array([1.0, 20.0, 1.0])]) == pytest.approx(1.0)


def test_train_reads_the_logged_outcomes_from_the_store(tmp_path) -> None:
    """``shopsense train``'s path: impressions and their outcome events in the knowledge store, the
    version's metrics say how many lists were used and what they gained."""
    from shopsense.training import train

    store, settings = logged_store(tmp_path, *shop(seed=1))
    result = train(store, settings)
    out = result.metrics["outcomes"]
    assert out["lists"] >= 0.9 * 3 * N_USERS and out["impressions"] == 10 * out["lists"]
    assert out["chosen"] == "outcome ranker" and out["heldout_gain"] > 0.1
    off = train(store, settings.model_copy(update={"engine": EngineConfig(**{**FAST, "outcomes": None})}))
    assert "outcomes" not in off.metrics
    store.close()


def test_lists_shown_before_the_shoppers_first_event_are_left_out(logged: tuple[Dataset, pd.DataFrame]) -> None:
    from shopsense.ranking.outcomes import list_features

    ds, labelled = logged
    early = labelled[labelled[C.REQUEST_ID] == "r0-0"].assign(
        **{C.REQUEST_ID: "early", C.TIMESTAMP: T0 - DAY, C.CLICK: True}
    )
    cfg = EngineConfig(**FAST)
    assert cfg.outcomes is not None
    lists = shown_lists(pd.concat([early, labelled]), ds, cfg.outcomes)
    eng = Engine(cfg).fit(ds)
    assert eng.side is not None
    feats, kept = list_features(eng, lists, ds, eng.side)
    assert len(kept) == len(lists) - 1 and kept.times.min() > T0 and len(feats.items) == len(kept)
