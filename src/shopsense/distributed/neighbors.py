"""Neighbour lists on Spark: the ``k`` strongest entries of every item's row of a sparse item x item
table, kept by a window per item (never a dense item x item matrix), read back on the driver as
the CSR matrix an :class:`~shopsense.models.item_item.ItemItemModel` holds.

The rule is :func:`shopsense.models.item_item.prune_rows`: values as float32, zeros dropped, the
largest first and ties to the lower item index. The lists go through a Parquet folder (written by
the executors, read with pyarrow), so the driver holds the kept entries once, as arrays.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

ROW, COL, VALUE = "row", "col", "value"


def top_neighbors(pairs: DataFrame, k: int) -> DataFrame:
    """``pairs`` (``row``, ``col``, ``value`` float64) cut to the ``k`` largest non-zero float32 values per row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    as_float = pairs.select(ROW, COL, F.col(VALUE).cast("float").alias(VALUE)).where(F.col(VALUE) != 0)
    rank = F.row_number().over(Window.partitionBy(ROW).orderBy(F.col(VALUE).desc(), F.col(COL).asc()))
    return as_float.withColumn("rank", rank).where(F.col("rank") <= k).drop("rank")


def to_csr(lists: DataFrame, n_items: int, scratch: Path) -> sp.csr_matrix:
    """The lists as an ``n_items x n_items`` float32 CSR matrix, through Parquet files under ``scratch``."""
    scratch = Path(scratch)
    lists.write.mode("overwrite").parquet(str(scratch))
    try:
        table = pq.read_table(scratch, columns=[ROW, COL, VALUE])
        rows = table.column(ROW).to_numpy().astype(np.int64)
        cols = table.column(COL).to_numpy().astype(np.int64)
        vals = table.column(VALUE).to_numpy().astype(np.float32)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    if not len(rows):
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix((vals, (rows, cols)), shape=(n_items, n_items), dtype=np.float32)
