from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopsense.exceptions import UnknownItemError
from shopsense.index.relations import RelationGraph, build_relations


def _toy() -> tuple[list[str], np.ndarray, list, list]:
    # two tight clusters; brands and categories cut across them
    x = np.array(
        [[1, 0, 0], [0.95, 0.05, 0], [0.9, 0.1, 0], [0, 1, 0], [0.05, 0.95, 0], [0, 0.9, 0.1]], dtype=np.float32
    )
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = ["a", "b", "c", "d", "e", "f"]
    brands = ["Acme", "Other", "Acme", "Acme", None, "Other"]
    cats = ["K > Kettles", "K > Kettles", "K > Mugs", "K > Mugs", "K > Mugs", float("nan")]
    return ids, x, brands, cats


@pytest.mark.parametrize("threshold", [20_000, 2])
def test_neighbours_and_groups(threshold: int) -> None:
    ids, x, brands, cats = _toy()
    g = build_relations(ids, x, brands=brands, categories=cats, n_neighbors=2, exact_threshold=threshold)
    assert [i for i, _ in g.neighbors("a")] == ["b", "c"]
    assert [i for i, _ in g.neighbors("a", "brand")] == ["c", "d"]  # same brand, most similar first
    assert [i for i, _ in g.neighbors("a", "category")] == ["b"]
    assert g.neighbors("e", "brand") == [] and g.neighbors("f", "category") == []  # missing group: no links
    scores = [s for _, s in g.neighbors("d", "content")]
    assert scores == sorted(scores, reverse=True)
    assert "d" not in [i for i, _ in g.neighbors("d", "brand")]


def test_save_load_round_trip(tmp_path: Path) -> None:
    ids, x, brands, cats = _toy()
    g = build_relations(ids, x, brands=brands, categories=cats, n_neighbors=3)
    g.save(tmp_path / "rel")
    back = RelationGraph.load(tmp_path / "rel")
    assert back.item_ids == ids and back.brands == g.brands and back.categories[5] is None
    for kind in ("content", "brand", "category"):
        assert back.neighbors("c", kind) == g.neighbors("c", kind)
    with pytest.raises(UnknownItemError):
        back.neighbors("zzz")
    with pytest.raises(ValueError, match="valid"):
        back.neighbors("a", "colour")
