"""Products bought together on Spark: the basket counts of :class:`~shopsense.models.complements.Complements`.

A basket is one shopper's carts and purchases with no gap of more than ``SESSION_GAP`` between
them (a running sum of "new basket" flags over each shopper's ordered events); a product counts
once per basket; baskets larger than ``MAX_BASKET`` are left out; two products share a basket by a
self-join on the basket. The counts are integers, so the table is the local one exactly; the
per-category table is computed from it on the driver by the model's own code
(:meth:`Complements.from_counts`). The pair table is not cut to a top-N per item (the local one is
not either): its size is the number of distinct pairs bought together.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.export import SEQ
from shopsense.distributed.neighbors import COL, ROW, VALUE, to_csr
from shopsense.distributed.snapshot import SparkSnapshot
from shopsense.models.complements import BASKET_EVENTS, MAX_BASKET, Complements
from shopsense.ranking.return_features import SESSION_GAP, category_codes

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def fit_complements(snap: SparkSnapshot, scratch: Path, interactions: DataFrame | None = None) -> Complements:
    """The fitted :class:`Complements` of the snapshot's interactions (default all)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    inter = snap.interactions if interactions is None else interactions
    ev = inter.where(F.col(C.EVENT_TYPE).isin(list(BASKET_EVENTS)))
    ordered = Window.partitionBy(C.USER).orderBy(C.TIMESTAMP, SEQ)
    gap = F.col(C.TIMESTAMP) - F.lag(C.TIMESTAMP).over(ordered)
    new = F.when(gap.isNull() | (gap > F.lit(SESSION_GAP)), 1).otherwise(0)
    flagged = ev.select(C.USER, C.ITEM_IDX, C.TIMESTAMP, SEQ, new.alias("new"))
    numbered = flagged.select(
        C.USER, C.ITEM_IDX, F.sum("new").over(ordered.rowsBetween(Window.unboundedPreceding, 0)).alias("basket")
    )
    in_basket = numbered.select(C.USER, "basket", C.ITEM_IDX).distinct()
    sized = in_basket.select("*", F.count(F.lit(1)).over(Window.partitionBy(C.USER, "basket")).alias("size")).where(
        F.col("size") <= MAX_BASKET
    )
    sized = sized.persist()
    a = sized.select(C.USER, "basket", F.col(C.ITEM_IDX).alias(ROW))
    b = sized.select(C.USER, "basket", F.col(C.ITEM_IDX).alias(COL))
    pairs = (
        a.join(b, [C.USER, "basket"])
        .where(F.col(ROW) != F.col(COL))
        .groupBy(ROW, COL)
        .agg(F.count(F.lit(1)).cast("double").alias(VALUE))
    )
    counts: pd.DataFrame = sized.groupBy(C.ITEM_IDX).count().toPandas()
    baskets = np.zeros(snap.n_items, np.int64)
    baskets[counts[C.ITEM_IDX].to_numpy(np.int64)] = counts["count"].to_numpy(np.int64)
    matrix = to_csr(pairs, snap.n_items, scratch)
    sized.unpersist()
    return Complements().from_counts(matrix, baskets, category_codes(snap.catalog.products)[0])
