"""Field-weighted BM25, unit normalisation, synonyms and spelling correction."""

from __future__ import annotations

import pandas as pd
import pytest

from shopsense.index.analyzer import Analyzer, load_synonyms, normalize_text
from shopsense.index.bm25 import BM25Config, BM25Index
from shopsense.index.spelling import SpellCorrector, edit_distance

PRODUCTS = pd.DataFrame(
    {
        "item_id": ["a", "b", "c", "d"],
        "title": ["Stainless Steel Refrigerator", "Cordless Drill Kit", "Copper Pipe 1/2 in. x 10 ft.", "Garden Hose"],
        "brand": ["Bosch", "Makita", "Mueller", "Bosch"],
        "description": [None, "Drill with Bosch-compatible batteries", "", "50 ft. hose"],
    }
)


def test_normalize_text_gives_numbers_and_units_one_spelling() -> None:
    assert normalize_text("1/2 in. pipe").split() == normalize_text('1/2" pipe').split() == ["0p5", "0p5in", "pipe"]
    assert normalize_text("1-1/2 inch").split() == normalize_text("1.5 in").split() == ["1p5", "1p5in"]
    assert normalize_text("2x4").split() == ["2", "x", "4"]
    assert normalize_text("6.2 cu. ft. range").split() == ["6p2", "6p2cuft", "range"]
    assert normalize_text("5 Gallon bucket").split() == ["5", "5gal", "bucket"]
    assert normalize_text("") == ""


def test_field_weights_rank_a_brand_match_above_a_description_match() -> None:
    idx = BM25Index(BM25Config(field_weights={"title": 1.0, "brand": 0.8, "description": 0.1})).fit(PRODUCTS)
    rows, scores = idx.search("bosch", k=4)
    assert set(rows[:2]) == {0, 3} and rows[2] == 1  # brand hits first, the description mention last
    assert list(scores) == sorted(scores, reverse=True)
    assert idx.fields == ["title", "brand", "description"]


def test_units_match_across_spellings() -> None:
    idx = BM25Index().fit(PRODUCTS)
    assert idx.search('1/2" copper pipe', k=1)[0].tolist() == [2]
    assert idx.search("nothing like this", k=5)[0].tolist() == []


def test_synonyms_from_a_file_expand_queries(tmp_path) -> None:
    f = tmp_path / "synonyms.txt"
    f.write_text("# household words\nfridge, refrigerator\nhosepipe, hose\n", encoding="utf-8")
    assert load_synonyms(f) == [["fridge", "refrigerator"], ["hosepipe", "hose"]]
    idx = BM25Index(BM25Config(synonyms_path=str(f))).fit(PRODUCTS)
    assert idx.search("fridge", k=1)[0].tolist() == [0]
    assert idx.search("hosepipe", k=1)[0].tolist() == [3]
    assert BM25Index().fit(PRODUCTS).search("fridge", k=1)[0].tolist() == []
    with pytest.raises(FileNotFoundError):
        load_synonyms(tmp_path / "missing.txt")


def test_save_and_load_round_trip(tmp_path) -> None:
    idx = BM25Index().fit(PRODUCTS)
    again = BM25Index.load(idx.save(tmp_path / "bm25"))
    for q in ("bosch", "cordless drill", "1/2 in. pipe"):
        r1, s1 = idx.search(q, k=3)
        r2, s2 = again.search(q, k=3)
        assert r1.tolist() == r2.tolist() and s1.tolist() == pytest.approx(s2.tolist())


def test_chinese_text_is_segmented() -> None:
    a = Analyzer("auto")
    assert "手机" in a.tokens("华为智能手机")
    idx = BM25Index().fit(pd.DataFrame({"item_id": ["x", "y"], "title": ["华为 智能手机", "美的 空调"]}))
    assert idx.search("手机", k=2)[0].tolist() == [0]


def test_spelling_correction_against_the_vocabulary() -> None:
    sc = SpellCorrector.from_texts(["Whirlpool Microwave"] * 3 + ["Microwave Stand"] * 6 + ["Whirlpool Washer"])
    assert sc.correct("whirpool microwve") == ("whirlpool microwave", True)
    assert sc.correct("whirlpool washer") == ("whirlpool washer", False)
    assert sc.correct("microwavestand")[0] == "microwave stand"  # glued words are split
    assert sc.correct("model wm3400 2x4")[0] == "model wm3400 2x4"  # codes and numbers untouched
    assert sc.correct("zzzzzzzz") == ("zzzzzzzz", False)  # nothing close: left alone
    known = SpellCorrector.from_texts(["drill"], known=lambda w: w == "drills")
    assert known.correct("drills") == ("drills", False)
    assert edit_distance("abcd", "abdc") == 1 and edit_distance("abc", "xyz", limit=2) == 3


def test_spelling_thresholds_are_the_correctors_own() -> None:
    texts = ["Whirlpool Microwave"] * 3 + ["Microwave Stand"] * 6 + ["Door Hose"] * 9
    default = SpellCorrector.from_texts(texts)
    assert default.correct("hoze")[0] == "hose" and default.correct("whirpoool")[0] == "whirlpool"
    assert default.correct("microwavestand")[0] == "microwave stand"
    strict = SpellCorrector.from_texts(texts, min_length=5, two_edits_from=10, min_split_frequency=7)
    assert strict.correct("hoze") == ("hoze", False)  # 4 letters: too short to correct
    assert strict.correct("whirpoool") == ("whirpoool", False)  # 2 edits only from 10 letters
    assert strict.correct("whirpool")[0] == "whirlpool"  # 1 edit
    assert strict.correct("microwavestand")[0] == "microwavestand"  # "microwave" seen 9 times, "stand" 6 < 7
    assert strict.neighbours("whirpoool") == [] and default.neighbours("whirpoool") == ["whirlpool"]
    with pytest.raises(ValueError, match="min_length"):
        SpellCorrector({}, min_length=6, two_edits_from=5)
