"""Similar products: "what is like this product", with a reason for each result.

Candidates come from the vector index (nearest product texts, filters applied inside the search) and
from the relation graph (the most similar products of the same brand and category). The score is the
cosine of the product vectors plus small bonuses for a shared brand and category, so among equally
similar products the ones a shopper would recognise as alternatives come first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.index.catalog import CatalogIndex

#: cosine above which the text is called "similar"; below, results are only loosely related
SIMILAR_TEXT = 0.5


@dataclass
class SimilarItem:
    """One similar product: id, score (cosine + bonuses), a reason, and the parts of that reason."""

    item_id: str
    score: float
    reason: str
    reasons: list[str] = field(default_factory=list)
    cosine: float = 0.0
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def similar(
    item_id: str,
    k: int = 10,
    filters: Mapping[str, Any] | None = None,
    *,
    catalog: CatalogIndex,
    brand_bonus: float = 0.03,
    category_bonus: float = 0.03,
) -> list[SimilarItem]:
    """The ``k`` products most like ``item_id`` (never itself), best first.

    ``filters``: see :func:`shopsense.index.catalog.catalog_mask` (category, brand, available,
    min_price, max_price, item_ids, exclude). Raises ``UnknownItemError`` for an unknown id.
    """
    if k < 1:
        raise ValueError("k must be at least 1")
    row = catalog.row(item_id)
    mask = catalog.mask(filters)
    mask[row] = False
    if not mask.any():
        return []
    cos: dict[int, float] = {}
    hits, scores = catalog.index.search(catalog.vectors[row], min(3 * k + 10, int(mask.sum())), allowed=mask)
    for i, s in zip(hits[0], scores[0], strict=True):
        cos[catalog.row(i)] = float(s)
    if catalog.relations is not None:
        rel = catalog.relations
        rrow = rel.row(item_id)
        for kind in ("brand", "category"):
            for j, s in zip(getattr(rel, f"{kind}_idx")[rrow], getattr(rel, f"{kind}_score")[rrow], strict=True):
                if j >= 0:
                    r = catalog.row(rel.item_ids[j])
                    if mask[r]:
                        cos.setdefault(r, float(s))
    brand = catalog.group_values(C.BRAND)
    category = catalog.group_values(C.CATEGORY)
    ids = catalog.products[C.ITEM]
    titles = catalog.products[C.TITLE] if C.TITLE in catalog.products.columns else None
    out = []
    for r, c in cos.items():
        same_brand = brand[row] is not None and brand[r] == brand[row]
        same_cat = category[row] is not None and category[r] == category[row]
        reasons = ["similar description" if c >= SIMILAR_TEXT else "loosely similar description"]
        if same_brand:
            reasons.append(f"same brand ({brand[r]})")
        if same_cat:
            reasons.append(f"same category ({category[r]})")
        if c < SIMILAR_TEXT and (same_brand or same_cat):
            reasons = reasons[1:] + reasons[:1]  # the shared brand/category is the main reason here
        score = c + brand_bonus * same_brand + category_bonus * same_cat
        title = None if titles is None else titles.iat[r]
        out.append(SimilarItem(str(ids.iat[r]), float(score), "; ".join(reasons), reasons, c, title))
    out.sort(key=lambda s: (-s.score, s.item_id))
    return out[:k]


def similar_matrix(catalog: CatalogIndex, item_ids: list[str], k: int = 10) -> np.ndarray:
    """Row positions of the ``k`` nearest products for many items at once (no reasons; for evaluation)."""
    rows = np.array([catalog.row(i) for i in item_ids], dtype=np.int64)
    hits, _ = catalog.index.search(catalog.vectors[rows], k + 1)
    out = np.full((len(rows), k), -1, dtype=np.int64)
    for n, (r, h) in enumerate(zip(rows, hits, strict=True)):
        pos = [catalog.row(i) for i in h if catalog.row(i) != r][:k]
        out[n, : len(pos)] = pos
    return out


def catalog_index(
    store: Any, settings: Any, encoder: Any, version: Path | None = None, *, progress: bool = False
) -> CatalogIndex:
    """The similar-products index of the catalog in ``store`` (saved under ``<home>/index/catalog``
    and reused while nothing changed): the product vectors of the model ``version`` (its pictures
    fused in when it fused them, :mod:`shopsense.images`), else the text vectors of ``encoder``."""
    from shopsense.images import version_images

    cache = settings.home / "index" / "catalog"
    images = version_images(version)
    if images is None or images.weight <= 0:
        return CatalogIndex.from_store(store, encoder, cache_dir=cache, progress=progress)
    from shopsense.training import product_vectors

    return CatalogIndex.from_store(
        store,
        encoder,
        cache_dir=cache,
        progress=progress,
        vectors=lambda products: product_vectors(products, settings, store, images=images),
        vectors_id=f"{images.model_id}@{images.weight}",
    )
