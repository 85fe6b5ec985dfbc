"""BM25 over several product fields with field weights, on ``bm25s``.

Each field (title, brand, category, description, ...) gets its own BM25 index, so a long
description cannot drown a title match; a query's score for a product is the weighted sum of its
per-field scores. Tokens come from :class:`~shopsense.index.analyzer.Analyzer` (units normalised,
stemmed, Chinese segmented), synonyms are expanded on the query side.

Why ``bm25s`` and not ``tantivy`` (measured by ``benchmarks/search_homedepot.py --bm25-backends`` on
the 54,667 Home Depot titles, see ``docs/benchmarks.md``): both answer a short query in about a
millisecond, but bm25s gives the *full score vector* over the catalog as a NumPy array, which is
what the engine needs (field-weighted sums, scores for dense-only candidates as re-ranker features,
filter masks) and it takes our own token lists, so the shared tokenizer (stemming, jieba) is used
unchanged. Its index is a folder of ``.npy`` and ``.json`` files, memory-mappable.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import topk
from shopsense.artifacts import read_params
from shopsense.config import DEFAULT_FIELD_WEIGHTS, BM25Config
from shopsense.exceptions import NotFittedError
from shopsense.features.product_text import is_missing
from shopsense.index.analyzer import Analyzer, load_synonyms
from shopsense.lru import LRU

__all__ = ["DEFAULT_FIELD_WEIGHTS", "BM25Config", "BM25Index", "field_text"]

FORMAT_VERSION = 1
DOCS_CACHE_SIZE = 4096  # tokens whose postings docs_with keeps ("did you mean" asks the same ones again)
# BM25Config lives in shopsense.config (the [search.bm25] settings) and is re-exported here


class BM25Index:
    """Field-weighted BM25 over a catalog; documents are row positions 0..n-1 of the fitted frame.

    >>> idx = BM25Index().fit(products)
    >>> rows, scores = idx.search("cordless drill", k=10)
    """

    def __init__(self, config: BM25Config | None = None, synonyms: list[list[str]] | None = None) -> None:
        self.config = config or BM25Config()
        if synonyms is None and self.config.synonyms_path:
            synonyms = load_synonyms(self.config.synonyms_path)
        self.synonyms = synonyms or []
        self.analyzer = Analyzer(self.config.language, self.synonyms)
        self._fields: dict[str, Any] = {}  # field -> bm25s.BM25
        self._docs_cache: LRU[np.ndarray] = LRU(DOCS_CACHE_SIZE)  # token -> rows (docs_with); thread-safe
        self.n_docs = 0

    # ------------------------------------------------------------------ building
    def fit(self, products: pd.DataFrame) -> BM25Index:
        """Index every weighted field present in ``products`` (rows = documents, in order)."""
        tokens = {
            name: [self.analyzer.tokens(field_text(v)) for v in products[name].tolist()]
            for name, weight in self.config.field_weights.items()
            if weight > 0 and name in products.columns
        }
        return self.fit_tokens(tokens, len(products))

    def fit_tokens(self, tokens: dict[str, list[list[str]]], n_docs: int) -> BM25Index:
        """Index already-analysed documents: ``{field: one token list per document}``."""
        import bm25s

        self._fields = {}
        self._docs_cache.clear()
        self.n_docs = int(n_docs)
        for name, corpus in tokens.items():
            if self.config.field_weights.get(name, 0) <= 0 or not any(corpus):
                continue
            if len(corpus) != n_docs:
                raise ValueError(f"field {name!r} has {len(corpus)} documents, expected {n_docs}")
            model = bm25s.BM25(k1=self.config.k1, b=self.config.b)
            model.index(corpus, show_progress=False)
            self._fields[name] = model
        return self

    @property
    def fields(self) -> list[str]:
        return list(self._fields)

    def _check(self) -> None:
        if not self._fields and self.n_docs == 0:
            raise NotFittedError("the BM25 index is empty: call fit() or load() first")

    # ------------------------------------------------------------------ querying
    def field_scores(self, tokens: list[str]) -> dict[str, np.ndarray]:
        """Per-field BM25 scores of every document for already-analysed query tokens."""
        self._check()
        out: dict[str, np.ndarray] = {}
        for name, model in self._fields.items():
            known = [t for t in tokens if t in model.vocab_dict]
            out[name] = (
                np.asarray(model.get_scores(known), dtype=np.float32) if known else np.zeros(self.n_docs, np.float32)
            )
        return out

    def combine(self, per_field: dict[str, np.ndarray]) -> np.ndarray:
        """Field-weighted sum of :meth:`field_scores`."""
        total = np.zeros(self.n_docs, dtype=np.float32)
        for name, s in per_field.items():
            total += np.float32(self.config.field_weights[name]) * s
        return total

    def scores(self, tokens: list[str]) -> np.ndarray:
        """Field-weighted BM25 score of every document for query tokens."""
        return self.combine(self.field_scores(tokens))

    def has_token(self, token: str) -> bool:
        """Whether any field indexed ``token``."""
        return any(token in model.vocab_dict for model in self._fields.values())

    def docs_with(self, token: str) -> np.ndarray:
        """Sorted rows whose indexed fields contain ``token`` (read from the fields' postings, no scoring;
        the most recently asked tokens are cached, read-only)."""
        rows = self._docs_cache.get(token)
        if rows is not None:
            return rows
        parts = []
        for model in self._fields.values():
            j = model.vocab_dict.get(token)
            if j is not None:
                sc = model.scores
                parts.append(np.asarray(sc["indices"][sc["indptr"][j] : sc["indptr"][j + 1]], dtype=np.int64))
        rows = np.unique(np.concatenate(parts)) if parts else np.zeros(0, dtype=np.int64)
        rows.setflags(write=False)
        self._docs_cache.put(token, rows)
        return rows

    def matching_all(self, tokens: list[str]) -> np.ndarray:
        """Rows containing every one of ``tokens`` (a token's synonyms count as the token)."""
        rows: np.ndarray | None = None
        for t in dict.fromkeys(tokens):
            docs = self.docs_with(t)
            for syn in self.analyzer.synonyms_of(t):
                docs = np.union1d(docs, self.docs_with(syn))
            rows = docs if rows is None else np.intersect1d(rows, docs, assume_unique=True)
            if not len(rows):
                break
        return np.zeros(0, dtype=np.int64) if rows is None else rows

    def search(self, query: str, k: int = 10, *, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` document rows and scores for a query text (rows with score 0 are left out)."""
        s = self.scores(self.analyzer.query_tokens(query))
        if allowed is not None:
            s = np.where(allowed, s, 0.0).astype(np.float32)
        return topk.top_k(s, k, above=0.0)  # only the documents that match

    def vocabulary(self) -> set[str]:
        """Every indexed token (all fields)."""
        out: set[str] = set()
        for model in self._fields.values():
            out.update(k for k in model.vocab_dict if k)
        return out

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the index as a folder: one bm25s sub-folder per field plus ``params.json``."""
        p = Path(path)
        if p.exists():
            shutil.rmtree(p)
        p.mkdir(parents=True)
        for name, model in self._fields.items():
            model.save(p / f"field_{name}", show_progress=False)
        params = {
            "format_version": FORMAT_VERSION,
            "config": self.config.model_dump(),
            "synonyms": self.synonyms,
            "fields": list(self._fields),
            "n_docs": self.n_docs,
        }
        (p / "params.json").write_text(json.dumps(params, indent=2, ensure_ascii=False), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path, *, mmap: bool = False) -> BM25Index:
        """Read an index written by :meth:`save`."""
        import bm25s

        p = Path(path)
        params = read_params(
            p / "params.json", what=f"BM25 index at {p}", format_version=FORMAT_VERSION, missing=f"no BM25 index at {p}"
        )
        idx = cls(BM25Config(**params["config"]), synonyms=params["synonyms"])
        idx.n_docs = int(params["n_docs"])
        for name in params["fields"]:
            idx._fields[name] = bm25s.BM25.load(p / f"field_{name}", mmap=mmap, show_progress=False, verbosity=0)
        return idx


def field_text(value: Any) -> str:
    """A product field as text ("" when missing; lists such as tags joined with spaces)."""
    if isinstance(value, list | tuple | np.ndarray):
        return " ".join(field_text(v) for v in value)
    return "" if is_missing(value) else str(value)
