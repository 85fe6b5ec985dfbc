"""Collaborative affinity for search personalisation: how strongly the crowd links a candidate product
to what this user touched lately.

The served recommendation version already learned item -> item links (co-visitation, item-kNN, EASE:
a sparse items x items matrix ``sim`` over the version's item ids). For one search, the rows of the
user's recent items are summed with recency and event-type weights, and only the candidates' entries
of that sparse sum are looked up, so a query never builds a dense catalog-wide score vector. Scores
are divided by the user's strongest link, so the boost lies in [0, 1] whatever the model's scale.

Search asks :mod:`shopsense.versions` for the served version and loads its item-item model with
the model's own loader (the recommendation engine owns those files). Without a trained version,
search personalises on content alone.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

from shopsense import versions
from shopsense.exceptions import ShopsenseError
from shopsense.models.item_item import weighted_row_sum

log = logging.getLogger("shopsense.search")

#: item-item sources searched for in a model version, best first (co-visitation reacts to sessions)
DEFAULT_SOURCES = ("covisit", "itemknn", "ease")


class Links(NamedTuple):
    """One sparse row over the link matrix's items: sorted column ``indices`` and their ``data``."""

    indices: np.ndarray
    data: np.ndarray

    @property
    def nnz(self) -> int:
        return len(self.indices)


class ItemAffinity:
    """A sparse item x item link matrix with its external item ids.

    >>> aff = ItemAffinity(sim, ["p1", "p2", "p3"], source="covisit")
    >>> aff.scores(["p1"], [1.0], ["p2", "p3"])
    """

    def __init__(self, sim: sp.spmatrix, item_ids: Sequence[str] | np.ndarray, source: str = "") -> None:
        ids = np.asarray(item_ids, dtype=object)
        if sim.shape[0] != len(ids) or sim.shape[1] != len(ids):
            raise ValueError(f"link matrix is {sim.shape}, id map has {len(ids)} items")
        m = sp.csr_matrix(sim, dtype=np.float32)
        m.sort_indices()
        self.sim = m
        self.item_ids = ids
        self.index = {str(i): n for n, i in enumerate(ids)}
        self.source = source

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_model(cls, model: Any, item_ids: Any, source: str = "") -> ItemAffinity:
        """From any fitted item-item model (an object with a sparse ``sim``) and its id map
        (an :class:`~shopsense.data.idmap.IdMap` or a sequence of external ids)."""
        sim = getattr(model, "sim", None)
        if sim is None:
            raise ValueError(f"{type(model).__name__} has no item x item matrix (sim)")
        ids = getattr(item_ids, "external_ids", item_ids)
        n = sim.shape[0]
        ids = np.asarray(ids, dtype=object)[:n]  # items added after the model was fitted have no row
        return cls(sim, ids, source or str(getattr(model, "name", "")))

    def rows_for(self, item_ids: Sequence[str] | np.ndarray) -> np.ndarray:
        """The matrix rows of external ids (-1 for ids the model does not know)."""
        return np.fromiter((self.index.get(str(i), -1) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def user_links(self, history: Sequence[str], weights: Sequence[float] | np.ndarray) -> Links:
        """``sum_h w_h * sim[h]``: the history's weighted neighbours, as one sparse row."""
        rows = self.rows_for(history)
        w = np.asarray(weights, dtype=np.float32)
        ok = rows >= 0
        return Links(*weighted_row_sum(self.sim, rows[ok], w[ok]))

    def scores(
        self, history: Sequence[str], weights: Sequence[float] | np.ndarray, candidates: Sequence[str] | np.ndarray
    ) -> np.ndarray:
        """Affinity of each candidate to the history, in [0, 1] (1 = the user's strongest link)."""
        return self.lookup(self.user_links(history, weights), self.rows_for(candidates))

    @staticmethod
    def lookup(links: Links, rows: np.ndarray) -> np.ndarray:
        """Entries of a sparse row at matrix ``rows`` (-1 -> 0), divided by the row's largest entry."""
        out = np.zeros(len(rows), dtype=np.float32)
        if links.nnz == 0 or not len(rows):
            return out
        idx, vals = links.indices, links.data
        pos = np.searchsorted(idx, rows)
        pos = np.minimum(pos, len(idx) - 1)
        hit = (rows >= 0) & (idx[pos] == rows)
        out[hit] = vals[pos[hit]]
        top = float(vals.max())
        return np.clip(out / top, 0.0, 1.0) if top > 0 else np.zeros_like(out)


def load_item_affinity(folder: str | Path, sources: Sequence[str] = DEFAULT_SOURCES) -> ItemAffinity | None:
    """The first item-item model of ``sources`` that the version in ``folder`` holds, read by the
    model's own loader (:func:`shopsense.versions.load_model`), with the version's item ids; ``None``
    when the version has none or it does not load. Only the item-item models' modules are imported
    (not torch, which the sequential model needs)."""
    folder = Path(folder)
    for name in sources:
        if not versions.has_model(folder, name):
            continue
        try:
            return ItemAffinity.from_model(versions.load_model(folder, name), versions.items(folder), name)
        except Exception as e:  # a version search cannot read only costs the collaborative boost
            log.warning("collaborative affinity: cannot load %s of %s: %s", name, folder, e)
    return None


def from_recommender(recommender: Any, sources: Sequence[str] = DEFAULT_SOURCES) -> ItemAffinity | None:
    """The item-item links an already loaded recommender holds (``engine.models`` + ``items``), if any."""
    models = getattr(getattr(recommender, "engine", None), "models", None) or {}
    items = getattr(recommender, "items", None)
    if items is None:
        return None
    for name in sources:
        model = models.get(name)
        if model is not None and getattr(model, "sim", None) is not None:
            try:
                return ItemAffinity.from_model(model, items, name)
            except ValueError as e:
                log.warning("collaborative affinity: %s", e)
    return None


def active_affinity(store: Any, settings: Any, sources: Sequence[str] = DEFAULT_SOURCES) -> ItemAffinity | None:
    """Item-item links of the served version (:func:`shopsense.versions.served_version`), or ``None``
    when nothing is trained or the version cannot be read (search then personalises on content)."""
    served = versions.served_version(store, settings.home)
    if served is None or served.folder is None:
        return None
    try:
        versions.read_manifest(served.folder)
    except ShopsenseError as e:
        log.warning("collaborative affinity: model version %s not used: %s", served.version, e)
        return None
    return load_item_affinity(served.folder, sources)
