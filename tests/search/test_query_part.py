"""The memory of repeated queries: the same answers as without it, for anonymous and known shoppers,
and nothing stale after the settings or the searches it was built from change."""

from __future__ import annotations

from typing import cast

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.search import SearchEngine
from shopsense.search.query_part import QueryMemory, QueryPart, key_of
from shopsense.store import KnowledgeStore

QUERIES = [
    ("cordless drill", {}),
    ("whirpool microwve", {}),  # corrected
    ("microwave", {"category": "Kitchen", "max_price": 250.0}),
    ("ryobi", {"brand": ["Ryobi"]}),
    ("xyzzy plugh", {}),  # finds nothing
    ("microwave", {"category": "Paint"}),  # nothing inside the filters: relaxed
    ("steal", {}),  # "did you mean"
]


def _answer(engine: SearchEngine, store: KnowledgeStore, query: str, filters: dict, user: str | None) -> tuple:
    r = engine.search(query, user_id=user, filters=filters, k=5, store=store)
    return (
        r.items,
        [round(s, 5) for s in r.scores],
        r.matched_fields,
        r.facets,
        r.did_you_mean,
        r.showing_results_for,
        r.relaxed,
        r.total,
    )


@pytest.fixture
def shopper(sqlite_store: KnowledgeStore) -> KnowledgeStore:
    bought = ["p9", "p10", "p2"]
    sqlite_store.add_events(
        pd.DataFrame(
            {C.USER: "fan", C.ITEM: bought, C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: [1000.0 + i for i in range(3)]}
        )
    )
    return sqlite_store


@pytest.mark.parametrize("user", [None, "fan", "nobody"])
def test_a_repeated_query_answers_as_without_the_memory(
    products: pd.DataFrame, minilm, shopper: KnowledgeStore, user: str | None
) -> None:
    remembering = SearchEngine.build(products, minilm)
    forgetting = SearchEngine.build(products, minilm)
    forgetting.configure(forgetting.config.model_copy(update={"query_memory": 0}))
    for _ in range(3):  # kept from the second round, answered from memory in the third
        for q, f in QUERIES:
            assert _answer(remembering, shopper, q, f, user) == _answer(forgetting, shopper, q, f, user), (q, f)
    assert len(remembering.remembered) == len(QUERIES) and len(forgetting.remembered) == 0


def test_personal_order_is_not_kept(products: pd.DataFrame, minilm, shopper: KnowledgeStore) -> None:
    engine = SearchEngine.build(products, minilm)
    anonymous = engine.search("cordless drill", k=3, store=shopper).items
    personal = engine.search("cordless drill", user_id="fan", k=3, store=shopper).items
    assert personal[0] == "p8" and anonymous[0] != "p8"  # the Ryobi fan's drill first, from memory too
    assert engine.search("cordless drill", k=3, store=shopper).items == anonymous


def test_settings_changed_in_place_and_forgotten_searches_are_not_answered_from_memory(
    products: pd.DataFrame,
) -> None:
    engine = SearchEngine.build(products, queries=["ryobi battery"] * 3)
    for _ in range(3):
        assert engine.search("whirpool microwve", k=3).showing_results_for == "whirlpool microwave"
    assert len(engine.remembered) == 1
    engine.config.spelling = False  # the key holds the settings as they are now
    for _ in range(3):
        assert engine.search("whirpool microwve", k=3).showing_results_for is None
    engine.config.spelling = True
    assert len(engine.remembered) == 2
    engine.forget_searches(["ryobi battery"])  # past searches feed "did you mean": forgotten, all go
    assert len(engine.remembered) == 0


def test_a_query_is_remembered_from_its_second_time_and_one_off_queries_do_not_push_it_out() -> None:
    memory = QueryMemory(2)
    part = cast(QueryPart, object())
    memory.offer("popular", part)
    assert memory.get("popular") is None  # asked once: only noted
    memory.offer("popular", part)
    assert memory.get("popular") is part
    for i in range(100):  # a flood of queries asked once each
        memory.offer(f"once {i}", part)
    assert memory.get("popular") is part and len(memory) == 1


def test_the_returned_facets_are_the_callers_own(products: pd.DataFrame) -> None:
    engine = SearchEngine.build(products)
    first = engine.search("microwave", k=3)
    first.facets.clear()
    assert engine.search("microwave", k=3).facets["brand"] == {"Whirlpool": 2, "Samsung": 1}


def test_a_filter_value_that_cannot_be_a_key_is_searched_without_memory(products: pd.DataFrame) -> None:
    engine = SearchEngine.build(products)
    assert key_of("drill", {"brand": {"Ryobi"}}, engine.config, None) is None  # a set: unhashable
    assert key_of("drill", {"brand": ["Ryobi"]}, engine.config, None) == key_of(
        "drill", {"brand": ("Ryobi",)}, engine.config, None
    )
