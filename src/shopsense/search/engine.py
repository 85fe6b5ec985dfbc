"""The searcher: spelling correction, lexical + semantic retrieval, fusion, learned re-ranking,
filters and facets and personalisation over a :class:`~shopsense.search.index.SearchIndex`.

One query goes: correct typos against the catalog vocabulary ("did you mean") -> BM25 top N and
dense top N (the query encoded with the products' text encoder), both inside the filter mask (and,
for a version trained with images, the products whose pictures best match the query through CLIP)
-> union of candidates -> features -> LambdaRank score (the version's joint ranker when it won on
logged search lists, :mod:`shopsense.ranking.joint`; else the re-ranker trained on clicks or
judgements; untrained, a min-max blend of BM25 and dense; with images, blended with the picture
similarity) -> the user's content affinity -> top k, with facet counts over all candidates.

Everything before the personal part is kept for repeated queries (:mod:`shopsense.search.query_part`).
The index is built, saved and loaded in :mod:`shopsense.search.index`; the caller logs searches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import SearchConfig
from shopsense.index.analyzer import normalize_text
from shopsense.ranking.joint import SearchRanker
from shopsense.search.collaborative import ItemAffinity
from shopsense.search.features import INDEX, QueryContext, build_features
from shopsense.search.images import ImageRetriever, blend_image
from shopsense.search.index import SearchIndex, load_search
from shopsense.search.query_part import QueryMemory, described, query_part, with_affinity
from shopsense.search.reranker import Reranker
from shopsense.search.result import SearchResult
from shopsense.topk import top_k

if TYPE_CHECKING:
    from shopsense.search.logged import LoggedSearchFeatures

__all__ = ["Candidates", "SearchConfig", "SearchEngine", "SearchIndex", "SearchResult"]

log = logging.getLogger("shopsense.search")


@dataclass
class Candidates:
    """Retrieved candidates of one query with their features (rows align)."""

    rows: np.ndarray
    features: np.ndarray
    from_dense: np.ndarray  # bool: came from the semantic retriever
    corrected: str | None = None
    n_lexical: int = 0  # the first n_lexical rows are BM25's candidates (the rest came from dense alone)
    image: np.ndarray | None = None  # the query's CLIP similarity to each row's picture (versions with images)
    from_image: np.ndarray | None = None  # bool: retrieved by the picture


class SearchEngine:
    """Hybrid product search over one :class:`SearchIndex`: the index with the query-time settings,
    the query encoder, the learned re-ranker and the collaborative links it personalises with.

    >>> engine = SearchEngine.build(products, encoder=TextEncoder())
    >>> engine.search("whirpool microwve", k=5).items
    """

    def __init__(
        self,
        index: SearchIndex,
        config: SearchConfig | None = None,
        encoder: Any = None,
        reranker: Reranker | None = None,
    ) -> None:
        self.index = index
        self.config = config or SearchConfig()
        self.encoder = encoder
        self.reranker = reranker
        self.affinity: ItemAffinity | None = None  # collaborative links of the served version (not saved)
        self._affinity_rows = np.zeros(0, dtype=np.int64)
        self.images: ImageRetriever | None = None  # the served version's pictures (not saved)
        self.joint: SearchRanker | None = None  # the served version's joint ranker (not saved)
        self.remembered = QueryMemory(self.config.query_memory)  # repeated queries (search/query_part.py)

    # ------------------------------------------------------------------ building
    @classmethod
    def build(
        cls,
        products: pd.DataFrame,
        encoder: Any = None,
        *,
        store: Any = None,
        config: SearchConfig | None = None,
        vectors: np.ndarray | None = None,
        popularity: np.ndarray | None = None,
        queries: Sequence[str] = (),
    ) -> SearchEngine:
        """Search over a newly built :class:`SearchIndex` (see :meth:`SearchIndex.build`)."""
        config = config or SearchConfig()
        index = SearchIndex.build(
            products,
            config=config,
            encoder=encoder,
            store=store,
            vectors=vectors,
            popularity=popularity,
            queries=queries,
        )
        return cls(index, config, encoder)

    def configure(self, config: SearchConfig) -> SearchEngine:
        """Apply query-time settings (``[search]`` in the settings) to a built or loaded engine. What
        shaped the index (``bm25``: fields, synonyms, language) stays as built: rebuild to change it."""
        if config.bm25 != self.config.bm25:
            log.warning("the search index was built with other [search.bm25] settings: run `shopsense search-index`")
        self.config = config.model_copy(update={"bm25": self.config.bm25})
        self.remembered = QueryMemory(self.config.query_memory)
        return self

    def use_affinity(self, affinity: ItemAffinity | None) -> SearchEngine:
        """Personalise with these collaborative links too (``None``: content only). Products the
        links' model does not know (added after training) get no collaborative boost."""
        self.affinity = affinity
        self._affinity_rows = (
            affinity.rows_for(self.index.item_ids) if affinity is not None else np.zeros(0, dtype=np.int64)
        )
        return self

    def use_joint(self, ranker: SearchRanker | None) -> SearchEngine:
        """Rank with the version's joint ranker (``None``: the re-ranker or the default order). Its
        ``item_of_row`` must follow this index's rows."""
        if ranker is not None and len(ranker.item_of_row) != self.index.n_products:
            raise ValueError(f"{len(ranker.item_of_row)} joint-ranker rows for {self.index.n_products} products")
        self.joint = ranker
        return self

    def use_images(self, images: ImageRetriever | None) -> SearchEngine:
        """Retrieve by the products' pictures too (text -> image through CLIP's text tower; ``None``:
        text only). The retriever's rows must be this index's."""
        if images is not None and len(images.vectors) != self.index.n_products:
            raise ValueError(f"{len(images.vectors)} image rows for {self.index.n_products} products")
        self.images = images
        self.remembered.clear()
        return self

    # ------------------------------------------------------------------ retrieval
    def correct(self, query: str) -> str | None:
        """The spelling-corrected query, or ``None`` when nothing needed correcting."""
        if self.index.speller is None or not self.config.spelling:
            return None
        fixed, changed = self.index.speller.correct(query)
        return fixed if changed else None

    def encode_queries(self, queries: list[str]) -> np.ndarray | None:
        if self.encoder is None or self.index.vindex is None:
            return None
        enc = getattr(self.encoder, "encode_queries", None) or self.encoder.encode
        return np.asarray(enc(queries), dtype=np.float32)

    def _encode_or_empty(self, queries: list[str]) -> np.ndarray:
        qv = self.encode_queries(queries)
        return (
            np.zeros((len(queries), 0 if self.index.vectors is None else self.index.vectors.shape[1]), np.float32)
            if qv is None
            else qv
        )

    def candidates(
        self,
        query: str,
        query_vector: np.ndarray | None = None,
        *,
        mask: np.ndarray | None = None,
        corrected: str | None = None,
    ) -> Candidates:
        """Candidates of one query and their features, none of them personal (the affinity column is
        0: :func:`~shopsense.search.query_part.with_affinity` fills it for a shopper). ``corrected`` is
        the text to retrieve with (see :meth:`correct`); ``query_vector`` its encoding (encoded here
        when missing)."""
        idx = self.index
        idx.check()
        text = corrected or query
        tokens = idx.bm25.analyzer.query_tokens(text)
        per_field = idx.bm25.field_scores(tokens)
        bm = idx.bm25.combine(per_field)
        if mask is not None:
            bm = np.where(mask, bm, 0.0).astype(np.float32)
        lex, _ = top_k(bm, self.config.lexical_candidates, above=0.0)
        dense_rows = np.zeros(0, dtype=np.int64)
        if idx.vindex is not None and idx.vectors is not None and self.config.semantic_candidates > 0:
            if query_vector is None:
                qv = self.encode_queries([text])
                query_vector = None if qv is None else qv[0]
            if query_vector is not None:
                dense_rows = self._dense_top(np.asarray(query_vector, dtype=np.float32), mask)
        image_rows, image_vector = np.zeros(0, dtype=np.int64), None
        if self.images is not None and self.config.image_weight > 0:
            image_vector = self.images.text_vector(text)
            # pictures widen what the text found, never answer alone: a query no text matches is
            # relaxed as before (CLIP's cosines have no threshold that means "no match")
            if self.config.image_candidates > 0 and (len(lex) or len(dense_rows)):
                image_rows, _ = self.images.top(image_vector, self.config.image_candidates, mask)
        # np.isin sorts both sides: a mark per product is cheaper for a few hundred rows
        seen = np.zeros(idx.n_products, dtype=bool)
        seen[lex] = True
        rows = np.concatenate([lex, dense_rows[~seen[dense_rows]]]).astype(np.int64)
        if len(image_rows):
            seen[rows] = True
            rows = np.concatenate([rows, image_rows[~seen[image_rows]]]).astype(np.int64)
        seen[:] = False
        seen[dense_rows] = True
        from_dense = seen[rows]
        if idx.vectors is not None and query_vector is not None and len(rows):
            dense = idx.vectors[rows] @ np.asarray(query_vector, dtype=np.float32)
        else:
            dense = np.zeros(len(rows), dtype=np.float32)
        ctx = QueryContext(
            query_tokens=idx.bm25.analyzer.tokens(text),
            query_norm=" ".join(normalize_text(text).split()),
            candidates=rows,
            bm25=bm[rows],
            bm25_title=per_field[C.TITLE][rows] if C.TITLE in per_field else np.zeros(len(rows), np.float32),
            dense=dense.astype(np.float32),
            title_norm=idx.title_norm[rows],
            tokens=idx.catalog_tokens,
            popularity=idx.popularity[rows] if len(idx.popularity) else np.zeros(len(rows), np.float32),
            affinity=np.zeros(len(rows), np.float32),
        )
        X = build_features(ctx, rrf_k=self.config.rrf_k, dense_weight=self.config.dense_weight)
        cand = Candidates(rows=rows, features=X, from_dense=from_dense, corrected=corrected, n_lexical=len(lex))
        if self.images is not None and image_vector is not None:
            cand.image = self.images.similarities(image_vector, rows)
            seen[:] = False
            seen[image_rows] = True
            cand.from_image = seen[rows]
        return cand

    def default_scores(self, cand: Candidates) -> np.ndarray:
        """The untrained ranking: the min-max blend, nudged by the share of query terms the title covers."""
        X = cand.features
        return X[:, INDEX["blend"]] + np.float32(self.config.coverage_weight) * X[:, INDEX["coverage"]]

    def rerank_rows(self, cand: Candidates) -> np.ndarray:
        """Positions of the candidates the re-ranker sees: the best ``rerank_depth`` by the default score
        (the same cut in training and serving, so the model never meets rows unlike its training rows)."""
        base = self.default_scores(cand)
        depth = self.config.rerank_depth
        if len(base) <= depth:
            return np.arange(len(base))
        return np.sort(top_k(base, depth)[0])

    def _dense_top(self, qv: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """Rows of the most similar products (above ``semantic_min_similarity``), best first."""
        assert self.index.vectors is not None and self.index.vindex is not None
        n = self.config.semantic_candidates
        if self.index.n_products <= self.config.dense_exact_max:
            # one matrix-vector product over the catalog (54k x 384: a few ms), no copy of the matrix
            sims = self.index.vectors @ qv
            if mask is not None:
                sims = np.where(mask, sims, -np.inf)
            rows, _ = top_k(sims, n, above=self.config.semantic_min_similarity - 1e-6)
            return rows.astype(np.int64)
        if mask is None:  # row ids without a per-id Python lookup
            rows, sims = self.index.vindex.search_positions(qv, n)
            return rows[sims >= self.config.semantic_min_similarity]
        ids, sims = self.index.vindex.search(qv, n, allowed=mask)
        return ids[0][sims[0] >= self.config.semantic_min_similarity].astype(np.int64)

    def score(self, cand: Candidates, history: np.ndarray | None = None) -> np.ndarray:
        """Relevance score of each candidate: the version's joint ranker's for the top ``rerank_depth``
        (given the shopper's items ``history`` as its item indices, oldest first), placed above the
        rest, which keep the default order; without one, :meth:`own_score`."""
        joint = self.joint
        if joint is None:
            return self.own_score(cand)
        base = self.default_scores(cand)
        if len(base) == 0:
            return base
        top = self.rerank_rows(cand)
        h = np.zeros(0, np.int64) if history is None else history
        return _above_rest(base, top, joint.score(cand.features[top], cand.rows[top], h))

    def own_score(self, cand: Candidates) -> np.ndarray:
        """Search's own relevance score, without a joint ranker: the re-ranker's for the top
        ``rerank_depth`` (when trained), placed above the rest, which keep the default order."""
        base = self.default_scores(cand)
        if self.reranker is None or not self.reranker.fitted or len(base) == 0:
            return base
        top = self.rerank_rows(cand)
        return _above_rest(base, top, self.reranker.predict(cand.features[top]))

    # ------------------------------------------------------------------ offline ranking
    def rank(
        self,
        queries: Sequence[str],
        k: int = 100,
        *,
        query_vectors: np.ndarray | None = None,
        batch_size: int = 256,
    ) -> np.ndarray:
        """Top ``k`` product rows for each query, (n_queries, k) int64 padded with -1 (evaluation)."""
        out = np.full((len(queries), k), -1, dtype=np.int64)
        for i, cand in enumerate(self.iter_candidates(queries, query_vectors=query_vectors, batch_size=batch_size)):
            s = self.score(cand)
            order, _ = top_k(s, k)
            out[i, : len(order)] = cand.rows[order]
        return out

    def iter_candidates(
        self, queries: Sequence[str], *, query_vectors: np.ndarray | None = None, batch_size: int = 256
    ):  # noqa: ANN201 - a generator of Candidates
        """Candidates of many queries, encoding the (corrected) queries in batches."""
        for s in range(0, len(queries), batch_size):
            batch = [str(q) for q in queries[s : s + batch_size]]
            fixed = [self.correct(q) for q in batch]
            texts = [f or q for f, q in zip(fixed, batch, strict=True)]
            if query_vectors is not None and not any(fixed):
                qv: np.ndarray | None = query_vectors[s : s + batch_size]
            else:
                qv = self.encode_queries(texts)
                if qv is None and query_vectors is not None:
                    qv = query_vectors[s : s + batch_size]
            for j, q in enumerate(batch):
                yield self.candidates(q, None if qv is None else qv[j], corrected=fixed[j])

    # ------------------------------------------------------------------ the re-ranker
    def fit_reranker(
        self,
        queries: pd.DataFrame,
        qrels: pd.DataFrame,
        *,
        gain_offset: float = 1.0,
        num_rounds: int = 300,
        params: dict | None = None,
        query_vectors: np.ndarray | None = None,
    ) -> SearchEngine:
        """Learn the LambdaRank re-ranker from judged queries: ``queries`` (query_id, query) and
        ``qrels`` (query_id, item_id, relevance); gain = relevance - ``gain_offset`` (Home Depot: 1)."""
        groups, gains = self.training_groups(queries, qrels, gain_offset=gain_offset, query_vectors=query_vectors)
        self.reranker = Reranker(num_rounds=num_rounds, params=params).fit(groups, gains)
        return self

    def training_groups(
        self,
        queries: pd.DataFrame,
        qrels: pd.DataFrame,
        *,
        gain_offset: float = 1.0,
        query_vectors: np.ndarray | None = None,
    ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Feature matrices and gains per judged query (for training or cross-fitting)."""
        judged: dict[str, dict[int, float]] = {}
        for qid, item, rel in zip(
            qrels["query_id"].astype(str), qrels[C.ITEM].astype(str), qrels["relevance"], strict=True
        ):
            row = self.index.row_of.get(item)
            if row is not None:
                judged.setdefault(qid, {})[row] = float(rel) - gain_offset
        qids = queries["query_id"].astype(str).tolist()
        groups, gains = [], []
        for qid, cand in zip(
            qids, self.iter_candidates(queries["query"].tolist(), query_vectors=query_vectors), strict=True
        ):
            rel = judged.get(qid, {})
            top = self.rerank_rows(cand)
            groups.append(cand.features[top])
            gains.append(np.array([max(rel.get(int(r), 0.0), 0.0) for r in cand.rows[top]], dtype=np.float32))
        return groups, gains

    # ------------------------------------------------------------------ online search
    def search(
        self,
        query: str,
        user_id: str | None = None,
        filters: Mapping[str, Any] | None = None,
        k: int = 10,
        *,
        store: Any = None,
        request_id: str | None = None,
        with_products: bool = False,
    ) -> SearchResult:
        """Search the catalog. With ``user_id`` and a ``store`` the order is personalised by the
        user's history. Nothing is written: the caller logs the search (:func:`shopsense.search.search`,
        the service's impression log)."""
        from shopsense.search.personal import UserSignals, new_request_id, personalise, user_signals

        self.index.check()
        if not isinstance(query, str) or not query.strip():
            raise ValueError("the query is empty")
        if k < 1:
            raise ValueError("k must be at least 1")
        part = query_part(self, query, filters)
        user = UserSignals()
        if user_id is not None and store is not None:
            user = user_signals(
                store,
                user_id,
                row_of=self.index.row_of,
                vectors=self.index.vectors,
                encode_queries=self._encode_or_empty,
                affinity=self.affinity,
                limit=self.config.personal_history,
            )
        fixed, cand, relaxed = part.fixed, with_affinity(part.cand, self.index.vectors, user.profile), None
        if not len(cand.rows):  # nothing found: a relaxed query instead of an empty page (search/relax.py)
            from shopsense.search.relax import relax

            mask = self.index.columns.mask(filters)
            found = relax(self, fixed or query, mask, user.profile)
            if found is not None:
                cand, relaxed = found
                part = described(self, query, fixed, mask, cand)
        s = self.score(cand, self.joint.history(user.items) if self.joint is not None else None)
        if cand.image is not None:  # the third retriever's similarity, fused like the dense one's
            s = blend_image(s, cand.image, self.config.image_weight)
        if not user.empty:
            collab = None
            if user.links is not None and self.affinity is not None:
                collab = self.affinity.lookup(user.links, self._affinity_rows[cand.rows])
            s = personalise(s, cand.features[:, INDEX["affinity"]], collab, self.config, user.profile is not None)
        order, _ = top_k(s, k)
        rows = cand.rows[order]
        items = [str(self.index.item_ids[r]) for r in rows]
        scores = [float(x) for x in s[order]]
        result = SearchResult(
            query=query,
            items=items,
            scores=scores,
            matched_fields=self._matched(cand, order, relaxed.query if relaxed else fixed or query),
            facets={k: dict(v) for k, v in part.facets.items()},  # the caller's own copy
            did_you_mean=part.did_you_mean,
            showing_results_for=relaxed.query if relaxed and relaxed.query != query else fixed,
            relaxed=relaxed.how if relaxed else None,
            total=len(cand.rows),
            request_id=request_id or new_request_id(),
        )
        if with_products:
            result.products = self.index.products.iloc[rows].to_dict("records")
        return result

    def logged_features(self) -> LoggedSearchFeatures:
        """What training needs to learn from this engine's logged lists (:mod:`shopsense.ranking.joint`)."""
        from shopsense.search.logged import LoggedSearchFeatures

        return LoggedSearchFeatures(self)

    def _matched(self, cand: Candidates, positions: np.ndarray, text: str) -> list[list[str]]:
        """For each shown candidate: the fields sharing a token with the query, and "semantic"."""
        q = set(self.index.bm25.analyzer.tokens(text))
        out = []
        for i in positions:
            row = int(cand.rows[i])
            fields = [f for f, toks in self.index.tokens.items() if q.intersection(toks[row])]
            if cand.from_dense[i]:
                fields.append("semantic")
            if cand.from_image is not None and cand.from_image[i]:
                fields.append("image")
            out.append(fields)
        return out

    def autocomplete(self, prefix: str, k: int = 8) -> list[str]:
        """Completions of a typed prefix from popular past queries and product titles."""
        return self.index.autocompleter.suggest(prefix, k)

    def forget_searches(self, queries: list[str]) -> None:
        """Take a deleted shopper's searches (with repeats, as searched) back out of autocomplete and
        "did you mean"."""
        self.index.autocompleter.forget(queries)
        self.remembered.clear()

    def limit_searches(self, queries: list[str]) -> None:
        """Cut autocomplete's past searches down to ``queries`` (the searches the store holds now)."""
        self.index.autocompleter.limit_to(queries)
        self.remembered.clear()

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        """Write the index with this engine's settings and re-ranker (see :mod:`shopsense.search.index`)."""
        return self.index.save(
            path, config=self.config, encoder=getattr(self.encoder, "model_id", None), reranker=self.reranker
        )

    @classmethod
    def load(cls, path: str | Path, encoder: Any = None) -> SearchEngine:
        """Read an engine written by :meth:`save`; ``encoder`` encodes queries for semantic retrieval."""
        saved = load_search(path, encoder=getattr(encoder, "model_id", None))
        return cls(saved.index, saved.config, encoder, saved.reranker)


def _above_rest(base: np.ndarray, top: np.ndarray, learned: np.ndarray) -> np.ndarray:
    """Scores with the ``top`` rows at their ``learned`` score and the rest below every one of them,
    in ``base`` order."""
    out = base - float(base.max()) + float(learned.min()) - 1.0
    out[top] = learned
    return out.astype(np.float32)
