"""The item relation graph: for every product its nearest content neighbours, and its most similar
products of the same brand and of the same category.

Built once from the product vectors and reused by similar-products, recommendation (item-to-item
candidates, cold start) and search (related items). Saved as a folder of plain files:

- ``item_ids.json``: row -> item id
- ``content_idx.npy`` / ``content_score.npy``: (n, N) neighbour rows and cosines, best first, -1 = none
- ``brand_idx.npy`` / ``brand_score.npy`` and ``category_idx.npy`` / ``category_score.npy``: the same,
  restricted to products sharing the brand / the (full-path) category
- ``groups.json``: each item's brand and category (null when missing)
- ``params.json``: format version and settings
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shopsense.exceptions import NotFittedError, ShopsenseError, UnknownItemError
from shopsense.features.product_text import is_missing
from shopsense.index.vector import VectorIndex
from shopsense.topk import top_k

FORMAT_VERSION = 1
KINDS = ("content", "brand", "category")


@dataclass
class RelationGraph:
    """Per-item neighbour lists (rows index :attr:`item_ids`)."""

    item_ids: list[str]
    content_idx: np.ndarray
    content_score: np.ndarray
    brand_idx: np.ndarray
    brand_score: np.ndarray
    category_idx: np.ndarray
    category_score: np.ndarray
    brands: list[str | None]
    categories: list[str | None]
    params: dict[str, Any]

    def __post_init__(self) -> None:
        self._row = {i: r for r, i in enumerate(self.item_ids)}

    def __len__(self) -> int:
        return len(self.item_ids)

    def row(self, item_id: str) -> int:
        try:
            return self._row[item_id]
        except KeyError:
            raise UnknownItemError(f"item {item_id!r} is not in the relation graph") from None

    def neighbors(self, item_id: str, kind: str = "content") -> list[tuple[str, float]]:
        """``(item_id, cosine)`` pairs of one relation kind, best first."""
        if kind not in KINDS:
            raise ValueError(f"unknown relation {kind!r}; valid: {', '.join(KINDS)}")
        r = self.row(item_id)
        idx, sc = getattr(self, f"{kind}_idx")[r], getattr(self, f"{kind}_score")[r]
        return [(self.item_ids[j], float(s)) for j, s in zip(idx, sc, strict=True) if j >= 0]

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        d = Path(path)
        d.mkdir(parents=True, exist_ok=True)
        (d / "item_ids.json").write_text(json.dumps(self.item_ids, ensure_ascii=False), encoding="utf-8")
        for kind in KINDS:
            np.save(d / f"{kind}_idx.npy", getattr(self, f"{kind}_idx"))
            np.save(d / f"{kind}_score.npy", getattr(self, f"{kind}_score"))
        groups = {"brand": self.brands, "category": self.categories}
        (d / "groups.json").write_text(json.dumps(groups, ensure_ascii=False), encoding="utf-8")
        (d / "params.json").write_text(json.dumps({**self.params, "format_version": FORMAT_VERSION}, indent=1))
        return d

    @classmethod
    def load(cls, path: str | Path) -> RelationGraph:
        d = Path(path)
        try:
            params = json.loads((d / "params.json").read_text())
        except FileNotFoundError as e:
            raise NotFittedError(f"no relation graph at {d} (params.json missing)") from e
        if params.get("format_version") != FORMAT_VERSION:
            raise ShopsenseError(
                f"relation graph at {d} has format {params.get('format_version')}, expected {FORMAT_VERSION}"
            )
        groups = json.loads((d / "groups.json").read_text(encoding="utf-8"))
        arrays = {f"{k}_{p}": np.load(d / f"{k}_{p}.npy") for k in KINDS for p in ("idx", "score")}
        return cls(
            item_ids=json.loads((d / "item_ids.json").read_text(encoding="utf-8")),
            brands=groups["brand"],
            categories=groups["category"],
            params=params,
            **arrays,
        )


def _group_keys(values: Any, n: int) -> list[str | None]:
    if values is None:
        return [None] * n
    out = [None if is_missing(v) else str(v).strip() for v in values]
    if len(out) != n:
        raise ValueError(f"{len(out)} group values for {n} items")
    return out


def _top_candidates(vectors: np.ndarray, m: int, exact_threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``m`` most similar other rows (exact below the threshold, HNSW above)."""
    n = len(vectors)
    m = min(m, n - 1)
    if m <= 0:
        return np.full((n, 0), -1, dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    idx = np.empty((n, m), dtype=np.int64)
    sc = np.empty((n, m), dtype=np.float32)
    if n <= exact_threshold:
        for s in range(0, n, 1024):
            block = vectors[s : s + 1024] @ vectors.T
            block[np.arange(len(block)), np.arange(s, s + len(block))] = -np.inf  # not its own neighbour
            idx[s : s + len(block)], sc[s : s + len(block)] = top_k(block, m)
        return idx, sc
    vi = VectorIndex(exact_threshold=exact_threshold, ef_search=max(64, 2 * m)).build(vectors)
    for s in range(0, n, 4096):
        ids, scores = vi.search(vectors[s : s + 4096], m + 1)
        ids = ids.astype(np.int64)
        for r in range(len(ids)):
            keep = ids[r] != s + r
            row_ids, row_sc = ids[r][keep][:m], scores[r][keep][:m]
            idx[s + r, : len(row_ids)], sc[s + r, : len(row_ids)] = row_ids, row_sc
            idx[s + r, len(row_ids) :], sc[s + r, len(row_ids) :] = -1, 0.0
    return idx, sc


def _restrict(idx: np.ndarray, sc: np.ndarray, groups: list[str | None], n_keep: int) -> tuple[np.ndarray, np.ndarray]:
    """From each row's candidates keep the first ``n_keep`` sharing the row's group."""
    g = np.array([hash(x) if x is not None else 0 for x in groups], dtype=np.int64)
    has = np.array([x is not None for x in groups])
    valid = idx >= 0
    same = valid & has[:, None] & (g[np.where(valid, idx, 0)] == g[:, None])
    out_idx = np.full((len(idx), n_keep), -1, dtype=np.int64)
    out_sc = np.zeros((len(idx), n_keep), dtype=np.float32)
    for r in np.flatnonzero(same.any(axis=1)):
        cols = np.flatnonzero(same[r])[:n_keep]
        cols = cols[[groups[idx[r, c]] == groups[r] for c in cols]]  # guard against hash collisions
        out_idx[r, : len(cols)] = idx[r, cols]
        out_sc[r, : len(cols)] = sc[r, cols]
    return out_idx, out_sc


def build_relations(
    item_ids: list[str],
    vectors: np.ndarray,
    *,
    brands: Any = None,
    categories: Any = None,
    n_neighbors: int = 20,
    n_group: int = 10,
    candidates: int = 200,
    exact_threshold: int = 20_000,
) -> RelationGraph:
    """Build the graph from L2-normalised product vectors (row-aligned with ``item_ids``).

    Same-brand / same-category neighbours are the most content-similar products of the group found
    among each item's ``candidates`` nearest neighbours (so the cost stays O(n * candidates) even for
    a category holding most of the catalog).
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(item_ids)
    if len(x) != n:
        raise ValueError(f"{len(x)} vectors for {n} items")
    b, c = _group_keys(brands, n), _group_keys(categories, n)
    idx, sc = _top_candidates(x, max(candidates, n_neighbors), exact_threshold)
    n_content = min(n_neighbors, idx.shape[1])
    b_idx, b_sc = _restrict(idx, sc, b, n_group)
    c_idx, c_sc = _restrict(idx, sc, c, n_group)
    return RelationGraph(
        item_ids=[str(i) for i in item_ids],
        content_idx=idx[:, :n_content].astype(np.int32),
        content_score=sc[:, :n_content].astype(np.float32),
        brand_idx=b_idx.astype(np.int32),
        brand_score=b_sc,
        category_idx=c_idx.astype(np.int32),
        category_score=c_sc,
        brands=b,
        categories=c,
        params={
            "n_neighbors": n_neighbors,
            "n_group": n_group,
            "candidates": candidates,
            "count": n,
            "dim": int(x.shape[1]),
        },
    )
