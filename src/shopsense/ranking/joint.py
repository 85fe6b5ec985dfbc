"""One learned ranker for every surface: the recommendation lists and search.

Its table has the recommendation candidates' columns (:mod:`shopsense.ranking.candidates`), then the
search engine's query-product features (``shopsense.search.features.FEATURES``, prefixed ``q_``; the
search engine hands them in, since ranking sits below search in the layers), then ``on_search``. A recommendation row fills the first part; a search row fills the
query-product part, ``on_search`` and, from the shopper's history before the search, the candidate
columns that need no source (:func:`~shopsense.ranking.candidates.side_columns`: category and brand
affinity, text similarity to the last items, popularity and trend). What a surface does not compute
is missing (NaN), in training and serving alike, and LightGBM learns where a missing value goes. The
trees split the shared columns on the rows of both surfaces, so what a search click says about a
shopper's history teaches the recommendation lists, and the reverse.

The query-product ``affinity`` column stays missing: search adds its personal boosts after ranking
(:func:`~shopsense.search.personal.personalise`), and a logged list does not record the profile it
was computed from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

from shopsense.data.dataset import Dataset
from shopsense.data.idmap import IdMap
from shopsense.models.base import Histories
from shopsense.ranking.candidates import ItemSide, side_columns, side_names
from shopsense.ranking.ranker import LambdaRanker

if TYPE_CHECKING:
    from shopsense.ranking.outcomes import ShownLists

Q_PREFIX = "q_"
ON_SEARCH = "on_search"
#: query-product features a logged list cannot reproduce (see the module docstring)
UNRECORDED = ("affinity",)
#: a shopper's latest items the side features of a search row read, in training and serving alike
#: (search reads this many recent events per request: ``[search] personal_history``'s default)
HISTORY_LIMIT = 50


class SearchFeaturer(Protocol):
    """What the search engine hands training: its feature names, and for ``(query, item ids)`` the
    query-product features of those products as it retrieves them now and the score it serves them
    with (NaN rows: not retrieved)."""

    names: Sequence[str]

    def __call__(self, query: str, item_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]: ...


def joint_names(rec_names: Sequence[str], search_names: Sequence[str]) -> list[str]:
    """The joint table's columns for a recommendation table with ``rec_names``."""
    return [*rec_names, *(Q_PREFIX + f for f in search_names), ON_SEARCH]


def is_joint(names: Sequence[str]) -> bool:
    return len(names) > 0 and names[-1] == ON_SEARCH


def split_names(names: Sequence[str]) -> tuple[list[str], list[str]]:
    """A joint table's recommendation columns and search feature names (without ``q_``)."""
    if not is_joint(names):
        return list(names), []
    first = next(i for i, n in enumerate(names) if n.startswith(Q_PREFIX))
    return list(names[:first]), [n[len(Q_PREFIX) :] for n in names[first:-1]]


def side_block(history: np.ndarray, items: np.ndarray, side: ItemSide) -> np.ndarray:
    """:func:`~shopsense.ranking.candidates.side_columns` of ``items`` (item indices; -1: a product
    the version does not know, whose row stays missing) against ``history``."""
    out = np.full((len(items), len(side_names(side))), np.nan, np.float32)
    known = items >= 0
    if known.any():
        out[known] = np.stack(side_columns(history, items[known], side), axis=1)
    return out


def side_start(rec_names: Sequence[str], side: ItemSide) -> int:
    """Where the side columns begin among the recommendation columns (the outcome ranker's exposure
    columns, :mod:`shopsense.ranking.exposure`, may follow them)."""
    return list(rec_names).index(side_names(side)[0])


def search_rows(
    n_rec: int, side_at: int, search_names: Sequence[str], search_x: np.ndarray, side_x: np.ndarray
) -> np.ndarray:
    """Joint rows of search candidates: their query-product features ``search_x`` (columns
    ``search_names``) and the history's side features ``side_x`` (from column ``side_at`` of the
    ``n_rec`` recommendation columns; the rest of those stay missing)."""
    n_q = len(search_names)
    out = np.full((len(search_x), n_rec + n_q + 1), np.nan, np.float32)
    out[:, side_at : side_at + side_x.shape[1]] = side_x
    recorded = np.array([f not in UNRECORDED for f in search_names], bool)
    out[:, n_rec : n_rec + n_q][:, recorded] = search_x[:, recorded]
    out[:, -1] = 1.0
    return out


@dataclass
class SearchLists:
    """Logged search lists as the joint ranker sees them (rows of products search retrieves now)."""

    lists: ShownLists
    features: list[np.ndarray]  # joint rows per list
    served: list[np.ndarray]  # per row, the score search served it with without the joint ranker

    def __len__(self) -> int:
        return len(self.lists)


def describe_search(
    lists: ShownLists, ds: Dataset, side: ItemSide, rec_names: Sequence[str], featurer: SearchFeaturer
) -> SearchLists:
    """Each logged search list's rows: the query-product features of the products it showed (those
    search no longer retrieves are left out) and the side features from the shopper's events before
    it (none for an anonymous shopper). Lists left with fewer than two rows or no outcome are dropped."""
    assert lists.queries is not None
    known = np.flatnonzero(lists.users >= 0)
    full = Histories.from_dataset(ds, lists.users[known])
    assert full.timestamps is not None
    history_of = {int(r): n for n, r in enumerate(known)}
    ids = np.asarray(ds.items.external_ids, dtype=object)
    side_at = side_start(rec_names, side)
    keep, feats, served, shown = [], [], [], []
    for r in range(len(lists)):
        n = history_of.get(r)
        if n is None:
            hist = np.zeros(0, np.int64)
        else:
            cut = int(np.searchsorted(full.timestamps[n], lists.times[r], side="left"))
            hist = full.items[n][max(0, cut - HISTORY_LIMIT) : cut]
        items = lists.items[r]
        x, s = featurer(lists.queries[r], [str(i) for i in ids[items]])
        found = ~np.isnan(s)
        if found.sum() < 2 or not np.any(lists.grades[r][found] > 0):
            continue
        keep.append(r)
        shown.append(found)
        side_x = side_block(hist, items[found], side)
        feats.append(search_rows(len(rec_names), side_at, featurer.names, x[found], side_x))
        served.append(s[found].astype(np.float32))
    kept = lists.subset(np.array(keep, np.int64))
    kept.items = [i[f] for i, f in zip(kept.items, shown, strict=True)]
    kept.positions = [p[f] for p, f in zip(kept.positions, shown, strict=True)]
    kept.grades = [g[f] for g, f in zip(kept.grades, shown, strict=True)]
    return SearchLists(kept, feats, served)


class SearchRanker:
    """The joint ranker serving search: joint rows of a query's candidates for one shopper, scored.

    ``rows`` are the search index's product rows (``row_ids``: their item ids); ``items`` is the
    version's id map."""

    def __init__(self, ranker: LambdaRanker, side: ItemSide, items: IdMap, row_ids: Sequence[str] | np.ndarray) -> None:
        if not is_joint(ranker.names):
            raise ValueError("this ranker was not trained on search lists")
        self.ranker = ranker
        self.side = side
        rec, self.search_names = split_names(ranker.names)
        self.n_rec = len(rec)
        self.side_at = side_start(rec, side)
        self.items = items
        # the version's item index per search row (-1: a product added since it was trained)
        self.item_of_row = items.to_internal(np.asarray(row_ids, dtype=object), strict=False).astype(np.int64)

    def history(self, item_ids: Sequence[str] | np.ndarray | None) -> np.ndarray:
        """The version's indices of a shopper's items (oldest first; unknown ones left out)."""
        if item_ids is None or not len(item_ids):
            return np.zeros(0, np.int64)
        idx = self.items.to_internal(np.asarray(item_ids, dtype=object)[-HISTORY_LIMIT:], strict=False)
        return idx[idx >= 0].astype(np.int64)

    def score(self, search_x: np.ndarray, rows: np.ndarray, history: np.ndarray) -> np.ndarray:
        """Scores of the candidates at index ``rows`` with features ``search_x`` for a shopper whose
        items (version indices, oldest first) are ``history``."""
        side_x = side_block(history, self.item_of_row[rows], self.side)
        return self.ranker.predict(search_rows(self.n_rec, self.side_at, self.search_names, search_x, side_x))
