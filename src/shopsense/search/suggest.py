""" "Did you mean": a better query to offer when a query finds few products.

Spelling correction (:mod:`shopsense.index.spelling`) only fixes words the catalog does not know.
A query can still find little with every word known: a real-word typo ("cordless drip"), a word no
product has ("ryobi drill xyzzy"), a slip that shoppers before made and then corrected. So when
fewer than ``did_you_mean_min_results`` products (inside the filters) contain every query word
(stemmed, synonyms counting), these variants are tried, each counted the same way from the BM25
postings (no scoring, no encoding):

* one word replaced by a close catalog word (within the speller's edit distance, known words too);
* a popular past query of as many words, each word equal or close to the query's;
* a word that no product contains left out (queries of two words or more).

The variant matching the most products wins (ties: fewer changed words, then the more popular);
it is offered only when it matches more products than the query itself. Results are never
replaced: the shopper sees what they typed (or its spelling correction) and the suggestion.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np

from shopsense.index.spelling import edit_distance, max_distance

if TYPE_CHECKING:
    from shopsense.search.engine import SearchEngine

_WORD = re.compile(r"[^\W_]+")
MAX_WORDS = 8  # longer queries are not rewritten word by word (cost grows with words x neighbours)
NEIGHBOURS = 4  # close catalog words tried per query word


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def match_count(engine: SearchEngine, text: str, mask: np.ndarray | None = None) -> int:
    """Products (inside ``mask``) whose indexed fields contain every word of ``text``."""
    tokens = engine.bm25.analyzer.tokens(text)
    if not tokens:
        return 0
    rows = engine.bm25.matching_all(tokens)
    return int(mask[rows].sum()) if mask is not None and len(rows) else len(rows)


def _close(a: str, b: str) -> bool:
    """Two words a shopper could have meant for each other (equal, or within the speller's distance)."""
    if a == b:
        return True
    limit = max_distance(min(len(a), len(b)))
    return limit > 0 and edit_distance(a, b, limit) <= limit


def variants(engine: SearchEngine, text: str) -> list[tuple[str, int, float]]:
    """Candidate rewrites of ``text``: ``(text, words changed, popularity)``."""
    ws = words(text)
    if not ws or len(ws) > MAX_WORDS:
        return []
    out: list[tuple[str, int, float]] = []
    speller = engine.speller
    if speller is not None:
        for i, w in enumerate(ws):
            for c in speller.neighbours(w, NEIGHBOURS):
                out.append((" ".join([*ws[:i], c, *ws[i + 1 :]]), 1, float(speller.frequencies.get(c, 0))))
    out.extend(_past_queries(engine, ws))
    if len(ws) >= 2:
        analyzer = engine.bm25.analyzer
        for i, w in enumerate(ws):
            toks = analyzer.tokens(w)
            if toks and not any(len(engine.bm25.docs_with(t)) for t in toks):
                out.append((" ".join(ws[:i] + ws[i + 1 :]), 1, 0.0))
    return out


def _past_queries(engine: SearchEngine, ws: list[str]) -> list[tuple[str, int, float]]:
    """Past queries of as many words as ``ws``, each word equal or close to the query's. Only queries
    sharing a word (or a close one) with the query's rarest-position word are looked at."""
    ac = engine.autocompleter
    if not ac.queries:
        return []
    speller = engine.speller
    pools = []
    for w in ws:
        options = [w, *(speller.neighbours(w, 20) if speller is not None else [])]
        pools.append({q for o in options for q in ac.queries_with_word(o)})
    out = []
    for q in min(pools, key=len):
        qw = words(q)
        if len(qw) == len(ws) and qw != ws and all(_close(a, b) for a, b in zip(qw, ws, strict=True)):
            out.append((" ".join(qw), sum(a != b for a, b in zip(qw, ws, strict=True)), float(ac.queries[q])))
    return out


def did_you_mean(engine: SearchEngine, text: str, mask: np.ndarray | None = None) -> str | None:
    """A better query than ``text`` when it matches fewer than the configured number of products
    (``config.did_you_mean_min_results``; 0 turns this off), else ``None``."""
    threshold = engine.config.did_you_mean_min_results
    if threshold <= 0:
        return None
    have = match_count(engine, text, mask)
    if have >= threshold:
        return None
    best: tuple[int, int, float, str] | None = None
    seen = {" ".join(words(text))}
    for v, changed, pop in variants(engine, text):
        if v in seen:
            continue
        seen.add(v)
        n = match_count(engine, v, mask)
        key = (n, -changed, pop, v)
        if n > have and (best is None or key[:3] > best[:3]):
            best = key
    return None if best is None else best[3]
