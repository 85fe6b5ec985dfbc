"""Features of (query, candidate product) pairs for fusion and the learned re-ranker.

Everything here is computed for the few hundred candidates of one query only, in NumPy over the
catalog's token tables (:mod:`shopsense.search.tokens`): a Python loop per candidate cost about 6 ms
a query on the 50k-product benchmark shop, half of a search. Scores from the retrievers (BM25, dense cosine), their ranks and
reciprocal-rank fusion, and the term-match evidence a ranker needs and BM25 does not express: the
share of query terms present in the title, whether the whole query appears as a phrase, query
bigrams kept in order, numbers and units matched, the brand matched, where the query's head noun
(its last word) sits in the title, title length, popularity and the user's affinity.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shopsense.search.tokens import CatalogTokens, membership

FEATURES: tuple[str, ...] = (
    "bm25",  # field-weighted BM25
    "bm25_title",  # BM25 on the title alone
    "bm25_rel",  # bm25 / best bm25 of the query
    "bm25_rank",  # rank among the candidates by bm25 (0 = best)
    "dense",  # cosine of query and product vectors
    "dense_rel",  # dense - best dense of the query
    "dense_rank",
    "rrf",  # reciprocal rank fusion of the two ranks
    "blend",  # min-max blend of bm25 and dense (the untrained default score)
    "coverage",  # share of query tokens found in the title
    "coverage_all",  # share of query tokens found in any field
    "all_terms",  # 1 when every query token is in the title
    "phrase",  # the normalised query occurs verbatim in the title
    "bigrams",  # share of query bigrams found as title bigrams
    "first_term",  # the query's first token is in the title
    "last_term",  # the query's last token (usually the product type) is in the title
    "last_term_pos",  # position of that token in the title / title length (1 when absent)
    "numbers",  # share of the query's number/unit tokens in the title (1 when it has none)
    "has_numbers",  # the query has number/unit tokens
    "brand",  # a query token matches the brand (or the title's first word when there is no brand)
    "title_len",  # tokens in the title
    "query_len",  # tokens in the query
    "unmatched_title",  # title tokens not in the query / title length
    "popularity",  # log(1 + interactions)
    "affinity",  # cosine of the user's profile and the product (0 without a user)
)
INDEX = {name: i for i, name in enumerate(FEATURES)}


@dataclass
class QueryContext:
    """What the features of one query need; rows of the arrays align with ``candidates``."""

    query_tokens: list[str]
    query_norm: str  # normalised query text (for the phrase feature)
    candidates: np.ndarray  # product rows
    bm25: np.ndarray
    bm25_title: np.ndarray
    dense: np.ndarray
    title_norm: np.ndarray  # per candidate, normalised title text (object array)
    tokens: CatalogTokens  # the catalog's token tables (indexed by product row)
    popularity: np.ndarray
    affinity: np.ndarray


def _ranks(scores: np.ndarray) -> np.ndarray:
    order = np.argsort(-scores, kind="stable")
    r = np.empty(len(scores), dtype=np.float32)
    r[order] = np.arange(len(scores), dtype=np.float32)
    return r


def _minmax(x: np.ndarray) -> np.ndarray:
    lo, hi = float(x.min()), float(x.max())
    return (x - lo) / (hi - lo) if hi > lo else np.zeros_like(x)


def blend_scores(bm25: np.ndarray, dense: np.ndarray, dense_weight: float) -> np.ndarray:
    """Min-max normalised BM25 and dense scores mixed with ``dense_weight`` (the untrained ranking)."""
    return ((1.0 - dense_weight) * _minmax(bm25) + dense_weight * _minmax(dense)).astype(np.float32)


def build_features(ctx: QueryContext, *, rrf_k: int = 60, dense_weight: float = 0.3) -> np.ndarray:
    """(n_candidates, len(FEATURES)) float32 matrix for one query."""
    n = len(ctx.candidates)
    X = np.zeros((n, len(FEATURES)), dtype=np.float32)
    if n == 0:
        return X
    q = ctx.query_tokens
    qset = set(q)
    q_numbers = {t for t in qset if any(ch.isdigit() for ch in t)}

    X[:, INDEX["bm25"]] = ctx.bm25
    X[:, INDEX["bm25_title"]] = ctx.bm25_title
    best = float(ctx.bm25.max())
    X[:, INDEX["bm25_rel"]] = ctx.bm25 / best if best > 0 else 0.0
    rb, rd = _ranks(ctx.bm25), _ranks(ctx.dense)
    X[:, INDEX["bm25_rank"]] = rb
    X[:, INDEX["dense"]] = ctx.dense
    X[:, INDEX["dense_rel"]] = ctx.dense - float(ctx.dense.max())
    X[:, INDEX["dense_rank"]] = rd
    X[:, INDEX["rrf"]] = 1.0 / (rrf_k + rb + 1) + 1.0 / (rrf_k + rd + 1)
    X[:, INDEX["blend"]] = blend_scores(ctx.bm25, ctx.dense, dense_weight)
    X[:, INDEX["query_len"]] = len(q)
    X[:, INDEX["has_numbers"]] = float(bool(q_numbers))
    X[:, INDEX["popularity"]] = np.log1p(ctx.popularity)
    X[:, INDEX["affinity"]] = ctx.affinity

    _term_features(X, ctx, q, qset)
    return X


def _term_features(X: np.ndarray, ctx: QueryContext, q: list[str], qset: set[str]) -> None:
    """The term-match columns, from the candidates' token tables (see :mod:`shopsense.search.tokens`)."""
    n = len(ctx.candidates)
    tables, vocab = ctx.tokens, ctx.tokens.vocab
    uniq = list(qset)
    col = {t: j for j, t in enumerate(uniq)}
    ids = vocab.lookup(uniq)
    nq = max(len(uniq), 1)
    title = tables.title.gather(ctx.candidates)
    in_title = title.contains(ids)  # (n, unique query tokens)
    matched = in_title.sum(axis=1)
    L = np.maximum(title.lengths, 1)
    X[:, INDEX["coverage"]] = matched / nq
    X[:, INDEX["coverage_all"]] = tables.every.gather(ctx.candidates).contains(ids).sum(axis=1) / nq
    X[:, INDEX["all_terms"]] = (matched == len(uniq)) & bool(uniq)
    if ctx.query_norm:
        X[:, INDEX["phrase"]] = [ctx.query_norm in t for t in ctx.title_norm]
    q_bigrams = list(dict.fromkeys(zip(q, q[1:], strict=False)))
    if q_bigrams:
        pair_ids = vocab.lookup([t for pair in q_bigrams for t in pair]).reshape(-1, 2)
        known = (pair_ids >= 0).all(axis=1)
        codes = np.where(known, pair_ids[:, 0] * len(vocab) + pair_ids[:, 1], -1)
        seg, title_codes = title.bigrams(len(vocab))
        X[:, INDEX["bigrams"]] = membership(seg, title_codes, codes, n).sum(axis=1) / len(q_bigrams)
    if q:
        X[:, INDEX["first_term"]] = in_title[:, col[q[0]]]
        last = in_title[:, col[q[-1]]]
        X[:, INDEX["last_term"]] = last
        pos = title.first_position(int(ids[col[q[-1]]]))
        X[:, INDEX["last_term_pos"]] = np.where(last, pos / L, 1.0)
    else:
        X[:, INDEX["last_term_pos"]] = 1.0
    numbers = [col[t] for t in uniq if any(ch.isdigit() for ch in t)]
    X[:, INDEX["numbers"]] = in_title[:, numbers].sum(axis=1) / len(numbers) if numbers else 1.0
    X[:, INDEX["brand"]] = tables.brand.gather(ctx.candidates).contains(ids).any(axis=1)
    X[:, INDEX["title_len"]] = title.lengths
    X[:, INDEX["unmatched_title"]] = (tables.title.distinct[ctx.candidates] - matched) / L
