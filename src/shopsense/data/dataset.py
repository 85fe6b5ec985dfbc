"""From the knowledge store to what models train on.

A :class:`Dataset` owns the id maps (users and the API see external string ids, models see
integers 0..n-1), the chronological interaction log with weights, and the item metadata aligned
with the item map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from shopsense import columns as C
from shopsense.config import EventWeights
from shopsense.data.history import event_weights, item_event_mask, query_event_mask
from shopsense.data.idmap import IdMap
from shopsense.data.products import normalize_products
from shopsense.store import KnowledgeStore


@dataclass
class Dataset:
    """Interactions (``user_idx``, ``item_idx``, ``weight``, ``timestamp``, ``event_type``) in
    chronological order (ties keep input order), plus id maps and item metadata.

    ``items`` covers the whole catalog, so products without events (cold items) have an index too.
    ``products`` is aligned with ``items``: row ``i`` describes item index ``i`` (every product column,
    missing values as :func:`~shopsense.data.products.normalize_products` spells them).
    """

    users: IdMap
    items: IdMap
    interactions: pd.DataFrame
    products: pd.DataFrame
    queries: pd.DataFrame | None = None  # search events: user_idx, query, timestamp

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_store(cls, store: KnowledgeStore, weights: EventWeights | None = None) -> Dataset:
        """Build the dataset from the store: every product, and the events of every shopper who has
        not opted out of personalisation (theirs shape no one's lists)."""
        return cls.from_frames(store.events(include_opted_out=False), store.products(), weights)

    @classmethod
    def from_frames(
        cls,
        events: pd.DataFrame,
        products: pd.DataFrame | None = None,
        weights: EventWeights | None = None,
    ) -> Dataset:
        """Build from an events frame (chronological or not) and an optional catalog frame."""
        weights = weights or EventWeights()
        ev = events.reset_index(drop=True)
        ev = ev.iloc[np.argsort(ev[C.TIMESTAMP].to_numpy(dtype=float), kind="stable")]
        if products is None:
            products = pd.DataFrame({C.ITEM: pd.Series(dtype=object), C.TITLE: pd.Series(dtype=object)})
        item_ev = ev[item_event_mask(ev[C.EVENT_TYPE], ev[C.ITEM])]
        items = IdMap(np.asarray(products[C.ITEM], dtype=object)).extended(item_ev[C.ITEM])
        users = IdMap.from_values(ev[C.USER])
        w = event_weights(item_ev[C.EVENT_TYPE], weights.as_dict())
        inter = pd.DataFrame(
            {
                C.USER_IDX: users.to_internal(item_ev[C.USER]),
                C.ITEM_IDX: items.to_internal(item_ev[C.ITEM]),
                C.WEIGHT: w,
                C.TIMESTAMP: item_ev[C.TIMESTAMP].to_numpy(dtype=float),
                C.EVENT_TYPE: item_ev[C.EVENT_TYPE].to_numpy(dtype=object),
            }
        )
        aligned = products.set_index(C.ITEM).reindex(items.external_ids).reset_index(names=C.ITEM)
        aligned = normalize_products(aligned)  # items with events but no product row: missing, not NaN
        queries = None
        search = ev[query_event_mask(ev[C.EVENT_TYPE], ev[C.QUERY])] if C.QUERY in ev.columns else ev.iloc[:0]
        if len(search):
            queries = pd.DataFrame(
                {
                    C.USER_IDX: users.to_internal(search[C.USER]),
                    C.QUERY: search[C.QUERY].to_numpy(dtype=object),
                    C.TIMESTAMP: search[C.TIMESTAMP].to_numpy(dtype=float),
                }
            )
        return cls(
            users=users, items=items, interactions=inter.reset_index(drop=True), products=aligned, queries=queries
        )

    def with_interactions(self, interactions: pd.DataFrame) -> Dataset:
        """The same id maps and catalog over another interaction subset (e.g. a training split)."""
        return Dataset(self.users, self.items, interactions.reset_index(drop=True), self.products, self.queries)

    # ------------------------------------------------------------------ views
    def user_item_matrix(self, *, weighted: bool = True, binary: bool = False) -> sp.csr_matrix:
        """Users x items sparse matrix; repeated interactions add up (or are 1 with ``binary``)."""
        df = self.interactions
        data = df[C.WEIGHT].to_numpy(dtype=np.float32) if weighted else np.ones(len(df), dtype=np.float32)
        m = sp.csr_matrix(
            (data, (df[C.USER_IDX].to_numpy(), df[C.ITEM_IDX].to_numpy())),
            shape=(self.n_users, self.n_items),
            dtype=np.float32,
        )
        m.sum_duplicates()
        if binary:
            m.data[:] = 1.0
        m.eliminate_zeros()
        return m

    def sequences(self) -> list[np.ndarray]:
        """Per-user chronological item-index sequences (index = user_idx; empty for users without items)."""
        df = self.interactions
        order = np.argsort(df[C.USER_IDX].to_numpy(), kind="stable")  # stable: keeps chronology inside a user
        u = df[C.USER_IDX].to_numpy()[order]
        it = df[C.ITEM_IDX].to_numpy()[order]
        bounds = np.searchsorted(u, np.arange(self.n_users + 1))
        return [it[bounds[i] : bounds[i + 1]] for i in range(self.n_users)]

    def item_popularity(self) -> np.ndarray:
        """Number of interactions per item index."""
        return np.bincount(self.interactions[C.ITEM_IDX].to_numpy(), minlength=self.n_items)
