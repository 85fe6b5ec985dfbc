"""Learned re-ranker: LightGBM LambdaRank over the candidate features of :mod:`shopsense.search.features`.

Trained from graded judgements (query, product, relevance) or from logged search clicks
(:func:`clicks_to_judgements`). Candidates without a judgement count as irrelevant (gain 0), which
is exactly how the full-ranking metric counts them. LightGBM's lambdarank wants integer labels, so
graded relevance is quantised to thirds and each level's gain is set to ``2^g - 1`` of its grade:
the objective optimises the same exponential-gain NDCG the benchmark reports.

Saved as LightGBM's own text model file plus ``params.json`` (no pickle).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.artifacts import read_params
from shopsense.exceptions import NotFittedError, ShopsenseError
from shopsense.search.features import FEATURES

FORMAT_VERSION = 1
LEVELS_PER_GRADE = 3  # 1/3-steps: Home Depot means of three raters are multiples of 1/3 (or 1/4: rounded)
MAX_GRADE = 4.0  # labels beyond are clipped

DEFAULT_PARAMS: dict[str, float | int | str] = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "ndcg_eval_at": "10",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambdarank_truncation_level": 20,
    "verbose": -1,
    "num_threads": 2,
    "seed": 7,
}


def grade_levels(gain_grades: np.ndarray) -> np.ndarray:
    """Graded gains (0 = irrelevant, e.g. Home Depot relevance - 1) -> integer levels for lambdarank."""
    g = np.clip(np.nan_to_num(np.asarray(gain_grades, dtype=np.float64)), 0, MAX_GRADE)
    return np.rint(g * LEVELS_PER_GRADE).astype(np.int32)


def label_gain() -> list[float]:
    """Gain of each integer level: 2^(level / LEVELS_PER_GRADE) - 1."""
    n = int(MAX_GRADE * LEVELS_PER_GRADE) + 1
    return [float(2 ** (i / LEVELS_PER_GRADE) - 1) for i in range(n)]


class Reranker:
    """LambdaRank model over candidate feature matrices."""

    def __init__(self, num_rounds: int = 300, params: dict | None = None) -> None:
        self.num_rounds = int(num_rounds)
        self.params = {**DEFAULT_PARAMS, **(params or {})}
        self.booster: Any = None
        self.features: tuple[str, ...] = FEATURES

    @property
    def fitted(self) -> bool:
        return self.booster is not None

    def fit(self, groups: list[np.ndarray], gains: list[np.ndarray]) -> Reranker:
        """Train on one feature matrix and one gain vector (0 = irrelevant) per query."""
        import lightgbm as lgb

        keep = [i for i, (x, g) in enumerate(zip(groups, gains, strict=True)) if len(x) > 1 and np.any(g > 0)]
        if not keep:
            raise ShopsenseError("no query with a relevant candidate to learn from: judged products were not retrieved")
        X = np.vstack([groups[i] for i in keep]).astype(np.float32)
        y = np.concatenate([grade_levels(gains[i]) for i in keep])
        sizes = [len(groups[i]) for i in keep]
        params = {**self.params, "label_gain": label_gain()}
        data = lgb.Dataset(X, y, group=sizes, feature_name=list(self.features), free_raw_data=True)
        self.booster = lgb.train(params, data, num_boost_round=self.num_rounds)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.booster is None:
            raise NotFittedError("the re-ranker is not trained: call fit() or load() first")
        if len(X) == 0:
            return np.zeros(0, dtype=np.float32)
        # num_threads=1: one query's few hundred rows are faster on one thread than split across two
        return np.asarray(self.booster.predict(X, num_threads=1), dtype=np.float32)

    def feature_importance(self) -> dict[str, float]:
        if self.booster is None:
            return {}
        imp = self.booster.feature_importance(importance_type="gain")
        return {f: float(v) for f, v in sorted(zip(self.features, imp, strict=True), key=lambda x: -x[1])}

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path) -> Path:
        if self.booster is None:
            raise NotFittedError("nothing to save: the re-ranker is not trained")
        p = Path(path)
        p.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(str(p / "lambdarank.txt"))
        meta = {"format_version": FORMAT_VERSION, "features": list(self.features), "num_rounds": self.num_rounds}
        (p / "params.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        return p

    @classmethod
    def load(cls, path: str | Path) -> Reranker:
        import lightgbm as lgb

        p = Path(path)
        meta = read_params(p / "params.json", what=f"re-ranker at {p}", format_version=FORMAT_VERSION)
        if tuple(meta["features"]) != FEATURES:
            raise ShopsenseError(f"re-ranker at {p} was trained on other features; retrain it")
        r = cls(num_rounds=meta["num_rounds"])
        r.booster = lgb.Booster(model_file=str(p / "lambdarank.txt"))
        return r


#: how much each logged outcome of a search says about relevance (a gain grade)
CLICK_GAINS = {C.CLICK: 1.0, C.VIEW: 0.5, C.FAVORITE: 1.5, C.ADD_TO_CART: 1.5, C.PURCHASE: 2.0}


def clicks_to_judgements(events: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judged queries from logged searches: ``(queries, qrels)`` in the engine's training format.

    A search event (``event_type="search"`` with ``query`` and ``request_id``) becomes a query; the
    events that quote its ``request_id`` become judgements (click 1, add-to-cart 1.5, purchase 2;
    the strongest per product). ``qrels.relevance`` is the gain grade, so train with ``gain_offset=0``.
    """
    cols = [C.EVENT_TYPE, C.QUERY, C.REQUEST_ID, C.ITEM]
    if events.empty or not set(cols) <= set(events.columns):
        return pd.DataFrame(columns=["query_id", "query"]), pd.DataFrame(columns=["query_id", C.ITEM, "relevance"])
    ev = events[events[C.REQUEST_ID].notna()]
    searches = ev[(ev[C.EVENT_TYPE] == C.SEARCH) & ev[C.QUERY].notna()].drop_duplicates(C.REQUEST_ID)
    outcomes = ev[ev[C.EVENT_TYPE].isin(list(CLICK_GAINS)) & ev[C.ITEM].notna()]
    outcomes = outcomes[outcomes[C.REQUEST_ID].isin(set(searches[C.REQUEST_ID]))]
    qrels = pd.DataFrame(
        {
            "query_id": outcomes[C.REQUEST_ID].astype(str).to_numpy(),
            C.ITEM: outcomes[C.ITEM].astype(str).to_numpy(),
            "relevance": outcomes[C.EVENT_TYPE].map(CLICK_GAINS).to_numpy(dtype=float),
        }
    )
    qrels = qrels.groupby(["query_id", C.ITEM], as_index=False)["relevance"].max()
    queries = pd.DataFrame(
        {"query_id": searches[C.REQUEST_ID].astype(str).to_numpy(), "query": searches[C.QUERY].astype(str).to_numpy()}
    )
    queries = queries[queries["query_id"].isin(set(qrels["query_id"]))].reset_index(drop=True)
    return queries, qrels.reset_index(drop=True)
