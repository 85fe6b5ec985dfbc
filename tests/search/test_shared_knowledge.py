"""A search written to the store by the search engine changes the same user's recommendations."""

from __future__ import annotations

import pytest

from shopsense.config import load_settings
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.search import SearchEngine
from shopsense.search.personal import log_search
from shopsense.store import open_store
from shopsense.training import train
from tests.test_recommend import FAST, _events, _products


@pytest.mark.slow
def test_logged_search_changes_that_users_recommendations(tmp_path, minilm) -> None:
    settings = load_settings(home=tmp_path)
    store = open_store(settings.store_url)
    store.upsert_products(_products())
    store.add_events(_events())
    train(store, settings, config=FAST)
    rec = Recommender.from_store(store, settings)

    def drills(user: str) -> int:
        return sum(r.item_id.startswith("d") for r in rec.recommend(RecommendRequest(user, k=4)))

    before = drills("newcomer")  # no history: popular items, kettles and drills alike
    engine = SearchEngine.build(store.products(), minilm, store=store)
    res = engine.search("cordless drill", user_id="newcomer", k=3, store=store)
    log_search(store, res.query, res.request_id, "newcomer", res.items, res.scores)  # as the CLI and service do
    assert all(i.startswith("d") for i in res.items)
    assert drills("newcomer") == 4 > before  # the query vector is the profile now
    store.close()
