"""Precomputed "for you" rankings: made at training, served only while they are what a live ranking
would give (the shopper's latest events unchanged, the default request and settings)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.ingest import ingest_events, ingest_products
from shopsense.data.sample import make_events, make_products, write_frame
from shopsense.engine_config import OnlineConfig
from shopsense.ranking.pipeline import EngineConfig
from shopsense.ranking.rules import Filters
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.recommend.precomputed import FOLDER, PrecomputedLists, list_pool
from shopsense.store import KnowledgeStore, open_store
from shopsense.training import train

pytestmark = pytest.mark.slow
FAST = EngineConfig(
    sequential={"dim": 16, "heads": 1, "layers": 1, "epochs": 2, "lr": 0.01, "dropout": 0.0},
    ease={"l2": 1.0},
    refit_epochs=1,
    per_source=20,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[KnowledgeStore, object, list[str]]]:
    folder = tmp_path_factory.mktemp("precomputed")
    settings = load_settings(home=folder / "home")
    store = open_store(settings.store_url)
    events = _small_shop(store, folder, np.random.default_rng(3), per_category=12, n_users=80, days=20)
    result = train(store, settings, config=FAST)
    assert result.metrics["precomputed_lists"] > 0
    users = sorted(events[C.USER].unique())
    yield store, settings, users
    store.close()


def _small_shop(store: KnowledgeStore, folder, rng, *, per_category: int, n_users: int, days: int) -> pd.DataFrame:
    """A smaller sample shop (text, no pictures), ingested from files as a shop would."""
    products = make_products(rng, per_category=per_category).drop(columns=[C.IMAGE_URL])
    events = make_events(rng, products, n_users=n_users, days=days)
    write_frame(products, folder / "products.csv")
    write_frame(events, folder / "events.csv")
    ingest_products(store, folder / "products.csv")
    ingest_events(store, folder / "events.csv")
    return events


def _answer(rec: Recommender, request: RecommendRequest) -> list[tuple[str, str]]:
    return [(r.item_id, r.source) for r in rec.recommend(request)]


def test_every_unchanged_shopper_gets_the_live_ranking_from_the_list(shop):
    store, settings, users = shop
    listed = Recommender.from_store(store, settings)
    live = Recommender.from_store(store, settings, settings.online.model_copy(update={"precomputed": False}))
    assert listed.lists is not None and live.lists is None
    used = 0
    for user in users:
        request = RecommendRequest(user, 10)
        history = listed.history(user)
        used += listed.precomputed(history, request, Filters(), list_pool(listed.config)) is not None
        assert _answer(listed, request) == _answer(live, request), user
    assert used >= len(users) * 0.9  # every shopper with item history was listed


def test_a_newer_event_turns_the_shopper_to_the_live_ranking(shop):
    store, settings, users = shop
    rec = Recommender.from_store(store, settings)
    user = users[0]
    pool = list_pool(rec.config)
    assert rec.lists is not None and rec.lists.get(rec.history(user), pool) is not None
    item = rec.catalog.ids[np.argmax(rec.popular.counts)]
    store.add_events(pd.DataFrame([{C.USER: user, C.ITEM: item, C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: time.time()}]))
    assert rec.lists.get(rec.history(user), pool) is None
    live = Recommender.from_store(store, settings, settings.online.model_copy(update={"precomputed": False}))
    assert _answer(rec, RecommendRequest(user, 10)) == _answer(live, RecommendRequest(user, 10))


def test_requests_and_settings_the_lists_were_not_made_for_rank_live(shop):
    store, settings, users = shop
    rec = Recommender.from_store(store, settings)
    user = users[1]
    history = rec.history(user)
    pool = list_pool(rec.config)
    assert rec.precomputed(history, RecommendRequest(user, 10), Filters(), pool) is not None
    assert (
        rec.precomputed(rec.history(user, "kettle"), RecommendRequest(user, 10, query="kettle"), Filters(), pool)
        is None
    )
    only_bought = Filters(exclude_seen=(C.PURCHASE,))
    assert rec.precomputed(history, RecommendRequest(user, 10), only_bought, pool) is None
    assert rec.precomputed(history, RecommendRequest(user, 30), Filters(), max(rec.config.pool, 150)) is None
    # a server reading a longer history than the lists were ranked from does not use them
    longer = Recommender.from_store(store, settings, OnlineConfig(history=80))
    assert longer.lists is None


def test_the_lists_are_in_the_version_and_load_memory_mapped(shop):
    store, settings, users = shop
    folder = settings.models_dir / store.active_version() / FOLDER
    lists = PrecomputedLists.load(folder)
    assert lists is not None and isinstance(lists.items, np.memmap)
    assert lists.items.shape == (len(lists.users), lists.pool) and lists.pool == list_pool(settings.online)
    assert set(lists.users.external_ids) <= set(users)
    assert PrecomputedLists.load(folder.parent / "nothing") is None


def test_unreadable_lists_are_set_aside_and_every_request_ranks_live(shop, tmp_path, caplog):
    store, settings, users = shop
    folder = tmp_path / FOLDER
    shutil.copytree(settings.models_dir / store.active_version() / FOLDER, folder)
    np.save(folder / "keys.npy", np.zeros(3, np.uint64))  # fewer keys than shoppers
    assert PrecomputedLists.load(folder) is None and "not used" in caplog.text
    (folder / "items.npy").unlink()
    assert PrecomputedLists.load(folder) is None


def test_lists_off_in_settings_are_not_made(tmp_path):
    settings = load_settings(home=tmp_path / "home")
    settings = settings.model_copy(update={"online": settings.online.model_copy(update={"precomputed": False})})
    store = open_store(settings.store_url)
    _small_shop(store, tmp_path, np.random.default_rng(4), per_category=12, n_users=20, days=5)
    result = train(store, settings, config=FAST.model_copy(update={"sequential": None}))
    assert result.metrics["precomputed_lists"] == "off"
    assert not (settings.models_dir / result.version / FOLDER).exists()
    store.close()
