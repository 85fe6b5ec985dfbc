from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shopsense.exceptions import NotFittedError
from shopsense.index.vector import VectorIndex


def _data(n: int = 3000, d: int = 32, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(50, d))
    x = centres[rng.integers(0, 50, n)] + 0.5 * rng.normal(size=(n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x, [f"p{i}" for i in range(n)]


def _recall(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(r) & set(s)) / len(s) for r, s in zip(a, b, strict=True)]))


def test_exact_search_tiny() -> None:
    x = np.eye(4, dtype=np.float32)
    vi = VectorIndex().build(x, ["a", "b", "c", "d"])
    ids, scores = vi.search(np.array([0.9, 0.1, 0, 0], dtype=np.float32), k=2)
    assert vi.kind == "exact" and ids.tolist() == [["a", "b"]]
    assert scores[0, 0] > scores[0, 1]
    ids, _ = vi.search(x[0], k=10, exclude=["a"], allowed=np.array([True, True, False, True]))
    assert ids.tolist() == [["b", "d"]]  # k is capped at the number of candidates


def test_ann_recall_against_exact() -> None:
    x, ids = _data()
    q = x[:200] + 0.05 * np.random.default_rng(1).normal(size=(200, x.shape[1])).astype(np.float32)
    exact = VectorIndex().build(x, ids)
    ann = VectorIndex(exact_threshold=1000).build(x, ids)
    assert ann.kind == "hnsw"
    truth, _ = exact.search(q, 10)
    found, _ = ann.search(q, 10)
    assert _recall(found, truth) >= 0.98
    # a broad filter walks the graph with the filter applied: every result is allowed
    mask = np.zeros(len(ids), dtype=bool)
    mask[::2] = True
    ann.subset_exact_max = 100
    ftruth, _ = exact.search(q, 10, allowed=mask)
    ffound, _ = ann.search(q, 10, allowed=mask)
    assert all(int(i[1:]) % 2 == 0 for i in ffound.ravel())
    assert _recall(ffound, ftruth) >= 0.95
    # a narrow filter (too many items for exact search) is applied inside the graph walk too
    narrow = np.zeros(len(ids), dtype=bool)
    narrow[::100] = True
    ann.subset_exact_max = 10
    ntruth, _ = exact.search(q, 10, allowed=narrow)
    nfound, _ = ann.search(q, 10, allowed=narrow)
    assert all(int(i[1:]) % 100 == 0 for i in nfound.ravel())
    assert _recall(nfound, ntruth) >= 0.95


@pytest.mark.parametrize("threshold", [10_000, 1000])
def test_search_positions_matches_search_for_row_ids(tmp_path: Path, threshold: int) -> None:
    x, _ = _data()
    vi = VectorIndex(exact_threshold=threshold).build(x)  # ids are the rows 0..n-1
    for index in (vi, VectorIndex.load(vi.save(tmp_path / "ix"))):
        pos, sc = index.search_positions(x[7], 10)
        ids, scores = index.search(x[7], 10)
        assert pos.dtype == np.int64 and pos.tolist() == ids[0].tolist() and pos[0] == 7
        np.testing.assert_allclose(sc, scores[0], atol=1e-6)
    named = VectorIndex().build(x, [f"p{i}" for i in range(len(x))])
    with pytest.raises(ValueError, match="default ids"):
        named.search_positions(x[0], 5)
    vi.add(x[:1], [len(x)])
    with pytest.raises(ValueError, match="default ids"):
        vi.search_positions(x[0], 5)


def test_filter_by_id_subset() -> None:
    x, ids = _data(500)
    vi = VectorIndex().build(x, ids)
    found, _ = vi.search(x[:5], 3, allowed=np.array(["p7", "p8", "p9", "unknown"], dtype=object))
    assert set(found.ravel()) <= {"p7", "p8", "p9"}


@pytest.mark.parametrize("threshold", [10**9, 100])
def test_add_and_remove_without_rebuild(threshold: int) -> None:
    x, ids = _data(1000)
    vi = VectorIndex(exact_threshold=threshold).build(x[:900], ids[:900])
    graph = vi._hnsw
    assert vi.add(x[900:], ids[900:]) == 100
    assert vi._hnsw is graph  # same graph, grown in place
    assert vi.search(x[950], 1)[0][0, 0] == "p950"
    assert vi.remove(["p950", "nope"]) == 1
    assert "p950" not in vi and len(vi) == 999
    assert "p950" not in vi.search(x[950], 5)[0][0]
    # replacing an id's vector
    vi.add(x[0:1], ["p950"])
    assert vi.search(x[0], 2)[0][0].tolist() == ["p0", "p950"] or vi.search(x[0], 2)[0][0].tolist() == ["p950", "p0"]
    assert len(vi) == 1000


def test_exact_index_switches_to_graph_when_it_grows() -> None:
    x, ids = _data(600)
    vi = VectorIndex(exact_threshold=500).build(x[:400], ids[:400])
    assert vi.kind == "exact"
    vi.add(x[400:], ids[400:])
    assert vi.kind == "hnsw" and vi.search(x[599], 1)[0][0, 0] == "p599"


@pytest.mark.parametrize("threshold", [10**9, 500])
def test_save_load_round_trip(tmp_path: Path, threshold: int) -> None:
    x, ids = _data(1000)
    vi = VectorIndex(exact_threshold=threshold).build(x, ids)
    vi.remove(["p3"])
    vi.save(tmp_path / "vi")
    assert {p.name for p in (tmp_path / "vi").iterdir()} >= {"vectors.npy", "ids.json", "params.json", "alive.npy"}
    back = VectorIndex.load(tmp_path / "vi")
    assert back.kind == vi.kind and len(back) == 999 and "p3" not in back
    a_ids, a_sc = vi.search(x[:20], 5)
    b_ids, b_sc = back.search(x[:20], 5)
    assert a_ids.tolist() == b_ids.tolist()
    np.testing.assert_allclose(a_sc, b_sc, atol=1e-6)
    back.add(x[3:4], ["p3"])  # a loaded index keeps growing
    assert back.search(x[3], 1)[0][0, 0] == "p3"


def test_errors() -> None:
    with pytest.raises(NotFittedError):
        VectorIndex().search(np.zeros(4, dtype=np.float32), 1)
    with pytest.raises(NotFittedError):
        VectorIndex.load("/nonexistent/index")
    vi = VectorIndex().build(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="dimensions"):
        vi.search(np.zeros(5, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="mask"):
        vi.search(np.ones(3, dtype=np.float32), 1, allowed=np.array([True]))
    with pytest.raises(ValueError, match="unique"):
        VectorIndex().build(np.eye(2, dtype=np.float32), ["a", "a"])
