"""Each product's analysed tokens as integer ids in flat arrays, for term-match tests over a query's
candidates in a few NumPy calls.

The search features ask, for every one of a query's few hundred candidates, which query tokens its
title (or brand, or any field) holds, where the last one sits, which query bigrams it keeps. As
Python sets and lists per candidate that cost about half of a search's CPU time; here one field of
the catalog is one CSR table (``indptr``, ``ids``) over a vocabulary shared by the fields, and a
question about the candidates is a gather and a sorted lookup.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shopsense import columns as C

UNKNOWN = -1  # the id of a token no product has: it matches nothing


class Vocabulary:
    """Token -> integer id, grown while tables are built and read-only afterwards."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def add(self, tokens: Sequence[str]) -> list[int]:
        ids = self.ids
        return [ids.setdefault(t, len(ids)) for t in tokens]

    def lookup(self, tokens: Sequence[str]) -> np.ndarray:
        """Ids of ``tokens`` (:data:`UNKNOWN` for a token no product has), int64."""
        get = self.ids.get
        return np.array([get(t, UNKNOWN) for t in tokens], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Gathered:
    """The tokens of some rows, flattened: ``seg[j]`` is the position (in the rows asked for) of the
    row token ``j`` belongs to, ``pos[j]`` its place within that row, ``ids[j]`` its id."""

    n: int  # rows asked for
    lengths: np.ndarray  # tokens per row
    seg: np.ndarray
    pos: np.ndarray
    ids: np.ndarray

    def contains(self, wanted: np.ndarray) -> np.ndarray:
        """(n, len(wanted)) bool: row i holds token ``wanted[j]`` (unique ids; UNKNOWN never matches)."""
        return membership(self.seg, self.ids, wanted, self.n)

    def bigrams(self, vocab_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Each row's adjacent token pairs as (seg, code) with code = first id * vocab_size + second."""
        same = self.seg[:-1] == self.seg[1:]
        codes = self.ids[:-1] * vocab_size + self.ids[1:]
        return self.seg[:-1][same], codes[same]

    def first_position(self, token: int) -> np.ndarray:
        """Position of the first occurrence of ``token`` in each row, -1 where it is absent."""
        out = np.full(self.n, -1, dtype=np.int64)
        if token == UNKNOWN:
            return out
        hit = self.ids == token
        seg, pos = self.seg[hit], self.pos[hit]
        # tokens are in row order and, within a row, in position order: the first hit of a row is its first
        first = np.ones(len(seg), dtype=bool)
        first[1:] = seg[1:] != seg[:-1]
        out[seg[first]] = pos[first]
        return out


class TokenTable:
    """The tokens of one field for every product (CSR: row r's ids are ``ids[indptr[r]:indptr[r+1]]``)."""

    def __init__(self, token_lists: Sequence[Sequence[str]], vocab: Vocabulary) -> None:
        self.vocab = vocab
        lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
        self.indptr = np.zeros(len(token_lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=self.indptr[1:])
        flat: list[int] = []
        for tokens in token_lists:
            flat.extend(vocab.add(tokens))
        self.ids = np.array(flat, dtype=np.int64)
        self.distinct = np.fromiter((len(set(t)) for t in token_lists), dtype=np.int64, count=len(token_lists))

    def gather(self, rows: np.ndarray) -> Gathered:
        """The tokens of ``rows`` (in that order), flattened (see :class:`Gathered`)."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        total = int(lengths.sum())
        seg = np.repeat(np.arange(len(rows), dtype=np.int64), lengths)
        row_start = np.cumsum(lengths) - lengths  # where each row begins in the flat output
        pos = np.arange(total, dtype=np.int64) - row_start[seg]
        return Gathered(len(rows), lengths, seg, pos, self.ids[starts[seg] + pos])


def membership(seg: np.ndarray, values: np.ndarray, wanted: np.ndarray, n: int) -> np.ndarray:
    """(n, len(wanted)) bool: some ``values[j]`` with ``seg[j] == i`` equals ``wanted[c]``; ``wanted``
    holds unique values, and :data:`UNKNOWN` among them matches nothing."""
    out = np.zeros((n, len(wanted)), dtype=bool)
    known = np.flatnonzero(wanted != UNKNOWN)
    if len(known) == 0 or len(values) == 0:
        return out
    order = known[np.argsort(wanted[known], kind="stable")]
    keys = wanted[order]
    at = np.searchsorted(keys, values)
    np.minimum(at, len(keys) - 1, out=at)
    hit = keys[at] == values
    out[seg[hit], order[at[hit]]] = True
    return out


@dataclass
class CatalogTokens:
    """The token tables search features read, over one vocabulary."""

    vocab: Vocabulary
    title: TokenTable
    brand: TokenTable  # brand tokens; the title's first token where a product has no brand
    every: TokenTable  # tokens of every indexed field (repeats kept: for membership only)

    @classmethod
    def build(cls, fields: dict[str, list[list[str]]], n: int) -> CatalogTokens:
        """Tables from each indexed field's token lists (``SearchIndex.tokens``) of ``n`` products."""
        vocab = Vocabulary()
        empty: list[list[str]] = [[] for _ in range(n)]
        title_lists = fields.get(C.TITLE) or empty
        brand_lists = fields.get(C.BRAND)
        brand = (
            [(b if b else t[:1]) for b, t in zip(brand_lists, title_lists, strict=True)]
            if brand_lists
            else [t[:1] for t in title_lists]
        )
        every: list[list[str]] = [[] for _ in range(n)]
        for lists in fields.values():
            for acc, toks in zip(every, lists, strict=True):
                acc.extend(toks)
        return cls(vocab, TokenTable(title_lists, vocab), TokenTable(brand, vocab), TokenTable(every, vocab))
