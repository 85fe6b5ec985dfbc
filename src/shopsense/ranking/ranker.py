"""Scoring merged candidates: a LightGBM LambdaRank ranker, or a weighted fusion of the sources.

The ranker learns from held-out next interactions (label 1 for the item the user touched next);
the fusion (a weighted sum of each source's row-standardised score) serves when there is no trained
ranker, and its weights are tuned on the same held-out interactions.
Both save as plain files: the LightGBM model as its own text format, weights as JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from shopsense.engine_config import RankerConfig
from shopsense.ranking.candidates import Candidates


class LambdaRanker:
    """LightGBM LambdaRank over candidate features."""

    def __init__(self, config: RankerConfig | None = None) -> None:
        self.config = config or RankerConfig()
        self.booster: Any = None
        self.names: list[str] = []

    def fit(self, cands: Candidates, targets: np.ndarray) -> LambdaRanker:
        """Learn from candidate lists whose row r has target item ``targets[r]`` (rows without it are skipped)."""
        xs, ys = [], []
        for items, feats, t in zip(cands.items, cands.features, targets, strict=True):
            label = (items == t).astype(np.float32)
            if label.sum() == 0 or len(items) < 2:
                continue
            xs.append(feats)
            ys.append(label)
        if not xs:
            raise ValueError("no held-out target appears among the candidates: cannot train the ranker")
        return self.fit_groups(xs, ys, None, cands.names)

    def fit_groups(
        self,
        feats: list[np.ndarray],
        grades: list[np.ndarray],
        weights: list[np.ndarray] | None,
        names: list[str],
    ) -> LambdaRanker:
        """Learn from lists given as they are: per list its feature rows, integer grades (0: nothing
        happened) and optionally per-row weights (e.g. inverse examination propensities)."""
        import lightgbm as lgb

        keep = [i for i, (x, g) in enumerate(zip(feats, grades, strict=True)) if len(x) > 1 and np.any(g > 0)]
        if not keep:
            raise ValueError("no list with an outcome to learn from: cannot train the ranker")
        cfg = self.config
        params = {
            "objective": "lambdarank",
            "metric": "ndcg",
            "eval_at": [10],
            "learning_rate": cfg.learning_rate,
            "num_leaves": cfg.num_leaves,
            "min_data_in_leaf": cfg.min_data_in_leaf,
            "feature_fraction": cfg.feature_fraction,
            "lambdarank_truncation_level": 20,
            "num_threads": cfg.threads,
            "seed": cfg.seed,
            "deterministic": True,
            "verbose": -1,
        }
        w = None if weights is None else np.concatenate([weights[i] for i in keep]).astype(np.float32)
        data = lgb.Dataset(
            np.concatenate([feats[i] for i in keep]),
            np.concatenate([grades[i] for i in keep]).astype(np.int32),
            weight=w,
            group=[len(feats[i]) for i in keep],
            feature_name=list(names),
        )
        self.booster = lgb.train(params, data, num_boost_round=cfg.rounds)
        self.names = list(names)
        return self

    def predict(self, feats: np.ndarray) -> np.ndarray:
        """Scores of feature rows; rows narrower than the ranker's table (recommendation rows for the
        joint ranker of :mod:`shopsense.ranking.joint`) have the columns they lack missing."""
        if self.booster is None:
            raise RuntimeError("ranker is not fitted")
        if not len(feats):
            return np.zeros(0, np.float32)
        return np.asarray(self.booster.predict(widen(feats, len(self.names)), num_threads=1), dtype=np.float32)

    def importance(self) -> dict[str, float]:
        """Total gain per feature (what the ranker relies on)."""
        if self.booster is None:
            return {}
        gain = self.booster.feature_importance("gain")
        return {n: float(g) for n, g in sorted(zip(self.names, gain, strict=True), key=lambda x: -x[1])}

    def save(self, folder: Path) -> None:
        assert self.booster is not None
        self.booster.save_model(str(folder / "ranker.lgb.txt"))
        (folder / "ranker.json").write_text(
            json.dumps({"config": self.config.model_dump(), "names": self.names}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path) -> LambdaRanker:
        import lightgbm as lgb

        meta = json.loads((folder / "ranker.json").read_text(encoding="utf-8"))
        r = cls(RankerConfig(**meta["config"]))
        r.booster = lgb.Booster(model_file=str(folder / "ranker.lgb.txt"))
        r.names = list(meta["names"])
        return r


def widen(x: np.ndarray, width: int) -> np.ndarray:
    """Feature rows in a table ``width`` columns wide: the columns they lack missing (NaN)."""
    if x.shape[1] >= width:
        return x
    out = np.full((len(x), width), np.nan, np.float32)
    out[:, : x.shape[1]] = x
    return out


class WeightedFusion:
    """Score = sum over sources of ``weight * row-standardised score`` (``{source}_z`` features)."""

    def __init__(self, weights: dict[str, float]) -> None:
        self.weights = dict(weights)

    def predict_with(self, feats: np.ndarray, names: list[str]) -> np.ndarray:
        out = np.zeros(len(feats), np.float32)
        for s, w in self.weights.items():
            col = f"{s}_z"
            if col in names and w:
                out += w * feats[:, names.index(col)]
        return out

    def tune(
        self, cands: Candidates, targets: np.ndarray, steps: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0, 4.0)
    ) -> float:
        """Coordinate search of the weights for NDCG@10 of the held-out targets; returns the best NDCG."""
        best = _ndcg(self, cands, targets)
        for _ in range(2):
            for s in list(self.weights):
                for v in steps:
                    old = self.weights[s]
                    self.weights[s] = v
                    score = _ndcg(self, cands, targets)
                    if score > best + 1e-6:
                        best = score
                    else:
                        self.weights[s] = old
        return best


def _ndcg(fusion: WeightedFusion, cands: Candidates, targets: np.ndarray, k: int = 10) -> float:
    total = 0.0
    for items, feats, t in zip(cands.items, cands.features, targets, strict=True):
        hit = np.flatnonzero(items == t)
        if not len(hit):
            continue
        s = fusion.predict_with(feats, cands.names)
        rank = int((s > s[hit[0]]).sum())
        if rank < k:
            total += 1.0 / np.log2(rank + 2)
    return total / max(len(targets), 1)
