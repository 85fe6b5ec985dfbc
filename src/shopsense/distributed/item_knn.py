"""Item-kNN on Spark: :class:`~shopsense.models.item_item.ItemKNNModel`'s cosine of items' binary
user vectors with shrinkage, as a self-join of (user, item) pairs on the user.

The co-occurrence counts are integers and the cosine takes the local model's float64 operations in
the same order, so the kept neighbour lists are the local ones exactly. The join's work is the sum
over users of their distinct items squared, as the local ``X.T @ X``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from shopsense import columns as C
from shopsense.distributed.neighbors import COL, ROW, VALUE, to_csr, top_neighbors
from shopsense.distributed.snapshot import SparkSnapshot
from shopsense.engine_config import ItemKNNConfig
from shopsense.models.item_item import ItemKNNModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def fit_item_knn(
    snap: SparkSnapshot, config: ItemKNNConfig, scratch: Path, interactions: DataFrame | None = None
) -> ItemKNNModel:
    """The fitted :class:`ItemKNNModel` (``interactions``: a subset of the snapshot's, default all)."""
    from pyspark.sql import functions as F

    inter = snap.interactions if interactions is None else interactions
    pairs = inter.select(C.USER, C.ITEM_IDX).distinct().persist()
    norms = pairs.groupBy(C.ITEM_IDX).agg(F.sqrt(F.count(F.lit(1)).cast("double")).alias("norm"))
    a = pairs.select(C.USER, F.col(C.ITEM_IDX).alias(ROW))
    b = pairs.select(C.USER, F.col(C.ITEM_IDX).alias(COL))
    co = a.join(b, C.USER).where(F.col(ROW) != F.col(COL)).groupBy(ROW, COL).agg(F.count(F.lit(1)).alias("co"))
    cosine = (
        co.join(F.broadcast(norms.select(F.col(C.ITEM_IDX).alias(ROW), F.col("norm").alias("n_r"))), ROW)
        .join(F.broadcast(norms.select(F.col(C.ITEM_IDX).alias(COL), F.col("norm").alias("n_c"))), COL)
        .select(
            ROW,
            COL,
            (F.col("co").cast("double") / (F.col("n_r") * F.col("n_c") + F.lit(float(config.shrink)))).alias(VALUE),
        )
    )
    model = ItemKNNModel(config)
    model.n_items = snap.n_items
    model.sim = to_csr(top_neighbors(cosine, config.neighbors), snap.n_items, scratch)
    model.fitted = True
    pairs.unpersist()
    return model
