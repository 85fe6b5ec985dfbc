"""The search engine's defaults chosen on one half of the Home Depot queries and scored on the other
(``search_homedepot.py --choose-defaults``; the split and the choice are ``shopsense.evaluation.crossfit``).

Which defaults: every search default first picked by looking at Home Depot's scored queries: BM25's
``k1`` and ``b``, the spelling thresholds (shortest corrected word, length from which two edits are
allowed, how often both parts of a split word must occur), and the untrained ranking's dense weight,
title-coverage weight and dense similarity floor. A setting is judged by the untrained engine's
NDCG@10 on the choosing half (the re-ranker is trained afterwards, on the same half, with the chosen
setting).

Cost: one BM25 index per (k1, b) and one candidate pass per distinct (corrected) query text under it;
the query-time settings (weights, similarity floor) only re-score the cached candidates, and every
query text is encoded once (the query cache).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from shopsense.config import BM25Config, SearchConfig
from shopsense.evaluation import metrics as M
from shopsense.evaluation.crossfit import fold_of
from shopsense.evaluation.search_protocol import judgements
from shopsense.index import spelling
from shopsense.index.bm25 import BM25Index
from shopsense.index.spelling import SpellCorrector
from shopsense.search import SearchEngine
from shopsense.search.features import INDEX, blend_scores
from shopsense.search.reranker import Reranker
from shopsense.topk import top_k

K = 10


@dataclass(frozen=True)
class SearchDefaults:
    """One setting of the defaults under test (the field defaults are today's)."""

    k1: float = BM25Config.model_fields["k1"].default
    b: float = BM25Config.model_fields["b"].default
    spell_min_length: int = spelling.MIN_LENGTH
    spell_two_edits_from: int = spelling.TWO_EDITS_FROM
    spell_split_frequency: int = spelling.MIN_SPLIT_FREQUENCY
    dense_weight: float = SearchConfig.model_fields["dense_weight"].default
    coverage_weight: float = SearchConfig.model_fields["coverage_weight"].default
    semantic_min_similarity: float = SearchConfig.model_fields["semantic_min_similarity"].default

    @property
    def spell(self) -> tuple[int, int, int]:
        return (self.spell_min_length, self.spell_two_edits_from, self.spell_split_frequency)

    def label(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items())


GRID: dict[str, Sequence[Any]] = {
    "k1": (0.5, 0.7, 0.9, 1.2, 1.5),
    "b": (0.2, 0.3, 0.4, 0.6, 0.75),
    "spell_min_length": (3, 4, 5),
    "spell_two_edits_from": (6, 8),
    "spell_split_frequency": (5, 20),
    "dense_weight": (0.2, 0.3, 0.4, 0.5),
    "coverage_weight": (0.0, 0.1, 0.2),
    "semantic_min_similarity": (0.2, 0.3, 0.4),
}


def grid(axes: dict[str, Sequence[Any]] = GRID) -> list[SearchDefaults]:
    """Every combination of ``axes``, today's defaults first (so a tie keeps them)."""
    today = SearchDefaults()
    out = [today]
    names = list(axes)
    for values in itertools.product(*(axes[n] for n in names)):
        s = replace(today, **dict(zip(names, values, strict=True)))
        if s != today:
            out.append(s)
    return out


def per_axis_best(
    settings: Sequence[SearchDefaults], scores: Sequence[np.ndarray], axes: dict[str, Sequence[Any]]
) -> dict[str, list[tuple[Any, float, float]]]:
    """For each axis and value: the best score on each half among the settings with that value (how
    strongly each half prefers a value, whatever the other settings)."""
    out: dict[str, list[tuple[Any, float, float]]] = {}
    for name, values in axes.items():
        col = np.array([getattr(s, name) for s in settings])
        out[name] = [
            (v, *(float(np.nanmax(np.where(col == v, sc, np.nan))) for sc in scores))  # type: ignore[misc]
            for v in values
        ]
    return out


class EngineVariants:
    """One built engine whose BM25 index, speller and query-time settings are swapped per
    :class:`SearchDefaults` (indexes and spellers cached), and the grid's ``evaluate`` callable."""

    def __init__(self, engine: SearchEngine, products: pd.DataFrame) -> None:
        self.engine, self.products = engine, products
        base = engine.index.speller
        assert base is not None, "the engine was built without spelling correction"
        self._frequencies, self._known = base.frequencies, base.known
        self._bm25: dict[tuple[float, float], BM25Index] = {}
        self._spellers: dict[tuple[int, int, int], SpellCorrector] = {}
        self.passes = 0  # candidate passes (one per distinct text per BM25 setting)

    def bm25(self, k1: float, b: float) -> BM25Index:
        key = (k1, b)
        if key not in self._bm25:
            cfg = self.engine.index.bm25.config.model_copy(update={"k1": k1, "b": b})
            self._bm25[key] = BM25Index(cfg, synonyms=self.engine.index.bm25.synonyms).fit_tokens(
                self.engine.index.tokens, self.engine.index.n_products
            )
        return self._bm25[key]

    def speller(self, key: tuple[int, int, int]) -> SpellCorrector:
        if key not in self._spellers:
            ml, te, sf = key
            self._spellers[key] = SpellCorrector(
                self._frequencies, self._known, min_length=ml, two_edits_from=te, min_split_frequency=sf
            )
        return self._spellers[key]

    def apply(self, d: SearchDefaults, *, min_similarity: float | None = None) -> None:
        """Make the engine search with ``d`` (``min_similarity`` overrides the dense floor)."""
        idx = self.bm25(d.k1, d.b)
        self.engine.index.bm25 = idx
        self.engine.index.speller = self.speller(d.spell)
        self.engine.config = self.engine.config.model_copy(
            update={
                "bm25": idx.config,
                "dense_weight": d.dense_weight,
                "coverage_weight": d.coverage_weight,
                "semantic_min_similarity": d.semantic_min_similarity if min_similarity is None else min_similarity,
            }
        )

    # ------------------------------------------------------------------ the grid's evaluate
    def evaluate(self, settings: Sequence[SearchDefaults], queries: pd.DataFrame, qrels: pd.DataFrame) -> list[float]:
        """Untrained NDCG@10 of each setting on these queries, read from these judgements only."""
        j = judgements(self.products, queries, qrels)
        graded = j.qrels.copy()
        graded.data = np.maximum(graded.data - 1.0, 0).astype(np.float32)
        graded.eliminate_zeros()
        out = np.full(len(settings), np.nan)
        by_bm25: dict[tuple[float, float], list[int]] = {}
        for i, s in enumerate(settings):
            by_bm25.setdefault((s.k1, s.b), []).append(i)
        for members in by_bm25.values():
            floor = min(settings[i].semantic_min_similarity for i in members)
            self.apply(settings[members[0]], min_similarity=floor)
            # the text each spelling variant retrieves with, per query
            texts: dict[tuple[int, int, int], list[str]] = {}
            for i in members:
                key = settings[i].spell
                if key not in texts:
                    fixed = [self.speller(key).correct(q) for q in j.texts]
                    texts[key] = [f if changed else q for q, (f, changed) in zip(j.texts, fixed, strict=True)]
            unique = list(dict.fromkeys(t for ts in texts.values() for t in ts))
            pos = {t: u for u, t in enumerate(unique)}
            cands = [self._candidate(t) for t in unique]
            tables: dict[tuple[float, float, float], np.ndarray] = {}
            for i in members:
                s = settings[i]
                qt = (s.dense_weight, s.coverage_weight, s.semantic_min_similarity)
                if qt not in tables:
                    tables[qt] = np.stack([_top10(c, *qt) for c in cands]) if cands else np.zeros((0, K), np.int64)
                rows = np.array([pos[t] for t in texts[s.spell]], dtype=np.int64)
                out[i] = M.ndcg(tables[qt][rows], graded, K, gain="exp")
        return out.tolist()

    def _candidate(self, text: str) -> tuple[np.ndarray, ...]:
        """What re-scoring needs of one text's candidates: rows, bm25, dense, coverage, BM25's or not."""
        self.passes += 1
        qv = self.engine.encode_queries([text])
        c = self.engine.candidates(text, None if qv is None else qv[0])
        X = c.features
        lexical = np.arange(len(c.rows)) < c.n_lexical
        return c.rows, X[:, INDEX["bm25"]], X[:, INDEX["dense"]], X[:, INDEX["coverage"]], lexical


def _top10(cand: tuple[np.ndarray, ...], dense_weight: float, coverage_weight: float, floor: float) -> np.ndarray:
    """The untrained top 10 (as ``SearchEngine.default_scores``) of candidates cut at a dense floor."""
    rows, bm, dense, cov, lexical = cand
    keep = lexical | (dense > floor - 1e-6)
    out = np.full(K, -1, dtype=np.int64)
    if not keep.any():
        return out
    s = blend_scores(bm[keep], dense[keep], dense_weight) + np.float32(coverage_weight) * cov[keep]
    order, _ = top_k(s, K)
    out[: len(order)] = rows[keep][order]
    return out


class CrossFittedEngine:
    """The engine as an evaluated system whose settings and re-ranker depend on the query's half:
    ``defaults[f]`` and ``rerankers[f]`` rank the queries of half f (both chosen and trained on the
    other half)."""

    def __init__(
        self,
        variants: EngineVariants,
        defaults: Sequence[SearchDefaults],
        rerankers: Sequence[Reranker] | None = None,
    ) -> None:
        self.variants, self.defaults, self.rerankers = variants, list(defaults), rerankers

    def search(self, query: str, k: int) -> np.ndarray:
        f = fold_of(query, len(self.defaults))
        self.variants.apply(self.defaults[f])
        self.variants.engine.reranker = self.rerankers[f] if self.rerankers else None
        return self.variants.engine.rank([query], k)[0]


def train_half_rerankers(
    variants: EngineVariants,
    defaults: Sequence[SearchDefaults],
    halves: Sequence[tuple[pd.DataFrame, pd.DataFrame]],
    rounds: int,
) -> list[Reranker]:
    """``rerankers[f]`` for the queries of half f: trained on the other half with ``defaults[f]``."""
    out = []
    engine = variants.engine
    for f in range(len(halves)):
        train_q, train_r = halves[1 - f]
        variants.apply(defaults[f])
        engine.reranker = None
        groups, gains = engine.training_groups(train_q, train_r)
        out.append(Reranker(num_rounds=rounds, params={"num_threads": 1}).fit(groups, gains))  # one core
    return out
