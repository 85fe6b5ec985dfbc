"""The products a served version can show: the model's items, then the products added since training.

Indices ``0..n_model-1`` are the model's items (what its sources score); indices from ``n_model`` on
are products the model has never seen. Both sit in one rules :class:`~shopsense.ranking.rules.Catalog`,
so :func:`~shopsense.ranking.rules.allowed` is the only filter, new products included.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.idmap import IdMap
from shopsense.index.vector import VectorIndex
from shopsense.models.popular import PopularModel
from shopsense.ranking.rules import Catalog

COLD_INDEX_MIN = 5_000  # products without events beyond which the new-product slot searches an index


class ServedCatalog:
    """Ids, rule columns, text vectors and the new-product pool over model items + new products."""

    def __init__(
        self,
        products: pd.DataFrame,
        items: IdMap,
        vectors: np.ndarray | None,
        popular: PopularModel | None,
        encode_new: Callable[[pd.DataFrame], np.ndarray | None],
    ) -> None:
        model_ids = np.asarray(items.external_ids, dtype=object)
        aligned = products.set_index(C.ITEM).reindex(model_ids).reset_index(names=C.ITEM)
        new = products[~products[C.ITEM].isin(set(model_ids))].reset_index(drop=True)
        self.n_model = len(model_ids)
        self.ids = np.concatenate([model_ids, new[C.ITEM].to_numpy(dtype=object)])
        self.rules = Catalog(pd.concat([aligned, new], ignore_index=True) if len(new) else aligned)
        self.vectors = vectors  # the model items' text vectors, then the new products'
        if vectors is not None and len(new):
            fresh = encode_new(new)  # None without real text: zero vectors match nothing
            fresh = np.zeros((len(new), vectors.shape[1]), np.float32) if fresh is None else fresh
            self.vectors = np.vstack([vectors, fresh.astype(np.float32)])
        counts = popular.counts if popular is not None else np.ones(self.n_model)
        # the new-product pool: model items without events, and products the model has never seen
        self.cold = np.concatenate([np.flatnonzero(counts == 0), self.n_model + np.arange(len(new))]).astype(np.int64)
        self.cold_vectors: np.ndarray | None = None
        self.cold_index: VectorIndex | None = None
        if self.vectors is not None and len(self.cold):
            # one contiguous block: gathering the rows of every cold item per request costs milliseconds
            self.cold_vectors = np.ascontiguousarray(self.vectors[self.cold])
            if len(self.cold) >= COLD_INDEX_MIN:
                # one slot wants a close match, not the exact best: a short graph walk (ef 32) will do
                self.cold_index = VectorIndex(exact_threshold=COLD_INDEX_MIN, ef_construction=100, ef_search=32).build(
                    self.cold_vectors
                )

    @property
    def titles(self) -> np.ndarray:
        return self.rules.title

    def __len__(self) -> int:
        return len(self.ids)
