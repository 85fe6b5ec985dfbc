"""Home Depot: would a cross-encoder re-ranker, taught on the shop's own judged queries, lift search?

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/search_cross_encoder.py [--depth 30] [--folds 0,1]

A measurement for issue 18's search target (NDCG@10 >= 0.45), not a part of the engine. The engine's
candidates are what its re-ranker sees (the untrained ranking's top ``rerank_depth`` of each query).
The queries are split in two halves by the hash of their text (``shopsense.evaluation.crossfit``);
for each half, a cross-encoder (all-MiniLM-L6-v2's weights with a new one-output head, so the query
and the title attend to each other) is trained one epoch on the other half's judged pairs (label
(relevance - 1) / 2) and four unjudged products of its top 20 (label 0: unjudged counts 0 in the
metric), then scores this half's top ``--depth`` candidates. Nothing is chosen on the scored queries:
the rank blend's weight is fixed at 0.5. Reported per half evaluated: the untrained ranking, the
cross-fitted LambdaRank re-ranker (as in ``search_homedepot.py``), the cross-encoder alone over the
top ``--depth``, and the rank average of the two over it. NDCG@10 as in BENCHMARKS.md (gain
2^(relevance-1) - 1, unjudged 0, ideal from every judged product of the query).

Cost on one core of the 2-core box: ~21 min to train a half (36k pairs) and ~22 min to score one
(4,100 queries x 30 candidates) in torch; the scores are cached in ``--cache``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import time
from pathlib import Path
from typing import Any

from shopsense.process import process_environment

os.environ.update(process_environment())  # before torch loads: see shopsense.process

import numpy as np  # noqa: E402
from scipy.stats import rankdata  # noqa: E402

from shopsense.config import EncoderConfig  # noqa: E402
from shopsense.data.public import load_dataset  # noqa: E402
from shopsense.evaluation import metrics as M  # noqa: E402
from shopsense.evaluation.crossfit import fold_of  # noqa: E402
from shopsense.evaluation.search_protocol import judgements  # noqa: E402
from shopsense.features.embeddings import embed_products  # noqa: E402
from shopsense.features.text import TextEncoder, default_model_path  # noqa: E402
from shopsense.search import SearchEngine  # noqa: E402
from shopsense.search.reranker import Reranker  # noqa: E402
from shopsense.store import open_store  # noqa: E402

NEGATIVES = 4  # unjudged products of a training query's top 20, labelled 0


def candidates(cache: Path) -> dict[str, Any]:
    """Per query: the re-ranker's candidate rows, their features and the untrained score (cached)."""
    path = cache / "candidates.pkl"
    if path.exists():
        return pickle.loads(path.read_bytes())
    ds = load_dataset("homedepot")
    encoder = TextEncoder(EncoderConfig())
    store = open_store(f"sqlite:///{cache / 'embeddings.db'}")
    engine = SearchEngine.build(
        ds.products, encoder, vectors=embed_products(ds.products, encoder, store, progress=True)
    )
    out = []
    for cand in engine.iter_candidates(ds.queries["query"].tolist()):
        top = engine.rerank_rows(cand)
        out.append((cand.rows[top].astype(np.int64), cand.features[top], engine.default_scores(cand)[top]))
    # candidates are product rows of the index; the judgements (search_protocol) use the catalog's
    if engine.index.item_ids.astype(str).tolist() != ds.products["item_id"].astype(str).tolist():
        raise SystemExit("the search index's product rows are not the catalog's: the judgements would not line up")
    data = {"cands": out, "titles": ds.products["title"].astype(str).tolist()}
    path.write_bytes(pickle.dumps(data))
    return data


def judged_rows(ds: Any) -> tuple[Any, dict[str, int]]:
    """The benchmark's judgements (``search_protocol.judgements``: a CSR matrix of raw relevance over
    product rows, one row per judged query) and each judged query id's row in it."""
    j = judgements(ds.products, ds.queries, ds.qrels)
    return j.qrels, {str(q): r for r, q in enumerate(j.query_ids)}


def judged_of(qrels: Any, row: int | None) -> dict[int, float]:
    """{product row: relevance} of one query's row (none when the query has no judged product)."""
    if row is None:
        return {}
    return dict(zip(qrels[row].indices.tolist(), qrels[row].data.tolist(), strict=True))


def train_pairs(
    train: np.ndarray, data: dict[str, Any], qs: list[str], qids: list[str], judged: dict, seed: int = 0
) -> tuple[list[tuple[str, str]], list[float]]:
    """(query, title) pairs and labels of the training queries: judged candidates and a few unjudged ones."""
    rng = np.random.default_rng(seed)
    pairs, labels = [], []
    for i in train:
        rows, _, base = data["cands"][i]
        rel = judged.get(qids[i], {})
        unjudged = [r for r in rows[np.argsort(-base)[:20]] if int(r) not in rel]
        neg: Any = rng.choice(unjudged, min(NEGATIVES, len(unjudged)), replace=False) if unjudged else []
        for r in [r for r in rows if int(r) in rel]:
            pairs.append((qs[i], data["titles"][int(r)]))
            labels.append((rel[int(r)] - 1.0) / 2.0)
        for r in neg:
            pairs.append((qs[i], data["titles"][int(r)]))
            labels.append(0.0)
    return pairs, labels


def train_cross_encoder(pairs: list[tuple[str, str]], labels: list[float], seed: int = 0) -> tuple[Any, Any]:
    """One epoch of binary cross-entropy on soft labels from MiniLM's weights (batch 32, AdamW 5e-5,
    10% warm-up then linear decay)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(str(default_model_path()))
    model = AutoModelForSequenceClassification.from_pretrained(str(default_model_path()), num_labels=1)
    order = np.random.default_rng(seed).permutation(len(pairs))
    batch = 32
    steps = (len(order) + batch - 1) // batch
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / (0.1 * steps)) * max(0.0, 1 - s / steps)
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    model.train()
    t0 = time.perf_counter()
    for s in range(steps):
        b = order[s * batch : (s + 1) * batch]
        enc = tok(
            [pairs[k][0] for k in b],
            [pairs[k][1] for k in b],
            padding=True,
            truncation=True,
            max_length=64,
            return_tensors="pt",
        )
        loss = loss_fn(model(**enc).logits.squeeze(-1), torch.tensor([labels[k] for k in b], dtype=torch.float32))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if s % 200 == 0:
            print(f"  step {s}/{steps} loss {loss.item():.4f} {time.perf_counter() - t0:.0f}s", flush=True)
    model.eval()
    return tok, model


def predict(tok: Any, model: Any, pairs: list[tuple[str, str]], batch: int = 128) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for k in range(0, len(pairs), batch):
            chunk = pairs[k : k + batch]
            enc = tok(
                [p[0] for p in chunk],
                [p[1] for p in chunk],
                padding=True,
                truncation=True,
                max_length=64,
                return_tensors="pt",
            )
            out.append(model(**enc).logits.squeeze(-1).numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--depth", type=int, default=30, help="candidates of the untrained ranking the cross-encoder scores"
    )
    ap.add_argument("--folds", default="0,1", help="halves to evaluate (each trained on the other)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/shopsense-bench/search-cross-encoder"))
    a = ap.parse_args()
    a.cache.mkdir(parents=True, exist_ok=True)
    data = candidates(a.cache)
    ds = load_dataset("homedepot")
    qs, qids = ds.queries["query"].astype(str).tolist(), ds.queries["query_id"].astype(str).tolist()
    qrels, judged_row = judged_rows(ds)
    judged = {qid: judged_of(qrels, judged_row.get(qid)) for qid in qids}
    fold = np.array([fold_of(q, 2) for q in qs])
    cands = data["cands"]
    gains = [
        np.array([max(judged.get(qids[i], {}).get(int(r), 1.0) - 1.0, 0.0) for r in c[0]], np.float32)
        for i, c in enumerate(cands)
    ]
    for f in [int(x) for x in a.folds.split(",")]:
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        path = a.cache / f"scores-fold{f}-depth{a.depth}.pkl"
        if path.exists():
            ce = pickle.loads(path.read_bytes())
        else:
            pairs, labels = train_pairs(train, data, qs, qids, judged)
            print(f"half {f}: training on {len(pairs):,} pairs of {len(train):,} queries", flush=True)
            tok, model = train_cross_encoder(pairs, labels)
            todo = [(i, j) for i in test for j in np.argsort(-cands[i][2])[: a.depth]]
            t0 = time.perf_counter()
            s = predict(tok, model, [(qs[i], data["titles"][int(cands[i][0][j])]) for i, j in todo])
            print(f"half {f}: scored {len(todo):,} pairs in {time.perf_counter() - t0:.0f}s", flush=True)
            ce = {int(i): np.full(len(cands[i][0]), np.nan, np.float32) for i in test}
            for (i, j), v in zip(todo, s, strict=True):
                ce[int(i)][j] = v
            path.write_bytes(pickle.dumps(ce))
        ce = {int(i): ce.get(int(i), np.full(len(cands[i][0]), np.nan, np.float32)) for i in test}
        lambdarank = Reranker(num_rounds=150).fit([cands[i][1] for i in train], [gains[i] for i in train])
        scored = np.array([i for i in test if qids[i] in judged_row], np.int64)
        report(f, scored, cands, ce, lambdarank, qrels[[judged_row[qids[i]] for i in scored]], a.depth)


def report(
    half: int,
    test: np.ndarray,
    cands: list,
    ce: dict[int, np.ndarray],
    lambdarank: Reranker,
    truth: Any,
    depth: int,
) -> None:
    """The half's NDCG@10 table: each system orders the candidates of every judged test query
    (``truth``: their judgements, row by row), scored by the shared metric as ``search_protocol``
    scores the benchmark."""
    systems = {
        "engine, untrained": lambda i: cands[i][2],
        "engine + LambdaRank (cross-fitted)": lambda i: lambdarank.predict(cands[i][1]),
        f"cross-encoder over the top {depth}": lambda i: np.where(np.isnan(ce[i]), -1e9, ce[i]),
        f"rank average 0.5 / 0.5 over the top {depth}": lambda i: _rank_average(ce[i], lambdarank.predict(cands[i][1])),
    }
    print(f"\nhalf {half} ({len(test):,} queries, models from the other half)")
    print("| system | NDCG@10 |\n|---|---|")
    for name, score in systems.items():
        tops = np.full((len(test), 10), -1, np.int64)
        for r, i in enumerate(test):
            best = cands[i][0][np.argsort(-score(i), kind="stable")[:10]]
            tops[r, : len(best)] = best
        v = M.search_metrics(tops, truth, k=10)["ndcg@10"]
        print(f"| {name} | {v:.4f} |", flush=True)


def _rank_average(ce: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Mean of the two scores' ranks over the scored candidates; the rest below them."""
    ok = ~np.isnan(ce)
    out = np.full(len(ce), -1e9)
    out[ok] = 0.5 * rankdata(ce[ok]) + 0.5 * rankdata(other[ok])
    return out


if __name__ == "__main__":
    main()
