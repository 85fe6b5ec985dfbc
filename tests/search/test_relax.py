"""Searches that find nothing get a relaxed query, and say so; searches that find something are untouched."""

from __future__ import annotations

from shopsense.search import SearchEngine
from shopsense.search.relax import relax


def test_filters_that_leave_nothing_widen_to_the_querys_category(lexical_engine: SearchEngine) -> None:
    res = lexical_engine.search("cordless drill", filters={"category": "Paint"}, k=5)
    assert res.relaxed == "in Tools > Power Tools, without your filters"
    assert res.items and set(res.items) <= {"p6", "p7", "p8"} and res.total == 3
    assert res.showing_results_for is None  # the words were kept: only the filters changed


def test_a_word_no_product_has_is_left_out(lexical_engine: SearchEngine) -> None:
    index = lexical_engine.index
    mask = index.columns.mask({"brand": "Ryobi"})
    found = relax(lexical_engine, "ryobi xyzzy", mask)
    assert found is not None
    cand, how = found
    assert how.query == "ryobi" and how.how == "without 'xyzzy'"
    assert {str(index.item_ids[r]) for r in cand.rows} == {"p8", "p9", "p10"}


def test_nothing_to_relax_gives_an_empty_answer(lexical_engine: SearchEngine) -> None:
    res = lexical_engine.search("xyzzy qwertz", k=5)
    assert res.items == [] and res.total == 0 and res.relaxed is None


def test_a_query_that_finds_products_is_not_relaxed(lexical_engine: SearchEngine) -> None:
    res = lexical_engine.search("ryobi drill", k=5)
    assert res.items[0] == "p8" and res.relaxed is None
    assert res.to_dict()["relaxed"] is None
