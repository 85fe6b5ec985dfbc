"""Unseen items (issue 18): the engine ranking products nobody has interacted with, beside a content peer.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/unseen_items.py [--json reports/unseen_items.json]

Protocol (:mod:`shopsense.evaluation.unseen`): 10% of the items held out at random with every
interaction they have; the users whose last item is one of them are scored on ranking only the
held-out items, from their other items. The engine: its content model fitted on the rest, with the
whole catalog's vectors, and the new-product slot's recency-weighted profile, at its default
settings (nothing chosen here). The peer: cosine between the mean vector of the user's history and
each item. Vectors: MiniLM product text (``benchmarks/run.py``'s ``text_vectors`` and its cache);
Beauty has no titles, so both use its S3-Rec attribute sets (categories and brand), L2-normalised.
Each seed draws another held-out tenth; the table shows the mean over seeds, the range of the
engine's ratio to the peer per seed, and a 95% paired bootstrap interval of the ratio over the test
users of all seeds together.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from run import REC_DATASETS, attribute_vectors, log, machine, text_vectors, versions  # this folder is on sys.path

from shopsense import columns as C
from shopsense.config import EncoderConfig, FinetuneConfig
from shopsense.data.dataset import Dataset
from shopsense.data.public import load_dataset
from shopsense.evaluation.unseen import SHARE, EngineNewProducts, MeanContentPeer, evaluate_unseen, unseen_split
from shopsense.features.finetune import Pairs, finetune, tunable_source
from shopsense.features.onnx_encoder import OWN_EXPORT
from shopsense.features.product_text import product_texts
from shopsense.features.text import TextEncoder

METRICS = ("ndcg@10", "hr@10", "ndcg@20", "hr@20")
TARGET = 1.10  # the number: engine NDCG@10 at least this times the content peer's
BOOTSTRAP = 2000  # resamples of the test users for the ratio's interval


def ratio_interval(engine: np.ndarray, peer: np.ndarray, seed: int = 0) -> tuple[float, float]:
    """95% paired bootstrap interval of mean(engine) / mean(peer) over users (same users resampled for both)."""
    rng = np.random.default_rng(seed)
    ratios = np.empty(BOOTSTRAP)
    for b in range(BOOTSTRAP):
        idx = rng.integers(0, len(engine), len(engine))
        ratios[b] = engine[idx].mean() / max(peer[idx].mean(), 1e-12)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(lo), float(hi)


def vectors_of(name: str, ds: Dataset) -> tuple[np.ndarray, str]:
    """The catalog's vectors for ``name`` and what they are."""
    if load_dataset(name).has_text:
        return text_vectors(name, ds.products), "MiniLM product text"
    attrs = attribute_vectors(name, ds.products)
    if attrs is None:
        raise SystemExit(f"{name}: no product text and no attribute file")
    norm = np.linalg.norm(attrs, axis=1, keepdims=True)
    return attrs / np.where(norm > 0, norm, 1.0), "S3-Rec attribute sets (no titles)"


def together_pairs(train: Dataset, max_pairs: int) -> Pairs:
    """Products one after the other in a training user's sequence (the public sets' timestamps are
    not real, so no session gap): the product -> product pairs a shop's log gives the fine-tuning."""
    texts = product_texts(train.products, EncoderConfig().template)
    inter = train.interactions
    order = np.argsort(inter[C.USER_IDX].to_numpy(), kind="stable")  # stable: each user's order is kept
    u, i = inter[C.USER_IDX].to_numpy()[order], inter[C.ITEM_IDX].to_numpy()[order]
    nxt = np.flatnonzero((u[1:] == u[:-1]) & (i[1:] != i[:-1]))
    seen: set[tuple[int, int]] = set()
    out = Pairs()
    for k in nxt[::-1]:
        a, b = int(i[k]), int(i[k + 1])
        if (min(a, b), max(a, b)) in seen:
            continue
        seen.add((min(a, b), max(a, b)))
        out.anchors.append(texts[a])
        out.positives.append(texts[b])
        out.kinds.append("together")
        if len(out) >= max_pairs:
            break
    return out


def tuned_vectors(name: str, split: Any, seconds: float) -> tuple[np.ndarray, dict[str, Any]]:
    """The catalog's vectors from the encoder fine-tuned on ``split``'s training part only (the held-out
    items' interactions are not in it): what the engine knows of unseen items after a training."""
    from dataclasses import asdict

    cfg = FinetuneConfig(max_seconds=seconds, threads=1)  # one core: the other may run another job
    pairs = together_pairs(split.train, cfg.max_pairs)
    folder = Path("/tmp/shopsense-bench/finetune") / f"unseen-{name}"
    shutil.rmtree(folder, ignore_errors=True)
    source = tunable_source(EncoderConfig())
    assert source is not None
    report = finetune(source, pairs, cfg, folder, model_id=f"tuned:unseen-{name}", progress=log)
    (folder / OWN_EXPORT).mkdir()
    enc = TextEncoder(EncoderConfig(model=str(folder)))
    return enc.encode(product_texts(split.train.products, enc.config.template), progress=True), asdict(report)


def run_dataset(name: str, seeds: list[int], share: float, finetune_s: float = 0.0) -> dict[str, Any]:
    """Engine and peer on ``len(seeds)`` held-out draws of one dataset: per seed and the means; with
    ``finetune_s``, also the engine with the text encoder fine-tuned on each draw's training part."""
    d = load_dataset(name)
    ds = Dataset.from_frames(d.events, d.products)
    vectors, kind = vectors_of(name, ds)
    log(f"{name}: {ds.n_users:,} users, {ds.n_items:,} items, {len(ds.interactions):,} interactions ({kind})")
    per_seed: list[dict[str, Any]] = []
    gains: dict[str, list[np.ndarray]] = {"engine": [], "peer": []}  # per-user NDCG@10, all seeds
    for seed in seeds:
        split = unseen_split(ds, share, seed)
        tuned: dict[str, Any] = {}
        if finetune_s and d.has_text:
            tuned_vecs, report = tuned_vectors(name, split, finetune_s)
            tuned = {
                "engine, tuned encoder": evaluate_unseen(EngineNewProducts(), split, tuned_vecs),
                "finetune": report,
            }
            log(f"{name} seed {seed}: engine with the tuned encoder {tuned['engine, tuned encoder']['ndcg@10']:.4f}")
        row = {
            **tuned,
            "seed": seed,
            "users": len(split.users),
            "without_history": split.without_history,
            "engine": evaluate_unseen(EngineNewProducts(), split, vectors, keep_rows=True),
            "peer": evaluate_unseen(MeanContentPeer(), split, vectors, keep_rows=True),
        }
        for m in gains:
            gains[m].append(row[m].pop("rows")["ndcg@10"])
        row["ratio"] = row["engine"]["ndcg@10"] / row["peer"]["ndcg@10"]
        log(
            f"{name} seed {seed}: {len(split.users)} users, {len(split.held_out)} held-out items; NDCG@10 engine "
            f"{row['engine']['ndcg@10']:.4f} peer {row['peer']['ndcg@10']:.4f} ({row['ratio']:.3f}x)"
        )
        per_seed.append(row)
    mean = {m: {x: float(np.mean([r[m][x] for r in per_seed])) for x in METRICS} for m in ("engine", "peer")}
    ratios = [r["ratio"] for r in per_seed]
    tuned_rows = [r["engine, tuned encoder"] for r in per_seed if "engine, tuned encoder" in r]
    if tuned_rows:
        mean["engine, tuned encoder"] = {x: float(np.mean([t[x] for t in tuned_rows])) for x in METRICS}
        log(
            f"{name}: engine NDCG@10 untuned {mean['engine']['ndcg@10']:.4f}, with the tuned encoder "
            f"{mean['engine, tuned encoder']['ndcg@10']:.4f} (mean of {len(tuned_rows)} draws)"
        )
    return {
        "vectors": kind,
        "items": ds.n_items,
        "held_out_items": int(per_seed[0]["engine"]["n_candidates"]),
        "mean_users": float(np.mean([r["users"] for r in per_seed])),
        "random": per_seed[0]["engine"]["random"],
        "mean": mean,
        "ratio": mean["engine"]["ndcg@10"] / mean["peer"]["ndcg@10"],
        "ratio_range": [min(ratios), max(ratios)],
        "ratio_95": ratio_interval(np.concatenate(gains["engine"]), np.concatenate(gains["peer"])),
        "met": mean["engine"]["ndcg@10"] >= TARGET * mean["peer"]["ndcg@10"],
        "seeds": per_seed,
    }


def table(results: dict[str, dict[str, Any]]) -> str:
    """The markdown table of docs/benchmarks.md's unseen-item section."""
    lines = [
        "| dataset | test users (mean) | held-out items | engine NDCG@10 | peer NDCG@10 | engine HR@10 | peer HR@10 "
        "| engine ÷ peer NDCG@10 | per seed | 95% interval | ≥ 1.10× |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        e, p = r["mean"]["engine"], r["mean"]["peer"]
        lo, hi = r["ratio_range"]
        blo, bhi = r["ratio_95"]
        lines.append(
            f"| {name} | {r['mean_users']:,.0f} | {r['held_out_items']:,} | {e['ndcg@10']:.4f} | {p['ndcg@10']:.4f} "
            f"| {e['hr@10']:.4f} | {p['hr@10']:.4f} | {r['ratio']:.3f}× | {lo:.2f}-{hi:.2f} | {blo:.2f}-{bhi:.2f} "
            f"| {'met' if r['met'] else 'not met'} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--datasets", default=",".join(REC_DATASETS), help="comma list (default: all three)")
    ap.add_argument("--seeds", default="0,1,2,3,4", help="held-out draws, averaged (comma list)")
    ap.add_argument("--share", type=float, default=SHARE, help="share of the items held out")
    ap.add_argument(
        "--finetune",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="also score the engine with the text encoder fine-tuned (this time budget) on each draw's training "
        "part (datasets with titles)",
    )
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    seeds = [int(s) for s in a.seeds.split(",") if s.strip()]
    results = {
        n.strip(): run_dataset(n.strip(), seeds, a.share, a.finetune) for n in a.datasets.split(",") if n.strip()
    }
    print(table(results))
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        meta = {"machine": machine(), "versions": versions(), "seconds": time.perf_counter() - t0, "share": a.share}
        a.json.write_text(json.dumps({"environment": meta, "unseen_items": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
