"""The recommendation engine offline: every source model, candidate merging and the learned ranker.

``fit`` holds out each user's last training interaction, fits the sources on the rest, trains the
LambdaRank ranker (and tunes the fallback fusion) on those held-out next interactions, then refits
the sources on everything (the sequential model continues from its weights for a few epochs
instead of starting over). ``rank`` scores histories: each source proposes its top items, the
ranker orders the merged candidates.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import EngineConfig, OutcomesConfig
from shopsense.models import MODELS
from shopsense.models.base import Histories, Model, Proposal
from shopsense.models.complements import Complements
from shopsense.models.popular import PopularModel, top_category
from shopsense.models.sequential import SequentialModel
from shopsense.ranking import candidates as cand
from shopsense.ranking import engine_files
from shopsense.ranking.engine_files import ENGINE_FORMAT
from shopsense.ranking.exposure import Exposure, uses_exposure
from shopsense.ranking.exposure import extend as extend_exposure
from shopsense.ranking.joint import SearchFeaturer, describe_search
from shopsense.ranking.outcomes import RECOMMEND, SEARCH, ShownLists, list_features, shown_lists, with_exposure
from shopsense.ranking.outcomes import learn as learn_outcomes
from shopsense.ranking.propensity import Propensities
from shopsense.ranking.propensity import estimate as estimate_propensities
from shopsense.ranking.ranker import LambdaRanker, WeightedFusion
from shopsense.ranking.return_features import category_codes
from shopsense.ranking.returns import ReturnScorer
from shopsense.ranking.tuning import (
    NOVELTY,
    TAIL_BIAS,
    TAIL_PREFIX,
    heldout_ndcg,
    hit_rate_by_rank,
    novelty_z,
    shortlist,
    standardise,
    tune_for_tail,
    tune_fusion,
)
from shopsense.topk import top_k

Progress = Callable[[str], None]


SOURCES = ("ease", "itemknn", "covisit", "als", "sequential", "content")
# held-out users scored at once while tuning the fusion (a batch x catalog float32 matrix per source)
HELDOUT_BATCH = 1000
INTENT_EVENTS = (C.ADD_TO_CART, C.PURCHASE)
MIN_INTENT_TARGETS = 30  # held-out carts and purchases needed to measure discovery on them alone


class Engine:
    """Sources + ranker. ``rank(histories, k)`` -> items, scores and the source that proposed each."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.models: dict[str, Model] = {}
        self.popular: PopularModel | None = None
        self.side: cand.ItemSide | None = None
        self.ranker: LambdaRanker | None = None
        #: the joint ranker when it won on logged search lists (:mod:`shopsense.ranking.joint`); search
        #: serves it through :class:`~shopsense.ranking.joint.SearchRanker`
        self.search_ranker: LambdaRanker | None = None
        self.fusion = WeightedFusion({})
        self.metrics: dict[str, Any] = {}
        self.n_items = 0
        self.returns: ReturnScorer | None = None  # the shopper's own items they come back to buy
        self.complements: Complements | None = None  # products bought together
        #: per rank of the ranked list, the share of held-out next items it found that the shopper had
        #: not touched: what a discovery item there is worth against a return item's probability
        self.discovery_hit_rate: list[float] = []
        self._by_popularity: np.ndarray | None = None
        self._novelty_cache: np.ndarray | None = None
        self._tail_cache: np.ndarray | None = None

    # ------------------------------------------------------------------ training
    def _new_models(self, item_vectors: np.ndarray | None) -> dict[str, Model]:
        out: dict[str, Model] = {}
        for name in SOURCES:
            cfg = getattr(self.config, name)
            if cfg is None or (name == "content" and item_vectors is None):
                continue
            out[name] = MODELS[name](cfg)
        return out

    def fit(
        self,
        ds: Dataset,
        item_vectors: np.ndarray | None = None,
        progress: Progress | None = None,
        outcomes: pd.DataFrame | None = None,
        search_featurer: SearchFeaturer | None = None,
    ) -> Engine:
        """Fit sources, ranker and fusion on ``ds`` (see the module docstring); with ``outcomes``
        (impressions labelled by :func:`~shopsense.data.outcomes.label_impressions`) and enough of
        them, the ranker also learns from what shoppers did with what they were shown
        (:mod:`shopsense.ranking.outcomes`): the held-out stage then sees only events before the first
        logged list it learns from. With ``search_featurer`` (the search engine's features of logged
        search lists) the logged search lists join them in one ranker for both surfaces
        (:mod:`shopsense.ranking.joint`), served on each surface where it wins."""
        say = progress or (lambda _m: None)
        t0 = time.perf_counter()
        self.n_items = ds.n_items
        self.popular = PopularModel(self.config.popular).fit(ds)
        self._by_popularity, self._novelty_cache, self._tail_cache = None, None, None
        # the ranker's text-similarity features only with the content source: a loaded engine reads
        # the vectors from it, so training with vectors but without it gave 2 features serving lacked
        self.side = item_side(ds, self.popular, item_vectors if self.config.content is not None else None)
        self.search_ranker = None
        logged = self._logged_lists(outcomes, ds, say, search_featurer is not None)
        lists, searched = logged if logged is not None else (None, None)
        # features of the logged lists come from sources fitted before the first of them, either surface's
        cutoff = min(lists.cutoff, searched.cutoff if searched is not None else np.inf) if lists is not None else 0.0
        props = estimate_propensities(outcomes) if lists is not None and outcomes is not None else None
        before = ds if lists is None else ds.with_interactions(ds.interactions[ds.interactions[C.TIMESTAMP] < cutoff])
        inner, users, targets = holdout_last(before, self.config.ranker_users, self.config.seed)
        self.models = self._new_models(item_vectors)
        for name, m in self.models.items():
            say(f"fitting {name} on the held-out split")
            m.fit(inner, item_vectors=item_vectors)
        if len(users):
            hist = Histories.from_dataset(inner, users)
            exclude = _history_mask(hist, ds.n_items, targets)
            c = None
            if self.config.ranker == "lambdarank" or lists is not None:
                say(f"building candidates for {len(users)} held-out users")
                c = self.candidates(hist, exclude=exclude, side=self._side_as_of(inner))
                self.metrics["candidate_recall"] = float(
                    np.mean([t in set(i) for i, t in zip(c.items, targets, strict=True)])
                )
            if self.config.ranker == "lambdarank":
                assert c is not None
                say("training the LambdaRank ranker")
                self.ranker = LambdaRanker(self.config.ranker_config).fit(c, targets)
                self.metrics["ranker_importance"] = dict(list(self.ranker.importance().items())[:10])
            say(f"tuning the fusion weights on {len(users)} held-out users")
            inner_pop = inner.item_popularity()
            tail_item = inner_pop <= self.config.tail_max_count
            terms = {NOVELTY: novelty_z(inner_pop), TAIL_BIAS: tail_item.astype(np.float32)}
            z, local = self._heldout_shortlist(hist, exclude, targets, terms, tail_item)
            sources = {n: v for n, v in z.items() if n in self.models}
            self.fusion, self.metrics["heldout_ndcg@10_fusion"] = tune_fusion(sources, local)
            self.metrics["heldout_ndcg@10_single"] = {n: heldout_ndcg({n: 1.0}, z, local) for n in sources}
            tail = tail_item[targets]
            if self.config.tail_tolerance > 0 and tail.sum() >= 20:
                say("trading a little held-out NDCG for the long tail")
                self.fusion, tail_metrics = tune_for_tail(
                    self.fusion.weights, z, local, tail, self.config.tail_tolerance
                )
                self.metrics.update(tail_metrics)
            # measured on the held-out carts and purchases where there are enough (what the lists are
            # judged on: a source that finds the next view may not find the next purchase), else on all
            last_type = before.interactions.groupby(C.USER_IDX)[C.EVENT_TYPE].last().reindex(users).to_numpy()
            intent = np.isin(last_type, INTENT_EVENTS)
            over = intent if intent.sum() >= MIN_INTENT_TARGETS else np.ones(len(users), bool)
            new_target = np.array([t not in set(h.tolist()) for h, t in zip(hist.items, targets, strict=True)])
            self.discovery_hit_rate = hit_rate_by_rank(self.fusion.weights, z, local, new_target, over)
            self.metrics["discovery_hit_rate_over"] = "carts and purchases" if over is intent else "all events"
            del z
            if lists is not None and c is not None:
                search = None if searched is None or search_featurer is None else (searched, search_featurer)
                self._learn_outcomes(lists, ds, inner, props, (c, targets), say, search, outcomes)
        if self.config.returns is not None:
            say("learning which of their own items shoppers come back to buy")
            self.returns = ReturnScorer.fit(ds, self.config.returns, say)
            if self.returns is not None:
                self.metrics["returns"] = self.returns.metrics
        self.complements = Complements().fit(ds.interactions, ds.n_items, category_codes(ds.products)[0])
        say("refitting sources on all data")
        for m in self.models.values():
            if isinstance(m, SequentialModel) and m.net is not None:
                m.n_items = ds.n_items
                m.train_sequences([s + 1 for s in ds.sequences() if len(s) >= 2], self.config.refit_epochs)
            else:
                m.fit(ds, item_vectors=item_vectors)
        self.metrics["fit_seconds"] = time.perf_counter() - t0
        return self

    def _logged_lists(
        self, outcomes: pd.DataFrame | None, ds: Dataset, say: Progress, with_search: bool
    ) -> tuple[ShownLists, ShownLists | None] | None:
        """The logged recommendation lists to learn from and, ``with_search``, the search lists;
        None when outcome learning is off or the log too thin."""
        cfg = self.config.outcomes
        if outcomes is None or cfg is None:
            return None
        lists = shown_lists(outcomes, ds, cfg)
        searched = shown_lists(outcomes, ds, cfg, [SEARCH], unknown_users=True) if with_search else None
        total = lists.impressions + (searched.impressions if searched is not None else 0)
        self.metrics["outcomes"] = {"lists": len(lists), "impressions": lists.impressions}
        if searched is not None:
            self.metrics["outcomes"]["search"] = {"lists": len(searched), "impressions": searched.impressions}
        if total < cfg.min_impressions:
            say(f"{total} impressions of lists with outcomes (< {cfg.min_impressions}): next-item labels only")
            self.metrics["outcomes"]["chosen"] = f"not used: fewer than {cfg.min_impressions} impressions"
            return None
        return lists, searched if searched is not None and len(searched) else None

    def _learn_outcomes(
        self,
        lists: ShownLists,
        ds: Dataset,
        inner: Dataset,
        props: Propensities | None,
        next_item: tuple[cand.Candidates, np.ndarray],
        say: Progress,
        search: tuple[ShownLists, SearchFeaturer] | None = None,
        labelled: pd.DataFrame | None = None,
    ) -> None:
        """Train the outcome ranker (:func:`shopsense.ranking.outcomes.learn`), with ``search`` the
        joint one; serve it on each surface where it wins. ``labelled``: every logged impression,
        what the exposure columns count (:mod:`shopsense.ranking.exposure`)."""
        assert self.side is not None and self.config.outcomes is not None
        side = self._side_as_of(inner)
        say(f"describing {len(lists)} logged lists as their requests saw them")
        feats, lists = list_features(self, lists, ds, side)
        if self.config.outcomes.exposure and labelled is not None:
            feats = with_exposure(feats, lists, labelled, ds, self.config.outcomes)
        described = None
        if search is not None:
            say(f"describing {len(search[0])} logged search lists as search ranks them now")
            described = describe_search(search[0], ds, side, feats.names, search[1])
        fallback = self.ranker if self.ranker is not None else self.fusion
        ranker, surfaces, metrics = learn_outcomes(
            feats,
            lists,
            props,
            next_item,
            fallback,
            self.config.outcomes,
            self.config.ranker_config,
            say,
            described,
            search[1].names if search is not None else (),
        )
        metrics["serves"] = surfaces
        self.metrics["outcomes"] = metrics
        if ranker is not None and RECOMMEND in surfaces:
            self.ranker = ranker
            self.metrics["ranker_importance"] = dict(list(ranker.importance().items())[:10])
        if ranker is not None and SEARCH in surfaces:
            self.search_ranker = ranker

    def _heldout_shortlist(
        self,
        hist: Histories,
        exclude: sp.csr_matrix,
        targets: np.ndarray,
        terms: dict[str, np.ndarray],
        tail_item: np.ndarray,
    ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The held-out users' standardised source scores restricted to their candidates (see
        :func:`shortlist`), scored in batches of users: only a batch's (users x catalog) scores are
        in memory at once, so the held-out set can grow with the catalog (the shortlist has the same
        width for every row, so the batches stack)."""
        parts = []
        for start in range(0, len(targets), HELDOUT_BATCH):
            rows = np.arange(start, min(start + HELDOUT_BATCH, len(targets)))
            z = {name: standardise(m.score(hist[rows]), exclude[rows]) for name, m in self.models.items()}
            parts.append(shortlist(z, targets[rows], self.config.per_source * 4, terms, tail_item))
        names = list(parts[0][0])
        return {n: np.concatenate([p[0][n] for p in parts]) for n in names}, np.concatenate([p[1] for p in parts])

    # ------------------------------------------------------------------ scoring
    def proposals(
        self,
        histories: Histories,
        n: int,
        exclude: sp.csr_matrix | Sequence[np.ndarray] | None = None,
        sources: list[str] | None = None,
    ) -> list[dict[str, Proposal]]:
        """Per history, every source's top ``n`` (never an excluded item) and what fusion needs to
        standardise its scores. Sparse and indexed sources answer without scoring the whole catalog."""
        names = sources or list(self.models)
        excluded = _rows(exclude, len(histories))
        per_source = {s: self.models[s].propose(histories, n, excluded) for s in names}
        return [{s: per_source[s][r] for s in names} for r in range(len(histories))]

    def candidates(
        self, histories: Histories, exclude: sp.csr_matrix | None = None, side: cand.ItemSide | None = None
    ) -> cand.Candidates:
        """Merged candidates and their features; ``side`` (training) replaces the served item data."""
        assert self.side is not None
        props = self.proposals(histories, self.config.per_source, exclude)
        return cand.build(histories, props, side or self.side, self.config.per_source)

    def _side_as_of(self, inner: Dataset) -> cand.ItemSide:
        """The item data as the held-out stage saw it: popularity and trend of ``inner`` only (the
        whole log's would carry the held-out targets and the logged outcomes into the features)."""
        assert self.side is not None
        s = self.side
        trend = PopularModel(self.config.popular).fit(inner).trend
        return cand.ItemSide(inner.item_popularity(), trend, s.category, s.brand, s.vectors)

    def rank(
        self,
        histories: Histories,
        k: int,
        exclude: sp.csr_matrix | Sequence[np.ndarray] | None = None,
        shown: Sequence[Exposure] | None = None,
        now: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray, list[list[str]]]:
        """Top-k items (-1 padded), their scores and the strongest source of each, per history.

        Candidate-only: each source proposes its top items, only those are scored and ranked (by the
        learned ranker, or by the tuned weighted sum of standardised scores), so a request never
        ranks the whole catalog. ``shown``: per history, what the shopper was shown before ``now``
        (read when :attr:`wants_exposure`; none: never shown anything)."""
        n = len(histories)
        items = np.full((n, k), -1, np.int64)
        scores = np.full((n, k), -np.inf, np.float32)
        sources: list[list[str]] = [[] for _ in range(n)]
        if not self.models:
            return items, scores, sources
        src_names = list(self.models)
        if self.ranker is None:  # tuned fusion of the sources' standardised scores
            w = self.fusion.weights
            used = [s for s in src_names if w.get(s, 0.0) or w.get(TAIL_PREFIX + s, 0.0)] or src_names[:1]
            tail_terms = any(w.get(TAIL_PREFIX + s, 0.0) for s in used) or w.get(TAIL_BIAS, 0.0)
            excluded = _rows(exclude, n)
            for r, props in enumerate(self.proposals(histories, max(self.config.per_source, k), exclude, used)):
                pool = cand.merge(props.values())
                if len(pool) < k:  # sparse sources proposed too little: popular items fill the list
                    pool = np.union1d(pool, self._popular_fill(k - len(pool), np.union1d(pool, excluded[r])))
                if not len(pool):
                    continue
                zs = {s: props[s].z(pool) for s in used}
                parts = np.stack([w.get(s, 1.0 if len(used) == 1 else 0.0) * zs[s] for s in used])
                total = parts.sum(axis=0) + w.get(NOVELTY, 0.0) * self._novelty[pool]
                if tail_terms:
                    in_tail = self._tail_item[pool]
                    extra = w.get(TAIL_BIAS, 0.0) + sum(w.get(TAIL_PREFIX + s, 0.0) * zs[s] for s in used)
                    total = total + np.where(in_tail, extra, 0.0)
                order = np.lexsort((pool, -total))[:k]
                items[r, : len(order)], scores[r, : len(order)] = pool[order], total[order]
                sources[r] = [used[b] for b in parts[:, order].argmax(axis=0)]
            return items, scores, sources
        c = self.candidates(histories, exclude)
        if self.wants_exposure:
            cfg, at = self.exposure_config, time.time() if now is None else now
            c = extend_exposure(c, shown or [None] * n, [at] * n, cfg.exposure_days, cfg.exposure_limit)
        rank_cols = [c.names.index(f"{s}_rank") for s in src_names]
        lengths = [len(f) for f in c.features]
        allf = np.concatenate(c.features) if sum(lengths) else np.zeros((0, len(c.names)), np.float32)
        pred = np.split(self.ranker.predict(allf), np.cumsum(lengths)[:-1])
        for r in range(n):
            feats = c.features[r]
            if not len(feats):
                continue
            s = pred[r]
            order, _ = top_k(s, k)
            items[r, : len(order)] = c.items[r][order]
            scores[r, : len(order)] = s[order]
            best = feats[order][:, rank_cols].argmin(axis=1)
            sources[r] = [src_names[b] for b in best]
        return items, scores, sources

    @property
    def wants_exposure(self) -> bool:
        """Whether the served ranker reads what each shopper was already shown (:mod:`shopsense.ranking.exposure`)."""
        return self.ranker is not None and uses_exposure(self.ranker.names)

    @property
    def exposure_config(self) -> OutcomesConfig:
        """The window of impressions the exposure columns count (the defaults without outcome settings)."""
        return self.config.outcomes or OutcomesConfig()

    def warm(self) -> Engine:
        """Load and compute now what the first request would otherwise pay for (vector moments, the
        saved HNSW indexes, per-item fusion terms), so a served version answers at full speed at once."""
        from shopsense.models.indexed import VectorModel

        for m in self.models.values():
            if isinstance(m, VectorModel):
                m.indexed().warm()
        if self.popular is not None:
            _ = self._novelty, self._tail_item
            self._popular_fill(1, np.zeros(0, np.int64))
        return self

    @property
    def _novelty(self) -> np.ndarray:
        if self._novelty_cache is None:
            assert self.popular is not None
            self._novelty_cache = novelty_z(self.popular.counts)
        return self._novelty_cache

    @property
    def _tail_item(self) -> np.ndarray:
        if self._tail_cache is None:  # per request it cost a catalog-wide comparison (50k items: ~40 us)
            assert self.popular is not None
            self._tail_cache = self.popular.counts <= self.config.tail_max_count
        return self._tail_cache

    def _popular_fill(self, n: int, taken: np.ndarray) -> np.ndarray:
        """The ``n`` most popular items not in ``taken``."""
        if self.popular is None or n <= 0:
            return np.zeros(0, np.int64)
        if self._by_popularity is None:
            self._by_popularity = np.argsort(-self.popular.popularity, kind="stable").astype(np.int64)
        head = self._by_popularity[: n + len(taken)]
        return head[~np.isin(head, taken)][:n]

    # ------------------------------------------------------------------ persistence
    def save(self, folder: str | Path) -> Path:
        """Write the engine to ``folder`` (:mod:`shopsense.ranking.engine_files`)."""
        return engine_files.save(self, Path(folder))

    @staticmethod
    def load_search_ranking(folder: str | Path) -> tuple[LambdaRanker, cand.ItemSide] | None:
        """The joint ranker search serves and the item data it reads, from a folder written by
        :meth:`save`, without loading the sources (None when the engine has no search ranker)."""
        return engine_files.load_search_ranking(Path(folder))

    @classmethod
    def load(cls, folder: str | Path) -> Engine:
        """Read a folder written by :meth:`save`; IncompatibleFormatError (retrain) for another format."""
        return engine_files.load_into(cls(), Path(folder))


def holdout_last(ds: Dataset, max_users: int, seed: int = 0) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """Hold out the last interaction of (up to ``max_users`` sampled) users with 3+ interactions."""
    inter = ds.interactions
    u = inter[C.USER_IDX].to_numpy()
    from_end = inter.groupby(C.USER_IDX, sort=False).cumcount(ascending=False).to_numpy()
    count = np.bincount(u, minlength=ds.n_users)[u]
    eligible = np.unique(u[count >= 3])
    rng = np.random.default_rng(seed)
    if len(eligible) > max_users:
        eligible = np.sort(rng.choice(eligible, max_users, replace=False))
    held = (from_end == 0) & np.isin(u, eligible)
    tgt = inter.loc[held, [C.USER_IDX, C.ITEM_IDX]].sort_values(C.USER_IDX)
    return ds.with_interactions(inter[~held]), tgt[C.USER_IDX].to_numpy(), tgt[C.ITEM_IDX].to_numpy()


def _rows(m: sp.csr_matrix | Sequence[np.ndarray] | None, n: int) -> list[np.ndarray]:
    """The column indices of each row of a sparse mask (empty rows without one); a list of index
    arrays (a request's seen items: building a sparse matrix for one row cost 0.2 ms) passes through."""
    if isinstance(m, Sequence):
        return [np.asarray(r, dtype=np.int64) for r in m]
    if m is None or not m.nnz:
        return [np.zeros(0, np.int64)] * n
    csr = m.tocsr()
    return [csr.indices[csr.indptr[r] : csr.indptr[r + 1]].astype(np.int64) for r in range(n)]


def _history_mask(h: Histories, n_items: int, targets: np.ndarray) -> sp.csr_matrix:
    """Seen items per history, never the row's target (the evaluation protocol's exclusion)."""
    m = h.matrix(n_items).tolil()
    for r, t in enumerate(targets):
        m[r, t] = 0
    out = m.tocsr()
    out.eliminate_zeros()
    return out


def item_side(ds: Dataset, pop: PopularModel, vectors: np.ndarray | None) -> cand.ItemSide:
    """What the candidate features read about each item of ``ds``: popularity, trend, category, brand, text vector."""
    brands = ds.products[C.BRAND] if C.BRAND in ds.products.columns else pd.Series([None] * ds.n_items)
    brand_codes, _ = pd.factorize(
        pd.Series(brands, dtype=object).map(lambda b: b if isinstance(b, str) and b else None)
    )
    return cand.ItemSide(
        popularity=pop.counts,
        trend=pop.trend,
        category=pop.category,
        brand=np.asarray(brand_codes, np.int64),
        vectors=None if vectors is None else np.ascontiguousarray(vectors, np.float32),
    )


__all__ = ["ENGINE_FORMAT", "Engine", "EngineConfig", "holdout_last", "top_category"]
