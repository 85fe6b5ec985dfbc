"""The cross-fitted choice: halves by a stable hash, chosen on one half's judgements, scored on the other."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from shopsense.evaluation.crossfit import choose, choose_on_halves, fold_of, split_queries

TEXTS = [f"query {i} {w}" for i, w in enumerate(["drill", "hose", "paint", "bracket", "door", "lamp"] * 10)]
QUERIES = pd.DataFrame({"query_id": [f"q{i}" for i in range(len(TEXTS))], "query": TEXTS})
HALF = np.array([fold_of(t) for t in TEXTS])


def _qrels() -> pd.DataFrame:
    """Half 0's shoppers want product "a", half 1's want "b" (each query judges both)."""
    rows = []
    for qid, h in zip(QUERIES["query_id"], HALF, strict=True):
        rows += [(qid, "a", 3.0 if h == 0 else 1.0), (qid, "b", 1.0 if h == 0 else 3.0)]
    return pd.DataFrame(rows, columns=["query_id", "item_id", "relevance"])


QRELS = _qrels()


def _mean_relevance(settings: list[str], queries: pd.DataFrame, qrels: pd.DataFrame) -> list[float]:
    """A setting is the product shown; its score the mean relevance of that product over the queries."""
    return [float(qrels.loc[qrels["item_id"] == s, "relevance"].mean()) for s in settings]


def test_fold_of_is_sha256_of_the_text_and_stable_across_processes() -> None:
    assert fold_of("cordless drill") == int.from_bytes(hashlib.sha256(b"cordless drill").digest()[:8], "big") % 2
    assert [fold_of(t) for t in ["cordless drill", "angle bracket", "deck over", "paint roller"]] == [1, 0, 0, 1]
    assert [fold_of("cordless drill", 3), fold_of("angle bracket", 3)] == [1, 1]
    # another interpreter (another hash seed) puts every query in the same half
    code = "from shopsense.evaluation.crossfit import fold_of; import sys; print([fold_of(t) for t in sys.argv[1:]])"
    out = subprocess.run([sys.executable, "-c", code, *TEXTS[:12]], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(HALF[:12].tolist())
    with pytest.raises(ValueError, match="folds"):
        fold_of("x", 0)


def test_halves_are_disjoint_cover_every_query_and_take_their_judgements_along() -> None:
    assert 0 < HALF.sum() < len(HALF)  # both halves hold queries
    (q0, r0), (q1, r1) = split_queries(QUERIES, QRELS)
    assert set(q0["query_id"]).isdisjoint(q1["query_id"])
    assert len(q0) + len(q1) == len(QUERIES)
    assert set(r0["query_id"]) == set(q0["query_id"]) and set(r1["query_id"]) == set(q1["query_id"])
    assert len(r0) + len(r1) == len(QRELS)
    assert q0["query"].map(fold_of).eq(0).all() and q1["query"].map(fold_of).eq(1).all()
    # the same split whatever the order of the rows
    (p0, _), _ = split_queries(QUERIES.sample(frac=1, random_state=3), QRELS)
    assert set(p0["query_id"]) == set(q0["query_id"])


def test_each_half_chooses_from_its_own_judgements_only() -> None:
    seen: list[set[str]] = []

    def spy(settings: list[str], queries: pd.DataFrame, qrels: pd.DataFrame) -> list[float]:
        seen.append(set(qrels["query_id"]) | set(queries["query_id"]))
        return _mean_relevance(settings, queries, qrels)

    result = choose_on_halves(["b", "a"], spy, QUERIES, QRELS, default="b")
    half0, half1 = set(QUERIES["query_id"][HALF == 0]), set(QUERIES["query_id"][HALF == 1])
    # the two choices (calls 0 and 1) read one half each; the held-out scores (calls 2 and 3) the other
    assert seen == [half0, half1, half1, half0]
    assert [h.setting for h in result.halves] == ["a", "b"]  # what each half's own shoppers want
    assert not result.agree
    assert [h.train_score for h in result.halves] == [3.0, 3.0]
    assert [h.heldout_score for h in result.halves] == [1.0, 1.0]  # the other half wants the other product
    assert result.heldout_mean == 1.0
    assert [h.default_heldout_score for h in result.halves] == [3.0, 1.0]  # "b" on half 1, then on half 0
    assert result.default_heldout_mean == 2.0
    assert [s.tolist() for s in result.train_scores] == [[1.0, 3.0], [3.0, 1.0]]


def test_the_choice_does_not_change_when_the_held_out_judgements_do() -> None:
    flipped = QRELS.copy()
    other = flipped["query_id"].isin(set(QUERIES["query_id"][HALF == 1]))
    flipped.loc[other, "relevance"] = 4.0 - flipped.loc[other, "relevance"]  # half 1 now wants "a" too
    before = choose_on_halves(["b", "a"], _mean_relevance, QUERIES, QRELS)
    after = choose_on_halves(["b", "a"], _mean_relevance, QUERIES, flipped)
    assert before.halves[0].setting == after.halves[0].setting == "a"
    assert before.halves[0].train_score == after.halves[0].train_score
    assert after.agree and after.halves[1].setting == "a"


def test_ties_keep_the_first_setting_and_bad_scores_are_refused() -> None:
    assert choose(["today", "other"], lambda s, q, r: [0.5, 0.5], QUERIES, QRELS)[0] == 0
    assert choose(["today", "other"], lambda s, q, r: [float("nan"), 0.1], QUERIES, QRELS)[0] == 1
    with pytest.raises(ValueError, match="2 settings"):
        choose(["today", "other"], lambda s, q, r: [0.5], QUERIES, QRELS)
    with pytest.raises(ValueError, match="empty"):
        choose([], lambda s, q, r: [], QUERIES, QRELS)
