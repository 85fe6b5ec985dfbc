"""ANN benchmark: FAISS HNSW vs hnswlib vs usearch vs exact numpy at 100k x 384 (cosine).

Run::

    .venv/bin/python benchmarks/vector_index.py                     # all backends, 100k x 384
    .venv/bin/python benchmarks/vector_index.py --n 20000 --only shopsense

Data: synthetic vectors with the shape of sentence embeddings: a mixture of 2,000 clusters in a
64-dimensional latent space mapped to 384 dimensions plus isotropic noise, L2-normalised (isotropic
Gaussian vectors in 384-d would be far harder than any real embedding set; that is stated next to
the numbers). Queries are fresh draws from the same distribution, not indexed points.
Reports build seconds, recall@10 against exact search, and p50/p99 single-query latency (one query
per call, in-process, 1 thread: what a serving request does), plus filtered search (20% of items
allowed) through :class:`shopsense.index.vector.VectorIndex`.
"""

from __future__ import annotations

import argparse
import json
import os
import time

# One BLAS thread: a single query is latency-bound, and two BLAS threads on a busy 2-core machine
# wait for each other (exact search measured ~10x slower wall-clock with the default).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

from shopsense.process import process_environment

os.environ.update(process_environment())  # OMP_WAIT_POLICY before faiss loads: see shopsense.process

import numpy as np  # noqa: E402


def make_data(
    n: int, d: int, n_queries: int, seed: int = 0, spread: float = 0.7, noise: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    latent, n_clusters = 64, 2000
    centres = rng.normal(size=(n_clusters, latent)).astype(np.float32)
    proj = rng.normal(size=(latent, d)).astype(np.float32) / np.sqrt(latent)

    def draw(m: int) -> np.ndarray:
        c = rng.integers(0, n_clusters, size=m)
        z = centres[c] + spread * rng.normal(size=(m, latent)).astype(np.float32)
        x = z @ proj + noise * rng.normal(size=(m, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    return draw(n).astype(np.float32), draw(n_queries).astype(np.float32)


def exact_topk(x: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(q), k), dtype=np.int64)
    for s in range(0, len(q), 256):
        sc = q[s : s + 256] @ x.T
        part = np.argpartition(-sc, k, axis=1)[:, :k]
        order = np.take_along_axis(sc, part, axis=1).argsort(axis=1)[:, ::-1]
        out[s : s + 256] = np.take_along_axis(part, order, axis=1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def timed_queries(fn, q: np.ndarray, k: int) -> tuple[np.ndarray, float, float, float]:
    """Results, wall-clock p50/p99 ms, and p99 of the thread's CPU time per query (ms).

    On a shared machine the wall clock includes waiting for a core; the CPU time does not, so it is
    what one query costs on an idle core.
    """
    res, lat, cpu = [], [], []
    for v in q:
        t, c = time.perf_counter(), time.thread_time()
        res.append(fn(v, k))
        lat.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    ms, cms = np.array(lat) * 1000, np.array(cpu) * 1000
    return np.array(res), float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(np.percentile(cms, 99))


def bench_faiss(x, q, truth, k, m, ef_c, efs):
    import faiss

    faiss.omp_set_num_threads(2)
    t = time.perf_counter()
    idx = faiss.IndexHNSWFlat(x.shape[1], m, faiss.METRIC_INNER_PRODUCT)
    idx.hnsw.efConstruction = ef_c
    idx.add(x)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    rows = []
    for ef in efs:
        idx.hnsw.efSearch = ef
        found, p50, p99, cpu99 = timed_queries(lambda v, k: idx.search(v[None, :], k)[1][0], q, k)
        rows.append(
            {
                "backend": "faiss-hnsw",
                "M": m,
                "ef": ef,
                "build_s": build,
                "recall@10": recall(found, truth),
                "p50_ms": p50,
                "p99_ms": p99,
                "cpu_p99_ms": cpu99,
            }
        )
    return rows


def bench_hnswlib(x, q, truth, k, m, ef_c, efs):
    import hnswlib

    t = time.perf_counter()
    idx = hnswlib.Index(space="ip", dim=x.shape[1])
    idx.init_index(max_elements=len(x), M=m, ef_construction=ef_c)
    idx.add_items(x, np.arange(len(x)), num_threads=2)
    build = time.perf_counter() - t
    idx.set_num_threads(1)
    rows = []
    for ef in efs:
        idx.set_ef(ef)
        found, p50, p99, cpu99 = timed_queries(lambda v, k: idx.knn_query(v, k)[0][0], q, k)
        rows.append(
            {
                "backend": "hnswlib",
                "M": m,
                "ef": ef,
                "build_s": build,
                "recall@10": recall(found, truth),
                "p50_ms": p50,
                "p99_ms": p99,
                "cpu_p99_ms": cpu99,
            }
        )
    return rows


def bench_usearch(x, q, truth, k, m, ef_c, efs):
    from usearch.index import Index

    t = time.perf_counter()
    idx = Index(ndim=x.shape[1], metric="ip", dtype="f32", connectivity=m, expansion_add=ef_c)
    idx.add(np.arange(len(x)), x, threads=2)
    build = time.perf_counter() - t
    rows = []
    for ef in efs:
        idx.expansion_search = ef
        found, p50, p99, cpu99 = timed_queries(lambda v, k: idx.search(v, k, threads=1).keys, q, k)
        rows.append(
            {
                "backend": "usearch",
                "M": m,
                "ef": ef,
                "build_s": build,
                "recall@10": recall(found, truth),
                "p50_ms": p50,
                "p99_ms": p99,
                "cpu_p99_ms": cpu99,
            }
        )
    return rows


def bench_exact(x, q, truth, k):
    found, p50, p99, cpu99 = timed_queries(lambda v, k: np.argpartition(-(x @ v), k)[:k], q, k)
    return [
        {
            "backend": "exact-numpy",
            "M": None,
            "ef": None,
            "build_s": 0.0,
            "recall@10": recall(found, truth),
            "p50_ms": p50,
            "p99_ms": p99,
            "cpu_p99_ms": cpu99,
        }
    ]


def bench_shopsense(x, q, truth, k):
    """The engine's own VectorIndex with its default settings, unfiltered and filtered."""
    from shopsense.index.vector import VectorIndex

    ids = np.array([f"p{i}" for i in range(len(x))])
    t = time.perf_counter()
    vi = VectorIndex().build(x, ids)
    build = time.perf_counter() - t
    pos = {s: i for i, s in enumerate(ids)}
    found, p50, p99, cpu99 = timed_queries(lambda v, k: [pos[s] for s in vi.search(v, k)[0][0]], q, k)
    rows = [
        {
            "backend": f"shopsense VectorIndex ({vi.kind}, efC={vi.ef_construction})",
            **vi.params_summary(),
            "build_s": build,
            "recall@10": recall(found, truth),
            "p50_ms": p50,
            "p99_ms": p99,
            "cpu_p99_ms": cpu99,
        }
    ]
    # filtered: 20% of the catalog allowed (e.g. one category + in stock)
    rng = np.random.default_rng(1)
    mask = rng.random(len(x)) < 0.2
    allowed_idx = np.flatnonzero(mask)
    ftruth = allowed_idx[exact_topk(x[mask], q, k)]
    found, p50, p99, cpu99 = timed_queries(lambda v, k: [pos[s] for s in vi.search(v, k, allowed=mask)[0][0]], q, k)
    rows.append(
        {
            "backend": f"shopsense VectorIndex ({vi.kind}, efC={vi.ef_construction}) filtered 20%",
            **vi.params_summary(),
            "build_s": build,
            "recall@10": recall(found, ftruth),
            "p50_ms": p50,
            "p99_ms": p99,
            "cpu_p99_ms": cpu99,
        }
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=16)
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--ef", type=int, nargs="+", default=[32, 64, 128])
    ap.add_argument("--only", nargs="+", default=["exact", "faiss", "hnswlib", "usearch", "shopsense"])
    ap.add_argument("--spread", type=float, default=0.7, help="cluster spread in the latent space (harder: larger)")
    ap.add_argument("--noise", type=float, default=0.15, help="isotropic noise in 384-d (harder: larger)")
    ap.add_argument("--json", help="also write the rows to this file")
    a = ap.parse_args()
    x, q = make_data(a.n, a.dim, a.queries, spread=a.spread, noise=a.noise)
    truth = exact_topk(x, q, a.k)
    rows = []
    benches = {
        "exact": lambda: bench_exact(x, q, truth, a.k),
        "faiss": lambda: bench_faiss(x, q, truth, a.k, a.m, a.ef_construction, a.ef),
        "hnswlib": lambda: bench_hnswlib(x, q, truth, a.k, a.m, a.ef_construction, a.ef),
        "usearch": lambda: bench_usearch(x, q, truth, a.k, a.m, a.ef_construction, a.ef),
        "shopsense": lambda: bench_shopsense(x, q, truth, a.k),
    }
    print(f"n={a.n} dim={a.dim} queries={a.queries} k={a.k} spread={a.spread} noise={a.noise}")
    print(
        "| backend | M | ef | build s | recall@10 | p50 ms | p99 ms | CPU-time p99 ms |\n|---|---|---|---|---|---|---|---|"
    )
    for name in a.only:
        for r in benches[name]():
            rows.append(r)
            print(
                f"| {r['backend']} | {r['M']} | {r['ef']} | {r['build_s']:.1f} | {r['recall@10']:.4f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['cpu_p99_ms']:.3f} |",
                flush=True,
            )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
