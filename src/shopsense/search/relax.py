"""Searches that find nothing: a relaxed query instead of an empty page, and the response says so.

When a query retrieves no product inside the request's filters (no word matches and no product text
is close enough in meaning), these are tried in order, the first that finds something wins:

1. **a better query**: the "did you mean" rewrite (:mod:`shopsense.search.suggest`: a real-word
   typo fixed, a popular past query, a word no product has left out);
2. **a word left out**: for a query of two words or more, the query without the word whose absence
   lets the most products match every other word (ties: the word more products have, the least
   informative), counted from the BM25 postings;
3. **the query's category instead of the filters**: when filters were given, the query is run
   without them, the category most of its first 20 results share is inferred, and the search is
   repeated inside that category only ("nothing under $5 in Paint; showing results in Paint").

Results are never silently replaced: the response's ``showing_results_for`` names the query used
and ``relaxed`` says how it was relaxed. Nothing is tried when the query found anything.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from shopsense.search.query_part import with_affinity
from shopsense.search.suggest import did_you_mean, match_count, words

if TYPE_CHECKING:
    from shopsense.search.engine import Candidates, SearchEngine

INFER_FROM = 20  # results of the unfiltered query whose categories vote


@dataclass(frozen=True)
class Relaxation:
    """What was searched instead of a query that found nothing."""

    query: str  # the text retrieved with
    how: str  # for the shopper: "a close query", "without 'xyzzy'", "in Paint > Interior, without your filters"


def relax(
    engine: SearchEngine, text: str, mask: np.ndarray | None, affinity_profile: np.ndarray | None = None
) -> tuple[Candidates, Relaxation] | None:
    """The first relaxation of ``text`` (see the module docstring) that retrieves products, with its
    candidates (their personal features from ``affinity_profile``); None when none does."""
    index = engine.index

    def found(query: str, mask: np.ndarray | None = None) -> Candidates:
        return with_affinity(engine.candidates(query, mask=mask), index.vectors, affinity_profile)

    better = did_you_mean(index, text, 1, mask)
    if better:
        cand = found(better, mask=mask)
        if len(cand.rows):
            return cand, Relaxation(better, "a close query")
    shorter = _without_one_word(engine, text, mask)
    if shorter is not None:
        rest, dropped = shorter
        cand = found(rest, mask=mask)
        if len(cand.rows):
            return cand, Relaxation(rest, f"without '{dropped}'")
    if mask is not None:
        free = found(text)
        if len(free.rows):
            scores = engine.score(free)
            top = free.rows[np.argsort(-scores, kind="stable")[:INFER_FROM]]
            cats = [c for c in index.columns.category[top] if c]
            if cats:
                cat = Counter(cats).most_common(1)[0][0]
                in_cat = index.columns.mask({"category": cat})
                cand = found(text, mask=in_cat)
                if len(cand.rows):
                    return cand, Relaxation(text, f"in {cat}, without your filters")
            return free, Relaxation(text, "without your filters")
    return None


def _without_one_word(engine: SearchEngine, text: str, mask: np.ndarray | None) -> tuple[str, str] | None:
    """``(query without one word, that word)`` matching the most products, or None."""
    ws = words(text)
    if len(ws) < 2:
        return None
    index = engine.index
    best: tuple[int, int, str, str] | None = None
    for i, w in enumerate(ws):
        rest = " ".join(ws[:i] + ws[i + 1 :])
        n = match_count(index, rest, mask)
        df = match_count(index, w)  # how many products have the word: the most common is the least informative
        key = (n, df, rest, w)
        if n > 0 and (best is None or key[:2] > best[:2]):
            best = key
    return None if best is None else (best[2], best[3])
