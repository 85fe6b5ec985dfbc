"""Every metric against numbers worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shopsense.evaluation import metrics as M

# 3 rows over 6 items, -1 = padding
TOPK = np.array(
    [
        [2, 0, 5, -1],
        [1, 3, 4, 0],
        [5, 4, 3, 2],
    ]
)
TARGETS = np.array([0, 1, 1])  # row 0: rank 2, row 1: rank 1, row 2: not found
TRUTH = M.truth_from_targets(TARGETS, 6)


def test_relevance_at_marks_judged_items_only() -> None:
    rel = M.relevance_at(TOPK, TRUTH)
    assert rel.tolist() == [[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]


def test_hit_rate_ndcg_mrr_single_target() -> None:
    assert M.hit_rate(TOPK, TRUTH, 1) == pytest.approx(1 / 3)
    assert M.hit_rate(TOPK, TRUTH, 2) == pytest.approx(2 / 3)
    # row 0 target at rank 2 -> 1/log2(3); row 1 rank 1 -> 1; row 2 -> 0
    assert M.ndcg(TOPK, TRUTH, 4) == pytest.approx((1 / math.log2(3) + 1) / 3)
    assert M.ndcg(TOPK, TRUTH, 1) == pytest.approx(1 / 3)
    assert M.mrr(TOPK, TRUTH) == pytest.approx((0.5 + 1 + 0) / 3)
    assert M.HitRate(2).calc(TOPK, TRUTH) == M.hit_rate(TOPK, TRUTH, 2)


def test_recall_and_map_with_several_relevant_items() -> None:
    topk = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    # row 0 relevant {1, 3, 9}; row 1 relevant {4}
    truth = M.truth_from_pairs(np.array([0, 0, 0, 1]), np.array([1, 3, 9, 4]), np.ones(4), 2, 10)
    assert M.recall_per_row(topk, truth, 4).tolist() == pytest.approx([2 / 3, 1.0])
    assert M.recall_per_row(topk, truth, 2).tolist() == pytest.approx([1 / 3, 1.0])
    # AP@4 row 0: hits at ranks 2 and 4 -> (1/2 + 2/4) / min(3, 4) = 1/3; row 1: 1/1
    assert M.average_precision_per_row(topk, truth, 4).tolist() == pytest.approx([1 / 3, 1.0])
    assert M.map_at_k(topk, truth, 4) == pytest.approx((1 / 3 + 1) / 2)
    # AP@2 row 0: hit at rank 2 -> (1/2) / min(3, 2) = 1/4
    assert M.average_precision_per_row(topk, truth, 2)[0] == pytest.approx(0.25)


def test_rows_without_relevant_items_are_left_out_of_recall() -> None:
    topk = np.array([[0, 1], [2, 3]])
    truth = M.truth_from_pairs(np.array([0]), np.array([1]), np.ones(1), 2, 5)
    assert np.isnan(M.recall_per_row(topk, truth, 2)[1])
    assert M.recall(topk, truth, 2) == 1.0


def test_graded_ndcg_uses_exponential_gain_and_ideal_from_judged_items() -> None:
    topk = np.array([[0, 1, 2]])
    # judged: item 1 grade 2, item 2 grade 1, item 7 grade 2 (not retrieved); item 0 unjudged
    truth = M.truth_from_pairs(np.zeros(3), np.array([1, 2, 7]), np.array([2.0, 1.0, 2.0]), 1, 8)
    dcg = 3 / math.log2(3) + 1 / math.log2(4)
    idcg = 3 / math.log2(2) + 3 / math.log2(3) + 1 / math.log2(4)
    assert M.ndcg(topk, truth, 3, gain="exp") == pytest.approx(dcg / idcg)
    # ideal at k=2 only keeps the two best judged items
    assert M.ndcg(topk, truth, 2, gain="exp") == pytest.approx((3 / math.log2(3)) / (3 + 3 / math.log2(3)))


def test_truth_from_pairs_keeps_the_largest_duplicate() -> None:
    truth = M.truth_from_pairs(np.array([0, 0]), np.array([3, 3]), np.array([1.0, 2.0]), 1, 4)
    assert truth.toarray().tolist() == [[0, 0, 0, 2.0]]


def test_search_metrics_home_depot_convention() -> None:
    # query 0 judged: item 0 -> 3 (g=2), item 1 -> 1 (g=0), item 2 -> 2.67 (g=1.67)
    # query 1 judged: item 3 -> 1 only (ideal DCG 0: left out of NDCG), nothing >= 2.5
    ranked = np.array([[1, 2, 0, 5], [3, 4, 5, 0]])
    qrels = M.truth_from_pairs(np.array([0, 0, 0, 1]), np.array([0, 1, 2, 3]), np.array([3, 1, 2.67, 1]), 2, 6)
    out = M.search_metrics(ranked, qrels, k=3, recall_k=2, threshold=2.5)
    g2, g167 = 3.0, 2**1.67 - 1
    dcg = 0 + g167 / math.log2(3) + g2 / math.log2(4)
    idcg = g2 + g167 / math.log2(3)
    assert out["ndcg@3"] == pytest.approx(dcg / idcg)
    # relevant (>= 2.5) for query 0: items 0 and 2; top-2 = [1, 2] -> 1/2
    assert out["recall@2"] == pytest.approx(0.5)
    # MRR: query 0 first relevant at rank 2 (item 2, 2.67); query 1 has none -> 0
    assert out["mrr"] == pytest.approx((0.5 + 0) / 2)
    assert out["primary"] == "ndcg@3"


def test_coverage() -> None:
    assert M.coverage(TOPK, 6, 2) == pytest.approx(len({2, 0, 1, 3, 5, 4}) / 6)
    assert M.coverage(TOPK, 6, 1) == pytest.approx(3 / 6)
    assert M.coverage(np.array([[-1, -1]]), 6, 2) == 0.0


def test_intra_list_diversity() -> None:
    vec = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 0.0], [1.0, 1.0]])
    # list [0, 1]: orthogonal -> 1; list [0, 2]: identical -> 0; [0, 1, 3]: cos = 0, 1/sqrt2, 1/sqrt2
    topk = np.array([[0, 1, -1], [0, 2, -1], [0, 1, 3]])
    expected = [1.0, 0.0, 1 - (0 + 2 / math.sqrt(2)) / 3]
    assert M.intra_list_diversity_per_row(topk, vec, 3).tolist() == pytest.approx(expected)
    assert np.isnan(M.intra_list_diversity_per_row(np.array([[0, -1]]), vec, 2)[0])
    assert M.intra_list_diversity(topk, vec, 3) == pytest.approx(np.mean(expected))


def test_novelty_and_popularity_bias() -> None:
    pop = np.array([8, 4, 2, 0])  # item 3 never seen: counted as 1
    topk = np.array([[0, 1], [2, 3]])
    # self-information with 8 users: -log2(8/8)=0, -log2(4/8)=1, -log2(2/8)=2, -log2(1/8)=3
    assert M.novelty(topk, pop, 8, 2) == pytest.approx((0 + 1 + 2 + 3) / 4)
    # mean recommended popularity 14/4 over catalog mean 14/4 -> 1; only the top item: 8/3.5
    assert M.popularity_bias(topk, pop, 2) == pytest.approx(1.0)
    assert M.popularity_bias(topk, pop, 1) == pytest.approx(((8 + 2) / 2) / 3.5)


def test_evaluate_topk_returns_primary() -> None:
    out = M.evaluate_topk(TOPK, TRUTH, (1, 4), n_items=6)
    assert out["primary"] == "ndcg@1"
    assert out["hr@4"] == pytest.approx(2 / 3)
    assert out["coverage@1"] == pytest.approx(0.5)
    assert out["mrr"] == pytest.approx(0.5)
