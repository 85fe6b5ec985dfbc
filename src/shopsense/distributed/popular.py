"""Popularity and trend on Spark: per-item sums over the events, the arithmetic of
:class:`~shopsense.models.popular.PopularModel` on the driver over those catalog-sized sums.

Each sum is the local model's ``bincount`` (decayed weights, counts, the trend's two windows) as a
Spark aggregation, so the model is the local one but for the order of the float64 additions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.distributed.snapshot import SparkSnapshot, first_row
from shopsense.engine_config import PopularConfig
from shopsense.models.popular import DAY, PopularModel, top_category


def fit_popular(snap: SparkSnapshot, config: PopularConfig) -> PopularModel:
    """The fitted :class:`PopularModel` of the snapshot's interactions."""
    from pyspark.sql import functions as F

    cfg = config
    inter = snap.interactions
    now = first_row(inter.agg(F.max(C.TIMESTAMP)))[0] or 0.0
    age = (F.lit(float(now)) - F.col(C.TIMESTAMP)) / F.lit(DAY)
    w = F.col(C.WEIGHT) if cfg.weighted else F.lit(1.0)
    decay = F.lit(1.0) if cfg.half_life_days is None else F.pow(F.lit(0.5), age / F.lit(cfg.half_life_days))
    win = cfg.trend_window_days
    zero = F.lit(0.0)
    sums = (
        inter.groupBy(C.ITEM_IDX)
        .agg(
            F.sum(w * decay).alias("popularity"),
            F.count(F.lit(1)).alias("counts"),
            F.sum(F.when(age <= win, w).otherwise(zero)).alias("recent"),
            F.sum(F.when((age > win) & (age <= 2 * win), w).otherwise(zero)).alias("before"),
        )
        .toPandas()
    )
    n = snap.n_items
    per_item = {c: _dense(sums, c, n) for c in ("popularity", "counts", "recent", "before")}
    m = PopularModel(cfg)
    m.n_items = n
    m.popularity = per_item["popularity"].astype(np.float32)
    m.counts = per_item["counts"].astype(np.float32)
    recent, before = per_item["recent"], per_item["before"]
    m.trend = (recent * np.log1p(recent) / (before + 1.0 + recent.mean())).astype(np.float32)
    cats = snap.catalog.products[C.CATEGORY]
    codes, uniques = pd.factorize(pd.Series(cats, dtype=object).map(top_category), use_na_sentinel=True)
    m.category = np.asarray(codes, dtype=np.int64)
    m.categories = [str(c) for c in uniques]
    m.fitted = True
    return m


def _dense(sums: pd.DataFrame, column: str, n: int) -> np.ndarray:
    out = np.zeros(n, np.float64)
    out[sums[C.ITEM_IDX].to_numpy(dtype=np.int64)] = sums[column].to_numpy(dtype=np.float64)
    return out
