"""Co-visitation counts on Spark: :class:`~shopsense.models.covisit.CoVisitModel`'s pairs, weights,
normalisation and pruning as joins and aggregations.

Each user's item events are numbered in order (time, then arrival: the local trainer's order); a
pair is an event and the one ``d`` steps later for ``d`` in ``1..window``, found by an equi-join on
(user, position + d), so the work grows with events x window, never with a user's length squared.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shopsense import columns as C
from shopsense.data.export import SEQ
from shopsense.distributed.neighbors import COL, ROW, VALUE, to_csr, top_neighbors
from shopsense.distributed.snapshot import SparkSnapshot, first_row
from shopsense.engine_config import CoVisitConfig
from shopsense.models.covisit import CoVisitModel

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame


def fit_covisit(
    snap: SparkSnapshot, config: CoVisitConfig, scratch: Path, interactions: DataFrame | None = None
) -> CoVisitModel:
    """The fitted :class:`CoVisitModel` (``interactions``: a subset of the snapshot's, default all)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    cfg = config
    inter = snap.interactions if interactions is None else interactions
    w_max = first_row(inter.agg(F.max(C.WEIGHT)))[0]
    scale = F.col(C.WEIGHT) / F.lit(float(w_max)) if w_max and w_max > 0 else F.lit(1.0)
    order = Window.partitionBy(C.USER).orderBy(C.TIMESTAMP, SEQ)
    ev = inter.select(
        C.USER, C.ITEM_IDX, C.TIMESTAMP, scale.alias("w"), F.row_number().over(order).alias("pos")
    ).persist()
    steps = F.explode(F.sequence(F.lit(1), F.lit(cfg.window))).alias("d")
    a = ev.select("*", steps).select(
        C.USER,
        (F.col("pos") + F.col("d")).alias("pos"),
        "d",
        F.col(C.ITEM_IDX).alias("a"),
        F.col(C.TIMESTAMP).alias("ts_a"),
        F.col("w").alias("w_a"),
    )
    b = ev.select(
        C.USER, "pos", F.col(C.ITEM_IDX).alias("b"), F.col(C.TIMESTAMP).alias("ts_b"), F.col("w").alias("w_b")
    )
    pairs = a.join(b, [C.USER, "pos"]).where(F.col("a") != F.col("b"))
    if cfg.time_window_s is not None:
        pairs = pairs.where(F.col("ts_b") - F.col("ts_a") <= F.lit(cfg.time_window_s))
    # each step's factors computed here by Python's arithmetic, exactly the local model's scalars
    closeness = [1.0 / d**cfg.distance_power for d in range(1, cfg.window + 1)]
    forward_w = F.element_at(F.array(*[F.lit(c) for c in closeness]), F.col("d"))
    backward_w = F.element_at(F.array(*[F.lit(cfg.backward_weight * c) for c in closeness]), F.col("d"))
    forward = pairs.select(F.col("a").alias(ROW), F.col("b").alias(COL), (forward_w * F.col("w_b")).alias(VALUE))
    both = forward
    if cfg.backward_weight > 0:
        back = backward_w * F.col("w_a")
        both = forward.unionByName(pairs.select(F.col("b").alias(ROW), F.col("a").alias(COL), back.alias(VALUE)))
    counts = both.groupBy(ROW, COL).agg(F.sum(VALUE).alias(VALUE))
    pop = inter.groupBy(C.ITEM_IDX).agg((F.count(F.lit(1)) + F.lit(1.0)).alias("pop"))
    norm = (
        counts.join(F.broadcast(pop.select(F.col(C.ITEM_IDX).alias(ROW), F.col("pop").alias("pop_r"))), ROW)
        .join(F.broadcast(pop.select(F.col(C.ITEM_IDX).alias(COL), F.col("pop").alias("pop_c"))), COL)
        .select(
            ROW,
            COL,
            (F.col(VALUE) / (_power(F.col("pop_r"), cfg.alpha) * _power(F.col("pop_c"), 1 - cfg.alpha))).alias(VALUE),
        )
    )
    model = CoVisitModel(cfg)
    model.n_items = snap.n_items
    model.sim = to_csr(top_neighbors(norm, cfg.neighbors), snap.n_items, scratch)
    model.fitted = True
    ev.unpersist()
    return model


def _power(x: Column, p: float) -> Column:
    """``x ** p`` as numpy computes it: numpy takes a square root for 0.5 and the value itself for 1."""
    from pyspark.sql import functions as F

    if p == 0.5:
        return F.sqrt(x)
    if p == 1.0:
        return x
    if p == 0.0:
        return F.lit(1.0)
    return F.pow(x, F.lit(float(p)))
