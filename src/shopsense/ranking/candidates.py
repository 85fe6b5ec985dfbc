"""Candidates from every source, merged, and the features the ranker sees per (user, item).

Each source (a fitted model) proposes its top ``per_source`` items per history (never excluded ones,
see :class:`~shopsense.models.base.Proposal`); the union is the candidate set. Features per candidate:
each source's score, that score standardised over the catalog and its rank (``per_source`` when
outside the source's top), popularity and trend, history length, content similarity to the last items, and
category / brand affinity with the history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from shopsense.models.base import Histories, Proposal


@dataclass
class ItemSide:
    """Per-item data the features read (aligned with item indices)."""

    popularity: np.ndarray  # training interaction counts
    trend: np.ndarray
    category: np.ndarray  # int code per item, -1 = none
    brand: np.ndarray  # int code per item, -1 = none
    vectors: np.ndarray | None = None  # L2-normalised text vectors


@dataclass
class Candidates:
    """Merged candidates of a batch: ``items[r]`` and ``features[r]`` for row ``r`` of the batch."""

    items: list[np.ndarray]
    features: list[np.ndarray]
    names: list[str]


def source_tops(scores: np.ndarray, n: int) -> np.ndarray:
    """Indices of the ``n`` best columns per row (unordered)."""
    n = min(n, scores.shape[1])
    if n >= scores.shape[1]:
        return np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    return np.argpartition(-scores, n - 1, axis=1)[:, :n]


def feature_names(sources: list[str], side: ItemSide) -> list[str]:
    names = []
    for s in sources:
        names += [f"{s}_score", f"{s}_z", f"{s}_rank"]
    return names + side_names(side)


def side_names(side: ItemSide) -> list[str]:
    """The features of an item against a history that need no source (:func:`side_columns`)."""
    names = ["log_pop", "trend", "hist_len", "cold_item", "cat_share", "cat_last", "brand_share"]
    if side.vectors is not None:
        names += ["sim_last", "sim_last3_max"]
    return names


def side_columns(history: np.ndarray, cand: np.ndarray, side: ItemSide) -> list[np.ndarray]:
    """Per candidate item, :func:`side_names`' features against ``history`` (item indices, oldest
    first): popularity and trend, history length, category and brand affinity, text similarity to
    the last items. Search ranks with these too (:mod:`shopsense.ranking.joint`)."""
    h = history
    hist_cats = side.category[h] if len(h) else np.zeros(0, np.int64)
    hist_brands = side.brand[h] if len(h) else np.zeros(0, np.int64)
    cc, bc = side.category[cand], side.brand[cand]
    cat_last = (cc == hist_cats[-1]) & (cc >= 0) if len(h) else np.zeros(len(cand), bool)
    cols = [
        np.log1p(side.popularity[cand].astype(np.float32)),
        side.trend[cand].astype(np.float32),
        np.full(len(cand), len(h), np.float32),
        (side.popularity[cand] == 0).astype(np.float32),
        _share(hist_cats, cc),
        cat_last.astype(np.float32),
        _share(hist_brands, bc),
    ]
    if side.vectors is not None:
        if len(h):
            sims = side.vectors[cand] @ side.vectors[h[-3:]].T
            cols += [sims[:, -1], sims.max(axis=1)]
        else:
            cols += [np.zeros(len(cand), np.float32)] * 2
    return cols


def build(
    histories: Histories,
    proposals: list[dict[str, Proposal]],
    side: ItemSide,
    per_source: int,
    must_include: np.ndarray | None = None,
    only: list[np.ndarray] | None = None,
) -> Candidates:
    """Candidates and features for each history from its sources' proposals (excluded items are never
    proposed). ``must_include[r]`` (training only) adds an item to row r; ``only[r]`` (training on
    logged lists) replaces row r's candidates by those items, in that order."""
    names = list(proposals[0]) if proposals else []
    out_items, out_feats = [], []
    for r, props in enumerate(proposals):
        cand = merge(props.values()) if only is None else np.asarray(only[r], np.int64)
        if must_include is not None and must_include[r] >= 0:
            cand = np.union1d(cand, [must_include[r]])
        cols = []
        for s in names:
            p = props[s]
            sc = p.score_of(cand).astype(np.float32)
            # rank among the source's own top list (per_source when outside it)
            desc = np.asarray(p.scores[:per_source], np.float32)
            rank = np.searchsorted(-desc, -sc, side="left").astype(np.float32)
            rank[rank >= len(desc)] = per_source
            cols += [sc, (sc - p.mean) / (p.std + 1e-9), rank]
        cols += side_columns(histories.items[r], cand, side)
        out_items.append(cand.astype(np.int64))
        out_feats.append(
            np.stack(cols, axis=1).astype(np.float32) if len(cand) else np.zeros((0, len(cols)), np.float32)
        )
    return Candidates(out_items, out_feats, feature_names(names, side))


def merge(proposals: Iterable[Proposal]) -> np.ndarray:
    """The union of the proposals' items, sorted."""
    parts = [p.items for p in proposals]
    return np.unique(np.concatenate(parts)).astype(np.int64) if parts else np.zeros(0, np.int64)


def _share(hist_codes: np.ndarray, cand_codes: np.ndarray) -> np.ndarray:
    """Fraction of the history sharing each candidate's code (0 for unknown codes)."""
    if not len(hist_codes):
        return np.zeros(len(cand_codes), np.float32)
    known = hist_codes[hist_codes >= 0]
    if not len(known):
        return np.zeros(len(cand_codes), np.float32)
    vals, counts = np.unique(known, return_counts=True)
    pos = np.searchsorted(vals, cand_codes)
    pos = np.clip(pos, 0, len(vals) - 1)
    hit = (vals[pos] == cand_codes) & (cand_codes >= 0)
    return np.where(hit, counts[pos] / len(hist_codes), 0.0).astype(np.float32)
