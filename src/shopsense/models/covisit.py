"""Co-visitation: item -> item counts from items touched close together in each user's sequence.

A pair (a, b) counts when b follows a within ``window`` steps and ``time_window_s`` seconds; the
count is weighted by b's event type (view -> purchase counts more than view -> view), by closeness
(``1 / distance ** distance_power``) and, for b before a, by ``backward_weight``. Counts are
normalised by the items' popularity (``pop_a ** alpha * pop_b ** (1 - alpha)``) and the strongest
``neighbors`` per item kept.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.engine_config import CoVisitConfig
from shopsense.models.item_item import ItemItemModel, prune_rows


class CoVisitModel(ItemItemModel):
    """Session/sequence co-visitation with time window and event-type weights."""

    name = "covisit"
    config_class = CoVisitConfig
    config: CoVisitConfig

    def _fit(self, ds: Dataset, item_vectors: np.ndarray | None) -> None:
        self.sim = self.counts(ds)

    def counts(self, ds: Dataset, *, normalise: bool = True) -> sp.csr_matrix:
        """The (normalised, pruned) co-visitation matrix of a dataset."""
        cfg = self.config
        df = ds.interactions
        order = np.lexsort((df[C.TIMESTAMP].to_numpy(), df[C.USER_IDX].to_numpy()))  # by user, then time
        u = df[C.USER_IDX].to_numpy()[order]
        it = df[C.ITEM_IDX].to_numpy()[order]
        ts = df[C.TIMESTAMP].to_numpy(dtype=np.float64)[order]
        w = df[C.WEIGHT].to_numpy(dtype=np.float64)[order]
        w = w / w.max() if len(w) and w.max() > 0 else np.ones(len(w))
        n = ds.n_items
        # one distance at a time, added into the running sum: holding every distance's pairs at once
        # took about 5 GB at 10M events (docs/deploy.md, measured growth); this holds one distance's
        m = sp.csr_matrix((n, n), dtype=np.float64)
        for d in range(1, cfg.window + 1):
            ok = u[d:] == u[:-d]
            ok &= it[d:] != it[:-d]
            if cfg.time_window_s is not None:
                ok &= (ts[d:] - ts[:-d]) <= cfg.time_window_s
            a, b = it[:-d][ok], it[d:][ok]
            closeness = 1.0 / d**cfg.distance_power
            rows, cols, vals = [a], [b], [closeness * w[d:][ok]]  # a -> b, weighted by what b was
            if cfg.backward_weight > 0:
                rows.append(b)
                cols.append(a)
                vals.append(cfg.backward_weight * closeness * w[:-d][ok])
            del ok
            part = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n), dtype=np.float64
            )
            m = m + part if m.nnz else part
        m.sum_duplicates()
        if normalise:
            pop = np.bincount(it, minlength=n).astype(np.float64) + 1.0
            coo = m.tocoo()
            coo.data = coo.data / (pop[coo.row] ** cfg.alpha * pop[coo.col] ** (1 - cfg.alpha))
            m = coo.tocsr()
        return prune_rows(m.astype(np.float32), cfg.neighbors)
