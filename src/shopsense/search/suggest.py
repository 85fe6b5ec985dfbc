""" "Did you mean": a better query to offer when a query finds few products.

Spelling correction (:mod:`shopsense.index.spelling`) only fixes words the catalog does not know.
A query can still find little with every word known: a real-word typo ("water heather"), a word no
product has ("ryobi drill xyzzy"), a slip that shoppers before made and then corrected. So when
fewer than ``did_you_mean_min_results`` products (inside the filters) contain every query word
(stemmed, synonyms counting), these variants are tried, each counted the same way from the BM25
postings (no scoring, no encoding):

* a rare word replaced by a catalog word one edit away that is at least :data:`REAL_WORD_RATIO`
  times as frequent ("heather" -> "heater"; "stove" is never turned into "stone");
* a popular past query of as many words, each word equal or close to the query's;
* a word that no product contains left out (queries of three words or more, when two words with
  letters remain: "ryobi drill xyzzy" -> "ryobi drill", never "8 4616809045 9" -> "8 9").

The variant matching the most products wins (ties: fewer changed words, then the more popular);
it is offered only when it matches more products than the query itself. Results are never
replaced: the shopper sees what they typed (or its spelling correction) and the suggestion.

Cost: the query's retrieved candidates answer "are there enough matches" for almost every query
(one lookup in the catalog's token tables); postings are read only for the few queries that find little.
"""

from __future__ import annotations

import re

import numpy as np

from shopsense.index.spelling import edit_distance, max_distance
from shopsense.search.index import SearchIndex

_WORD = re.compile(r"[^\W_]+")
_SPACES = re.compile(r"\s+")
MAX_WORDS = 8  # longer queries are not rewritten word by word
NEIGHBOURS = 3  # close catalog words tried per query word
REAL_WORD_RATIO = 20.0  # a known word is replaced only by a word this many times as frequent


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class _Postings:
    """Rows containing a token (or one of its synonyms), read once per suggestion."""

    def __init__(self, index: SearchIndex) -> None:
        self.bm25 = index.bm25
        self.cache: dict[str, np.ndarray] = {}

    def token(self, t: str) -> np.ndarray:
        rows = self.cache.get(t)
        if rows is None:
            rows = self.bm25.docs_with(t)
            for syn in self.bm25.analyzer.synonyms_of(t):
                rows = np.union1d(rows, self.bm25.docs_with(syn))
            self.cache[t] = rows
        return rows

    def count(self, tokens: list[str], mask: np.ndarray | None) -> int:
        if not tokens:
            return 0
        rows: np.ndarray | None = None
        for t in sorted(set(tokens), key=lambda t: len(self.token(t))):  # rarest first: small intersections
            docs = self.token(t)
            rows = docs if rows is None else np.intersect1d(rows, docs, assume_unique=True)
            if not len(rows):
                return 0
        assert rows is not None
        return int(mask[rows].sum()) if mask is not None else len(rows)


def match_count(index: SearchIndex, text: str, mask: np.ndarray | None = None) -> int:
    """Products (inside ``mask``) whose indexed fields contain every word of ``text``."""
    return _Postings(index).count(index.bm25.analyzer.tokens(text), mask)


def _close(a: str, b: str) -> bool:
    """Two words a shopper could have meant for each other (equal, or within the speller's distance)."""
    if a == b:
        return True
    limit = max_distance(min(len(a), len(b)))
    return limit > 0 and edit_distance(a, b, limit) <= limit


def _real_word_fixes(index: SearchIndex, word: str) -> list[tuple[str, float]]:
    """Much more frequent catalog words one edit away from ``word`` (with their frequency)."""
    speller = index.speller
    if speller is None or len(word) < 4:
        return []
    own = max(float(speller.frequencies.get(word, 0)), 1.0)
    close = speller.neighbours(word, 4 * NEIGHBOURS, limit=1, min_frequency=int(np.ceil(REAL_WORD_RATIO * own)))
    # not a stop word the analyzer drops ("thin" -> "this")
    out = [(c, float(speller.frequencies[c])) for c in close if index.bm25.analyzer.tokens(c)]
    return out[:NEIGHBOURS]


def variants(index: SearchIndex, text: str, postings: _Postings | None = None) -> list[tuple[str, int, float]]:
    """Candidate rewrites of ``text``: ``(text, words changed, popularity)``."""
    low = text.lower()
    spans = [(m.start(), m.end(), m[0]) for m in _WORD.finditer(low)]
    if not spans or len(spans) > MAX_WORDS:
        return []
    ws = [w for _, _, w in spans]
    out: list[tuple[str, int, float]] = []
    for s, e, w in spans:
        for c, f in _real_word_fixes(index, w):
            out.append((low[:s] + c + low[e:], 1, f))
    out.extend(_past_queries(index, ws))
    if len(spans) >= 3:
        postings = postings or _Postings(index)
        analyzer = index.bm25.analyzer
        for s, e, w in spans:
            toks = analyzer.tokens(w)
            rest = low[:s] + low[e:]
            if toks and not any(len(postings.token(t)) for t in toks) and sum(x.isalpha() for x in words(rest)) >= 2:
                out.append((_SPACES.sub(" ", rest).strip(), 1, 0.0))
    return out


def _past_queries(index: SearchIndex, ws: list[str]) -> list[tuple[str, int, float]]:
    """Past queries of as many words as ``ws``, each word equal or close to the query's. Only queries
    sharing a word (or a close one) with the query's rarest-position word are looked at."""
    ac = index.autocompleter
    if not ac.queries:
        return []
    speller = index.speller
    pools = []
    for w in ws:
        options = [w, *(speller.neighbours(w, 20) if speller is not None else [])]
        pools.append({q for o in options for q in ac.queries_with_word(o)})
    out = []
    past = ac.queries
    for q in min(pools, key=len):
        qw = words(q)
        if q not in past:  # forgotten (a deleted shopper's) while this request ran
            continue
        if len(qw) == len(ws) and qw != ws and all(_close(a, b) for a, b in zip(qw, ws, strict=True)):
            out.append((" ".join(qw), sum(a != b for a, b in zip(qw, ws, strict=True)), float(past[q])))
    return out


def did_you_mean(
    index: SearchIndex,
    text: str,
    threshold: int,
    mask: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
) -> str | None:
    """A better query than ``text`` when it matches fewer than ``threshold`` products (the setting
    ``did_you_mean_min_results``; 0 turns this off), else ``None``. ``candidates`` (rows the query
    retrieved, inside the filters) settle the common case without reading postings."""
    if threshold <= 0:
        return None
    tokens = index.bm25.analyzer.tokens(text)
    if candidates is not None and tokens:
        syn = index.bm25.analyzer.synonyms_of
        groups = [{t, *syn(t)} for t in dict.fromkeys(tokens)]  # a synonym counts as the word
        if _all_groups_found(index, candidates, groups) >= threshold:
            return None
    postings = _Postings(index)
    have = postings.count(tokens, mask)
    if have >= threshold:
        return None
    best: tuple[int, int, float, str] | None = None
    seen = {" ".join(words(text))}
    for v, changed, pop in variants(index, text, postings):
        key_text = " ".join(words(v))
        if key_text in seen:
            continue
        seen.add(key_text)
        n = postings.count(index.bm25.analyzer.tokens(v), mask)
        key = (n, -changed, pop, v)
        if n > have and (best is None or key[:3] > best[:3]):
            best = key
    return None if best is None else _SPACES.sub(" ", best[3]).strip()


def _all_groups_found(index: SearchIndex, rows: np.ndarray, groups: list[set[str]]) -> int:
    """How many of ``rows`` hold, in some field, a token of every group."""
    flat = list(dict.fromkeys(t for g in groups for t in g))
    where = {t: j for j, t in enumerate(flat)}
    tables = index.catalog_tokens
    have = tables.every.gather(rows).contains(tables.vocab.lookup(flat))  # (rows, tokens)
    in_group = np.zeros((len(flat), len(groups)), dtype=np.int64)
    for gi, g in enumerate(groups):
        in_group[[where[t] for t in g], gi] = 1
    return int(((have.astype(np.int64) @ in_group) > 0).all(axis=1).sum())
