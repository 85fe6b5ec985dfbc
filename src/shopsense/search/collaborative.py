"""Collaborative affinity for search personalisation: how strongly the crowd links a candidate product
to what this user touched lately.

The served recommendation version already learned item -> item links (co-visitation, item-kNN, EASE:
a sparse items x items matrix ``sim`` and the ``items.json`` id map). For one search, the rows of the
user's recent items are summed with recency and event-type weights, and only the candidates' entries
of that sparse sum are looked up, so a query never builds a dense catalog-wide score vector. Scores
are divided by the user's strongest link, so the boost lies in [0, 1] whatever the model's scale.

Search only reads these artifacts (the recommendation engine owns them). Without a trained version,
search personalises on content alone.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp

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
    """The first item-item model of ``sources`` found in a model version folder (``engine/<name>``
    and ``items.json``), or ``None`` when the version has none or it does not load.

    The matrix is read from the model's plain files (``params.json`` + ``sim_*.npy``), which keeps
    the recommendation models (and torch, which one of them needs) out of a search-only process."""
    folder = Path(folder)
    if not (folder / "items.json").exists():
        return None
    for name in sources:
        path = folder / "engine" / name
        if not (path / "params.json").exists():
            continue
        try:
            return _read_item_item(path, folder / "items.json", name)
        except Exception as e:  # a version search cannot read only costs the collaborative boost
            log.warning("collaborative affinity: cannot read %s: %s", path, e)
    return None


def _read_item_item(path: Path, items_json: Path, name: str) -> ItemAffinity:
    params = json.loads((path / "params.json").read_text(encoding="utf-8"))
    if params.get("model") != name:
        raise ValueError(f"holds a {params.get('model')!r} model, not {name!r}")
    n = int(params["n_items"])
    arrays = {k: np.load(path / f"sim_{k}.npy", allow_pickle=False) for k in ("data", "indices", "indptr")}
    sim = sp.csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=(n, n))
    ids = json.loads(items_json.read_text(encoding="utf-8"))
    if len(ids) < n:
        raise ValueError(f"{items_json} has {len(ids)} ids for a {n}-item model")
    return ItemAffinity(sim, [str(i) for i in ids[:n]], name)


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
    """Item-item links of the store's active model version, or ``None`` when nothing is trained."""
    version = store.active_version()
    if version is None:
        return None
    versions = store.versions()
    row = versions[versions["version"] == version]
    path = row["path"].iloc[0] if len(row) else None
    from shopsense.versions import version_folder  # the same rule as the recommender

    folder = version_folder(settings.home, version, path)
    return load_item_affinity(folder, sources)
