"""The new-product slot: one place in a list for a product nobody has interacted with yet.

The candidates are the served catalog's cold pool (model items without events and products added
since training); the one whose text best matches the shopper's profile takes the slot if the rules
allow it (the same :func:`~shopsense.ranking.rules.allowed` as every other item) and it is similar
enough (``[online] cold_min_similarity``).
"""

from __future__ import annotations

import numpy as np

from shopsense.ranking import explain as X
from shopsense.ranking.rules import Filters, allowed
from shopsense.recommend.catalog import ServedCatalog
from shopsense.topk import top_k

COLD_CANDIDATES = 20  # closest new products looked at (the first the rules allow wins)


def best_new_product(
    catalog: ServedCatalog, profile: np.ndarray, filters: Filters, seen: set[int]
) -> tuple[int, float] | None:
    """The catalog index and similarity of the allowed new product closest to ``profile``."""
    if catalog.cold_vectors is None or not profile.any():
        return None
    if catalog.cold_index is not None:
        top, sims = catalog.cold_index.search_positions(profile, COLD_CANDIDATES)
    else:
        all_sims = catalog.cold_vectors @ profile
        top = top_k(all_sims, COLD_CANDIDATES)[0]
        sims = all_sims[top]
    ok = np.flatnonzero(allowed(catalog.cold[top], catalog.rules, filters, seen))
    if not len(ok):
        return None
    j = int(ok[0])
    return int(catalog.cold[top[j]]), float(sims[j])


def new_product_reason(catalog: ServedCatalog, item: int, history: np.ndarray, event_types: list[str]) -> str:
    """``new: similar to “...”`` (the closest item of the history) or ``new: matches your interests``."""
    return X.explain("cold", item, history, event_types, catalog.titles, vectors=catalog.vectors)
