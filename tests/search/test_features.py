"""The vectorised search features against the per-candidate Python loop they replaced (parity)."""

from __future__ import annotations

import numpy as np
import pytest

from shopsense import columns as C
from shopsense.index.analyzer import normalize_text
from shopsense.search import SearchEngine
from shopsense.search.features import FEATURES, INDEX
from shopsense.search.tokens import UNKNOWN, CatalogTokens, membership

QUERIES = [
    "whirlpool microwave",
    "whirpool microwve stainless",  # corrected
    "microwave microwave whirlpool",  # a repeated token
    "1/2 in. brass coupling",  # numbers and units
    "ryobi 18-volt cordless drill driver",  # bigrams in order
    "drill cordless",  # bigram reversed
    "stainless steel",
    "zzqxv microwave",  # a word no product has
    "paint black spray gloss",
    "lg",
    "countertop microwave in black",
    "french door refrigerator",
]


def reference_term_features(engine: SearchEngine, text: str, rows: np.ndarray) -> dict[str, list[float]]:
    """The term-match columns as the loop per candidate computed them before vectorising."""
    idx = engine.index
    q = idx.bm25.analyzer.tokens(text)
    query_norm = " ".join(normalize_text(text).split())
    title_tokens = idx.tokens.get(C.TITLE)
    brand_tokens = idx.tokens.get(C.BRAND)
    qset = set(q)
    nq = max(len(qset), 1)
    q_bigrams = set(zip(q, q[1:], strict=False))
    q_numbers = {t for t in qset if any(ch.isdigit() for ch in t)}
    first, last = (q[0], q[-1]) if q else ("", "")
    cols: dict[str, list[float]] = {}
    for r in rows.tolist():
        toks = title_tokens[r]
        tset = frozenset(toks)
        every: set[str] = set()
        for field in idx.tokens.values():
            every.update(field[r])
        brand = brand_tokens[r] if brand_tokens is not None and brand_tokens[r] else toks[:1]
        L = max(len(toks), 1)
        common = qset & tset
        values = {
            "coverage": len(common) / nq,
            "coverage_all": len(qset & every) / nq,
            "all_terms": float(len(common) == len(qset) and bool(qset)),
            "phrase": float(bool(query_norm) and query_norm in idx.title_norm[r]),
            "bigrams": len(q_bigrams & set(zip(toks, toks[1:], strict=False))) / len(q_bigrams) if q_bigrams else 0.0,
            "first_term": float(first in tset),
            "last_term": float(last in tset),
            "last_term_pos": toks.index(last) / L if last in tset else 1.0,
            "numbers": len(q_numbers & tset) / len(q_numbers) if q_numbers else 1.0,
            "brand": float(bool(qset.intersection(brand))),
            "title_len": len(toks),
            "unmatched_title": len(tset - qset) / L,
        }
        for name, v in values.items():
            cols.setdefault(name, []).append(v)
    return cols


@pytest.mark.parametrize("query", QUERIES)
def test_vectorised_features_equal_the_per_candidate_loop(engine: SearchEngine, query: str) -> None:
    fixed = engine.correct(query)
    cand = engine.candidates(query, corrected=fixed)
    assert len(cand.rows) > 0
    ref = reference_term_features(engine, fixed or query, cand.rows)
    for name, values in ref.items():
        np.testing.assert_allclose(cand.features[:, INDEX[name]], values, rtol=1e-6, atol=1e-6, err_msg=name)
    assert set(ref) < set(FEATURES)


def test_token_tables_answer_membership_and_positions() -> None:
    tables = CatalogTokens.build(
        {C.TITLE: [["red", "kettl", "red"], [], ["blue", "mug"]], C.BRAND: [["acm"], [], []]}, 3
    )
    ids = tables.vocab.lookup(["red", "mug", "nope"])
    assert ids[2] == UNKNOWN
    title = tables.title.gather(np.array([2, 0, 1]))
    np.testing.assert_array_equal(title.lengths, [2, 3, 0])
    np.testing.assert_array_equal(
        title.contains(ids), [[False, True, False], [True, False, False], [False, False, False]]
    )
    np.testing.assert_array_equal(title.first_position(int(ids[0])), [-1, 0, -1])
    np.testing.assert_array_equal(tables.title.distinct, [2, 0, 2])
    # the brand falls back to the title's first token; "every" holds all fields
    assert tables.brand.gather(np.array([0, 2])).contains(tables.vocab.lookup(["acm", "blue"])).tolist() == [
        [True, False],
        [False, True],
    ]
    assert tables.every.gather(np.array([0])).contains(tables.vocab.lookup(["acm", "kettl"])).all()
    assert not membership(np.zeros(0, np.int64), np.zeros(0, np.int64), np.array([UNKNOWN]), 2).any()
