"""The joint ranker: one LambdaRank model over the recommendation lists and the search lists a shop
logged. The synthetic shop: shoppers browse one category; in the lists they are shown (home page
and a search whose query every product matches alike) they click the items of the category they
browsed. Search's own ranking knows nothing of the shopper; the joint ranker learns from the
history features both surfaces share, so it must win on the held-out search lists and rank a
shopper's category first when it serves search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.data.outcomes import label_impressions
from shopsense.ranking.joint import (
    ON_SEARCH,
    Q_PREFIX,
    SearchRanker,
    is_joint,
    joint_names,
    search_rows,
    split_names,
)
from shopsense.ranking.outcomes import SEARCH, shown_lists
from shopsense.ranking.pipeline import Engine, EngineConfig
from shopsense.ranking.ranker import widen
from tests.ranking.test_outcomes import DAY, FAST, N_CAT, N_USERS, PER_CAT, T0, logged_store


def shop(seed: int = 0, anonymous_share: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(products, events with the outcome events, impressions of both surfaces)."""
    rng = np.random.default_rng(seed)
    items = [f"c{c}i{i}" for c in range(N_CAT) for i in range(PER_CAT)]
    products = pd.DataFrame(
        {
            C.ITEM: items,
            C.TITLE: [f"widget {i} model {c}" for c in range(N_CAT) for i in range(PER_CAT)],
            C.CATEGORY: [f"cat{i // PER_CAT}" for i in range(len(items))],
        }
    )
    events, impressions = [], []
    for u in range(N_USERS):
        cat = u % N_CAT
        own = [f"c{cat}i{i}" for i in range(PER_CAT)]
        others = [x for x in items if not x.startswith(f"c{cat}i")]
        for step, item in enumerate(rng.permutation(own)[:8]):
            events.append((f"u{u}", item, C.VIEW, T0 + step * DAY + rng.uniform(0, 3600), None, None))
        for n, surface in enumerate(["recommend", SEARCH, "recommend", SEARCH]):
            t = T0 + 8 * DAY + n * 3600 + u
            rid = f"{surface}-{u}-{n}"
            user = "anonymous" if surface == SEARCH and rng.random() < anonymous_share else f"u{u}"
            if surface == SEARCH:
                events.append((user, None, C.SEARCH, t, "widget", rid))
            shown = rng.permutation(
                list(rng.choice(own, 5, replace=False)) + list(rng.choice(others, 5, replace=False))
            )
            for pos, item in enumerate(shown):
                impressions.append(
                    {
                        C.REQUEST_ID: rid,
                        C.USER: user,
                        C.ITEM: item,
                        C.POSITION: pos,
                        C.SURFACE: surface,
                        C.QUERY: "widget" if surface == SEARCH else None,
                        C.TIMESTAMP: t,
                    }
                )
                if rng.random() < (0.5 if item.startswith(f"c{cat}i") else 0.05):
                    events.append((user, item, C.CLICK, t + 10, None, rid))
    ev = pd.DataFrame(events, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.QUERY, C.REQUEST_ID])
    return products, ev.sort_values(C.TIMESTAMP, kind="stable"), pd.DataFrame(impressions)


class NoisySearch:
    """Search that knows nothing of the shopper: noise for features and for its own ranking."""

    names = ("bm25", "dense", "affinity")

    def __init__(self) -> None:
        self.rng = np.random.default_rng(5)

    def __call__(self, query: str, item_ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
        x = self.rng.normal(size=(len(item_ids), 3)).astype(np.float32)
        served = x[:, 0] + x[:, 1]
        served[[i for i, item in enumerate(item_ids) if item.endswith("i9")]] = np.nan  # not retrieved now
        return x, served


@pytest.fixture(scope="module")
def logged() -> tuple[Dataset, pd.DataFrame]:
    products, events, impressions = shop()
    item_events = events[events[C.ITEM].notna()].drop(columns=[C.REQUEST_ID, C.QUERY])
    ds = Dataset.from_frames(item_events[item_events[C.USER] != "anonymous"], products)
    return ds, label_impressions(impressions, events)


@pytest.fixture(scope="module")
def trained(logged: tuple[Dataset, pd.DataFrame]) -> Engine:
    ds, labelled = logged
    return Engine(EngineConfig(**FAST)).fit(ds, outcomes=labelled, search_featurer=NoisySearch())


def test_the_joint_table_leaves_what_a_surface_lacks_missing() -> None:
    names = joint_names(["covisit_score", "log_pop", "cat_share"], ["bm25", "affinity"])
    assert names == ["covisit_score", "log_pop", "cat_share", f"{Q_PREFIX}bm25", f"{Q_PREFIX}affinity", ON_SEARCH]
    assert is_joint(names) and split_names(names) == (["covisit_score", "log_pop", "cat_share"], ["bm25", "affinity"])
    rec = widen(np.ones((2, 3), np.float32), len(names))
    assert np.all(rec[:, :3] == 1) and np.isnan(rec[:, 3:]).all()  # a recommendation row: no query, no surface flag
    row = search_rows(
        3, 1, ["bm25", "affinity"], np.array([[2.0, 0.7]], np.float32), np.array([[0.5, 0.25]], np.float32)
    )
    # no source score, the side features where they begin, affinity never recorded
    assert np.isnan(row[0, 0]) and row[0, 1:3].tolist() == [0.5, 0.25]
    assert row[0, 3] == 2.0 and np.isnan(row[0, 4]) and row[0, 5] == 1.0
    # with columns after the side features (the outcome ranker's exposure), those stay missing
    row = search_rows(4, 1, ["bm25"], np.array([[2.0]], np.float32), np.array([[0.5, 0.25]], np.float32))
    assert row[0, 1:3].tolist() == [0.5, 0.25] and np.isnan(row[0, 3]) and row[0, 4] == 2.0 and row[0, 5] == 1.0


def test_search_lists_keep_their_query_and_anonymous_shoppers() -> None:
    products, events, impressions = shop(anonymous_share=0.5)
    item_events = events[events[C.ITEM].notna() & (events[C.USER] != "anonymous")]
    ds = Dataset.from_frames(item_events.drop(columns=[C.REQUEST_ID, C.QUERY]), products)
    labelled = label_impressions(impressions, events)
    cfg = EngineConfig(**FAST).outcomes
    assert cfg is not None
    lists = shown_lists(labelled, ds, cfg, [SEARCH], unknown_users=True)
    assert lists.queries is not None and set(lists.queries) == {"widget"}
    assert 0.3 < np.mean(lists.users < 0) < 0.7  # the anonymous ones: no history, still a lesson about the query
    assert len(shown_lists(labelled, ds, cfg, [SEARCH])) < len(lists)  # without unknown users, they are dropped
    assert shown_lists(labelled, ds, cfg).queries is None  # recommendation lists carry none


def test_the_joint_ranker_wins_on_search_where_search_ignores_the_shopper(trained: Engine) -> None:
    m = trained.metrics["outcomes"]
    s = m["search"]
    assert s["lists"] > 0.9 * 2 * N_USERS and s["chosen"] == "joint ranker", m
    h = s["heldout_ndcg@10"]
    assert h["joint_ranker"] > h["served_without_it"] + 0.1, h
    assert SEARCH in m["serves"] and trained.search_ranker is not None
    assert is_joint(trained.search_ranker.names)
    # the products search no longer retrieves (the stub drops every "i9") are left out of the lists
    assert s["impressions"] < 10 * s["lists"]


def test_search_served_by_the_joint_ranker_puts_the_shoppers_category_first(
    trained: Engine, logged: tuple[Dataset, pd.DataFrame]
) -> None:
    ds, _ = logged
    assert trained.search_ranker is not None and trained.side is not None
    ranker = SearchRanker(trained.search_ranker, trained.side, ds.items, ds.items.external_ids)
    rows = np.arange(ds.n_items)
    x = np.random.default_rng(1).normal(size=(ds.n_items, 3)).astype(np.float32)
    for cat in (0, 3):
        history = ranker.history([f"c{cat}i1", f"c{cat}i2", f"c{cat}i3", "not-a-product"])
        assert len(history) == 3
        top = ds.items.to_external(rows[np.argsort(-ranker.score(x, rows, history))[:5]])
        assert all(str(t).startswith(f"c{cat}i") for t in top), top
    # an anonymous shopper: the same query features, no history; a product the version lacks: no side features
    assert np.isfinite(ranker.score(x, rows, np.zeros(0, np.int64))).all()


def test_the_search_ranker_is_saved_with_the_engine(trained: Engine, tmp_path) -> None:
    trained.save(tmp_path / "engine")
    back = Engine.load(tmp_path / "engine")
    assert back.search_ranker is not None and back.search_ranker.names == trained.search_ranker.names
    found = Engine.load_search_ranking(tmp_path / "engine")
    assert found is not None
    ranker, side = found
    x = np.random.default_rng(2).normal(size=(4, len(ranker.names))).astype(np.float32)
    assert np.allclose(ranker.predict(x), trained.search_ranker.predict(x))
    assert trained.side is not None and np.array_equal(side.category, trained.side.category)


def test_without_search_lists_the_outcome_ranker_is_as_before(logged: tuple[Dataset, pd.DataFrame]) -> None:
    ds, labelled = logged
    rec_only = labelled[labelled[C.SURFACE] != SEARCH]
    eng = Engine(EngineConfig(**FAST)).fit(ds, outcomes=rec_only, search_featurer=NoisySearch())
    assert eng.search_ranker is None and "search" not in eng.metrics["outcomes"]
    assert eng.ranker is not None and not is_joint(eng.ranker.names)


def test_train_learns_from_logged_searches_and_search_ranks_with_it(tmp_path) -> None:
    """``shopsense train``'s path: both surfaces' impressions and their clicks in the knowledge store,
    the real search engine describing the search lists; then the library's search ranks with the
    version's joint ranker (the service links it the same way, :meth:`Served.linked`)."""
    from shopsense.search import load_or_build, search
    from shopsense.training import train

    products, events, impressions = shop(seed=1)
    store, settings = logged_store(tmp_path, products, events, impressions)
    result = train(store, settings)
    out = result.metrics["outcomes"]
    assert out["search"]["chosen"] == "joint ranker", out
    assert out["search"]["heldout_ndcg@10"]["joint_ranker"] > out["search"]["heldout_ndcg@10"]["served_without_it"]
    engine = load_or_build(store, settings)
    joint = engine.joint
    assert joint is not None
    cand = engine.candidates("widget")
    ids = engine.index.item_ids
    for user, cat in (("u2", 2), ("u9", 3)):
        seen = events.loc[(events[C.USER] == user) & (events[C.EVENT_TYPE] == C.VIEW), C.ITEM].tolist()
        top = [str(ids[r]) for r in cand.rows[np.argsort(-engine.score(cand, joint.history(seen)))[:5]]]
        assert all(t.startswith(f"c{cat}i") for t in top), top  # before personalisation: the ranker's own order
        res = search("widget", store=store, settings=settings, user_id=user, k=5, log=False, engine=engine)
        assert all(i.startswith(f"c{cat}i") for i in res.items), res.items
    plain = [str(ids[r]) for r in cand.rows[np.argsort(-engine.use_joint(None).score(cand))[:10]]]
    assert len({t[:2] for t in plain}) > 1, plain  # search's own order knows no shopper
    # the service links the version's joint ranker to its searcher
    from fastapi.testclient import TestClient

    from shopsense.service.app import create_app
    from shopsense.service.keys import create_key

    hdr = {"X-API-Key": create_key(store, ["read"])[1]}
    with TestClient(create_app(settings, block_on_load=True)) as client:
        served = client.app.state.shopsense.models.current
        assert served.searcher is not None and served.searcher.joint is not None
        r = client.get("/search", params={"q": "widget", "user_id": "u2", "k": 5}, headers=hdr).json()
        assert all(h["item_id"].startswith("c2i") for h in r["items"]), r
    store.close()
