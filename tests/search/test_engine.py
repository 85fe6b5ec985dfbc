"""Search engine behaviour on a tiny catalog with obvious answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.exceptions import ShopsenseError
from shopsense.search import SearchEngine

from .conftest import CATALOG


def test_exact_title_query_returns_that_product_first(engine: SearchEngine) -> None:
    for item_id, title, *_ in CATALOG:
        assert engine.search(title, k=3).items[0] == item_id, title


def test_misspelled_query_finds_whirlpool_microwaves(engine: SearchEngine) -> None:
    res = engine.search("whirpool microwve", k=3)
    assert set(res.items[:2]) == {"p1", "p2"}
    assert res.did_you_mean == "whirlpool microwave"
    assert "title" in res.matched_fields[0]


def test_correct_query_has_no_did_you_mean(engine: SearchEngine) -> None:
    res = engine.search("cordless drill", k=3)
    assert res.did_you_mean is None
    assert set(res.items) <= {"p6", "p7", "p8"}


def test_units_are_normalised(engine: SearchEngine) -> None:
    # '1/2"' in the query, "1/2 in." in the title
    assert engine.search('1/2" coupling', k=1).items == ["p11"]
    assert engine.search("3/4 inch pvc pipe", k=1).items == ["p12"]


def test_semantic_retrieval_finds_products_without_shared_words(engine: SearchEngine) -> None:
    # no catalog title says "fridge"; the text encoder knows it is a refrigerator
    res = engine.search("fridge", k=2)
    assert set(res.items) == {"p4", "p5"}
    assert all("semantic" in m for m in res.matched_fields)


def test_filters_keep_only_matching_products(engine: SearchEngine) -> None:
    res = engine.search("microwave", k=10, filters={"brand": "whirlpool"})
    assert set(res.items) == {"p1", "p2", "p4"} & set(res.items) and {"p1", "p2"} <= set(res.items)
    assert all(engine.index.products.set_index("item_id").loc[i, "brand"] == "Whirlpool" for i in res.items)
    res = engine.search("microwave", k=10, filters={"category": "Kitchen > Microwaves", "available": True})
    assert set(res.items) == {"p1", "p2"}
    res = engine.search("microwave", k=10, filters={"category": "kitchen", "max_price": 250})
    assert set(res.items) == {"p1", "p3"}
    res = engine.search("paint", k=10, filters={"min_price": 10})
    assert res.items == ["p13"]


def test_facet_counts_cover_all_candidates(lexical_engine: SearchEngine) -> None:
    res = lexical_engine.search("microwave", k=1, filters={"category": "Kitchen"})
    assert res.total == 3 and len(res.items) == 1
    f = res.facets
    assert f["category"] == {"Kitchen > Microwaves": 3}
    assert f["brand"] == {"Whirlpool": 2, "Samsung": 1}
    assert f["price"] == {"100-250": 2, "250-500": 1}
    assert f["available"] == {"true": 2, "false": 1}


def test_bad_input_is_refused(engine: SearchEngine) -> None:
    with pytest.raises(ValueError, match="unknown filter"):
        engine.search("drill", filters={"colour": "red"})
    with pytest.raises(ValueError, match="empty"):
        engine.search("   ")
    with pytest.raises(ValueError, match="number"):
        engine.search("drill", filters={"min_price": "cheap"})


def test_autocomplete_prefers_popular_queries_then_titles(engine: SearchEngine) -> None:
    sug = engine.autocomplete("whirl", 3)
    assert sug[0] == "whirlpool microwave"  # searched twice before
    assert all(s.startswith("whirl") for s in sug)
    assert any("microwave" in s for s in engine.autocomplete("counter", 5))  # a word inside a title
    assert engine.autocomplete("zzz") == []


def test_autocomplete_answers_are_remembered_and_bounded(monkeypatch) -> None:
    from shopsense.search import autocomplete as A

    ac = A.Autocomplete.build(["Whirlpool Microwave", "Whirlpool Fridge"], queries=["whirlpool fridge"])
    first = ac.suggest("whirl", 2)
    first.append("changed by the caller")  # a caller's list is its own: the remembered one stays
    assert ac.suggest("  WHIRL ", 2) == ["whirlpool fridge", "whirlpool microwave"]  # same key, same answer
    monkeypatch.setattr(A, "MAX_ANSWERS", 2)
    for p in ("w", "wh", "whi", "whir"):
        ac.suggest(p, 2)
    assert len(ac._answers) <= 2


def test_rank_many_queries_matches_single_search(engine: SearchEngine) -> None:
    queries = ["cordless drill", "whirpool microwve", "spray paint"]
    ranked = engine.rank(queries, k=3)
    for q, row in zip(queries, ranked, strict=True):
        assert [engine.index.item_ids[r] for r in row if r >= 0] == engine.search(q, k=3).items


def test_save_and_load_round_trip(engine: SearchEngine, minilm, tmp_path) -> None:
    path = engine.save(tmp_path / "search")
    again = SearchEngine.load(path, encoder=minilm)
    for q in ("whirpool microwve", "fridge", "ryobi"):
        a, b = engine.search(q, k=5), again.search(q, k=5)
        assert a.items == b.items
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
    assert again.autocomplete("whirl", 3) == engine.autocomplete("whirl", 3)
    other = tmp_path / "not-an-engine"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(ShopsenseError, match="not a search engine"):
        engine.save(other)
    assert (other / "keep.txt").exists()


def test_learned_reranker_follows_judgements(products: pd.DataFrame) -> None:
    engine = SearchEngine.build(products)
    # judges prefer the cheapest-looking product type for "drill": the Ryobi drill everywhere
    queries = pd.DataFrame(
        {"query_id": [str(i) for i in range(30)], "query": ["cordless drill", "drill", "18-volt drill"] * 10}
    )
    qrels = pd.DataFrame({"query_id": queries["query_id"], "item_id": "p8", "relevance": 3.0})
    engine.fit_reranker(queries, qrels, num_rounds=20, params={"min_data_in_leaf": 1})
    assert engine.reranker is not None and engine.reranker.fitted
    assert engine.search("cordless drill", k=1).items == ["p8"]


def test_lexical_only_engine_works_without_encoder(lexical_engine: SearchEngine) -> None:
    assert lexical_engine.search("ryobi battery", k=1).items == ["p9"]
    assert lexical_engine.search("whirpool microwve", k=2).did_you_mean == "whirlpool microwave"
