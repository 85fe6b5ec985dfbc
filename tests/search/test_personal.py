"""Personalisation by the user's history in the store, and searches/clicks written back to it."""

from __future__ import annotations

import pandas as pd

from shopsense import columns as C
from shopsense.search import SearchEngine, log_click
from shopsense.search.personal import log_search
from shopsense.search.reranker import clicks_to_judgements
from shopsense.store import KnowledgeStore


def _events(user: str, items: list[str], event_type: str = C.PURCHASE) -> pd.DataFrame:
    return pd.DataFrame(
        {C.USER: user, C.ITEM: items, C.EVENT_TYPE: event_type, C.TIMESTAMP: [1000.0 + i for i in range(len(items))]}
    )


def test_personalisation_moves_the_users_taste_up(engine: SearchEngine, sqlite_store: KnowledgeStore) -> None:
    anonymous = engine.search("cordless drill", k=3).items
    assert anonymous[0] != "p8"
    sqlite_store.add_events(_events("ryobi_fan", ["p9", "p10"]))  # bought a Ryobi battery and trimmer
    personal = engine.search("cordless drill", user_id="ryobi_fan", k=3, store=sqlite_store).items
    assert personal[0] == "p8"  # the Ryobi drill
    assert set(personal) == set(anonymous)  # re-ordered, not different products
    # a user without history gets the anonymous order
    assert engine.search("cordless drill", user_id="nobody", k=3, store=sqlite_store).items == anonymous


def test_search_event_and_clicks_land_in_the_store(engine: SearchEngine, sqlite_store: KnowledgeStore) -> None:
    res = engine.search("whirpool microwve", user_id="u1", k=3, store=sqlite_store)
    log_search(sqlite_store, res.query, res.request_id, "u1", res.items, res.scores)  # the caller logs
    ev = sqlite_store.events(user_id="u1")
    assert ev[C.EVENT_TYPE].tolist() == [C.SEARCH]
    assert ev[C.QUERY].tolist() == ["whirpool microwve"] and ev[C.REQUEST_ID].tolist() == [res.request_id]
    shown = sqlite_store.impressions(res.request_id)
    assert shown[C.ITEM].tolist() == res.items and set(shown[C.SURFACE]) == {"search"}
    log_click(sqlite_store, res.request_id, res.items[1], "u1", query="whirpool microwve")
    queries, qrels = clicks_to_judgements(sqlite_store.events())
    assert queries["query"].tolist() == ["whirpool microwve"]
    assert qrels[C.ITEM].tolist() == [res.items[1]] and qrels["relevance"].tolist() == [1.0]


def test_past_searches_shape_the_profile(engine: SearchEngine, sqlite_store: KnowledgeStore) -> None:
    # only searches, no purchases: the queries themselves say what the user wants
    for q in ("ryobi one+ tools", "ryobi 18 volt"):
        res = engine.search(q, user_id="searcher", k=1, store=sqlite_store)
        log_search(sqlite_store, q, res.request_id, "searcher", res.items, res.scores)
    assert engine.search("cordless drill", user_id="searcher", k=3, store=sqlite_store).items[0] == "p8"
