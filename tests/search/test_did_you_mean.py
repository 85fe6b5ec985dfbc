""" "Did you mean" when a query finds few products: real-word typos, past queries, words no product has."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shopsense.search import SearchEngine
from shopsense.search.suggest import match_count

BRANDS = ("Estwing", "Stanley", "Vaughan", "Dewalt")
TOOLS = pd.DataFrame(
    [(f"h{i}", f"{BRANDS[i % 4]} Claw Hammer {16 + i} oz. Steel Handle") for i in range(20)]
    + [
        ("h20", "Husky Claw Hammer Fiberglass Handle"),
        ("l1", "Laundry Hamper with Lid"),
        ("g1", "Steal Deal Gift Card"),
    ],
    columns=["item_id", "title"],
)


@pytest.fixture(scope="module")
def tools() -> SearchEngine:
    return SearchEngine.build(TOOLS, queries=["claw hammer steel", "claw hammer steel", "laundry hamper"])


def test_a_real_word_typo_gets_a_suggestion(tools: SearchEngine) -> None:
    # "hamper" is a catalog word, so spelling correction leaves it; no product is a claw hamper, and
    # "hammer" is one edit away and over 20 times as frequent
    res = tools.search("claw hamper", k=3)
    assert res.showing_results_for is None  # nothing was corrected: results are for what was typed
    assert res.did_you_mean == "claw hammer"


def test_a_close_popular_past_query_is_offered(tools: SearchEngine) -> None:
    # two words off: no single-word change matches anything, the shoppers' own query does
    assert match_count(tools.index, "claw hammer steal") == 0 and match_count(tools.index, "claw hamper steel") == 0
    assert tools.search("claw hamper steal", k=3).did_you_mean == "claw hammer steel"


def test_a_word_no_product_has_is_left_out(engine: SearchEngine) -> None:
    res = engine.search("ryobi drill xyzzy", k=3)
    assert res.did_you_mean == "ryobi drill"
    assert res.items[0] == "p8"  # the results are still those of the query


def test_no_suggestion_when_the_query_finds_enough_or_nothing_better(tools: SearchEngine, engine) -> None:
    assert tools.search("ryobi drill xyzzy", k=3).did_you_mean is None  # nothing left that matches
    assert tools.search("claw hammer", k=3).did_you_mean is None  # 21 products: enough
    assert tools.search("laundry hamper", k=3).did_you_mean is None  # one, but nothing better
    assert engine.search("whirlpool microwave", k=3).did_you_mean is None  # 2 products, nothing better
    assert engine.search("cordless drill", k=3).did_you_mean is None


def test_the_threshold_is_configurable(tools: SearchEngine) -> None:
    # "steal" matches one product (the gift card), "steel" twenty hammers
    assert tools.search("steal", k=3).did_you_mean == "steel"  # default: fewer than 3 is few
    old = tools.config.did_you_mean_min_results
    try:
        tools.config.did_you_mean_min_results = 1  # one product is enough now
        assert tools.search("steal", k=3).did_you_mean is None
        tools.config.did_you_mean_min_results = 0  # off, even for a query that finds nothing
        assert tools.search("claw hamper", k=3).did_you_mean is None
    finally:
        tools.config.did_you_mean_min_results = old


def test_a_spelling_correction_is_still_reported(engine: SearchEngine) -> None:
    res = engine.search("whirpool microwve", k=3)
    assert res.showing_results_for == res.did_you_mean == "whirlpool microwave"
    assert res.to_dict()["showing_results_for"] == "whirlpool microwave"


def test_matches_are_counted_inside_the_filters(tools: SearchEngine) -> None:
    assert match_count(tools.index, "claw hammer") == 21
    only_first = np.zeros(len(TOOLS), dtype=bool)
    only_first[0] = True
    assert match_count(tools.index, "claw hammer", only_first) == 1
    assert match_count(tools.index, "") == 0


def test_a_common_word_is_not_turned_into_a_more_common_one() -> None:
    # "stove" is one edit from "stone" and "stone cover" would match 30 products, but a word seen on
    # 3 products is a word the shopper meant, not a typo (it would need 20x the frequency)
    shop = pd.DataFrame(
        [(f"s{i}", "Gas Stove") for i in range(3)] + [(f"t{i}", f"Stone Cover Tile {i}") for i in range(30)],
        columns=["item_id", "title"],
    )
    assert SearchEngine.build(shop).search("stove cover").did_you_mean is None
