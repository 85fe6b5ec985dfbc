"""The engine's spread over seeds on one public dataset: how much of a margin over a peer is noise.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/engine_seeds.py videogames --seeds 0,1,2

``make bench`` runs the engine once (seed 0). The seed draws the held-out users the fusion and the
long-tail pass are tuned on and the sequential model's initialisation, so one run's NDCG@10 moves
with it; this runs the same protocol (``shopsense.evaluation.runner``: leave-one-out, full ranking,
protocol 2) once per seed and prints NDCG@10 and the long-tail slice's (targets with at most 5
training interactions) per seed, with the held-out NDCG@10 the fusion reached. Item vectors as
``make bench`` makes them (cached in ``benchmarks/.cache``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench  # noqa: E402  (benchmarks/run.py: the item vectors and the process environment)

from shopsense.config import load_settings  # noqa: E402
from shopsense.data.dataset import Dataset  # noqa: E402
from shopsense.data.public import load_dataset  # noqa: E402
from shopsense.data.splits import leave_one_out  # noqa: E402
from shopsense.engine_config import EngineConfig  # noqa: E402
from shopsense.evaluation.protocol import evaluate_recommender  # noqa: E402
from shopsense.training import EngineRecommender  # noqa: E402

TAIL = "targets_pop<=5"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", choices=bench.REC_DATASETS)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args()
    d = load_dataset(a.dataset)
    ds = Dataset.from_frames(d.events, d.products)
    split = leave_one_out(ds)
    vectors = (
        bench.text_vectors(a.dataset, ds.products) if d.has_text else bench.attribute_vectors(a.dataset, ds.products)
    )
    rows = []
    print(f"| {a.dataset} seed | NDCG@10 | tail NDCG@10 | held-out NDCG@10 (fusion) | seconds |\n|---|---|---|---|---|")
    for seed in [int(s) for s in a.seeds.split(",")]:
        t0 = time.perf_counter()
        rec = EngineRecommender(config=EngineConfig(seed=seed), settings=load_settings())
        out = evaluate_recommender(rec, split, stage="test", item_vectors=vectors)
        assert rec.engine is not None
        row = {
            "seed": seed,
            "ndcg@10": out["ndcg@10"],
            "tail_ndcg@10": out["slices"][TAIL]["ndcg@10"],
            "heldout_ndcg@10": rec.engine.metrics.get("heldout_ndcg@10_fusion"),
            "seconds": time.perf_counter() - t0,
        }
        rows.append(row)
        print(
            f"| {seed} | {row['ndcg@10']:.4f} | {row['tail_ndcg@10']:.4f} | {row['heldout_ndcg@10']:.4f} | "
            f"{row['seconds']:.0f} |",
            flush=True,
        )
    if a.json:
        a.json.write_text(json.dumps({"dataset": a.dataset, "runs": rows}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
