"""The shop's events on Spark, from a Parquet snapshot (:mod:`shopsense.data.export`) or straight from
PostgreSQL (:mod:`shopsense.distributed.jdbc`): the item events with their weights and item indices,
as the local trainer's :class:`~shopsense.data.dataset.Dataset` has them.

The same rules as the local path, written as Spark expressions: which events are item events and
their weights (:mod:`shopsense.data.history`), and the item index (the catalog in the store's
order, then items that have events but no product row, in order of their first event). Only what is
catalog-sized reaches the driver: the catalog, and the ids of items missing from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import EventWeights
from shopsense.data.dataset import Dataset
from shopsense.data.export import EVENTS_FILE, SEQ, read_manifest, read_products
from shopsense.data.history import ITEM_EVENT_TYPES
from shopsense.data.idmap import IdMap
from shopsense.data.products import normalize_products

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

#: the interaction columns every Spark model reads
COLUMNS = (C.USER, C.ITEM_IDX, C.WEIGHT, C.TIMESTAMP, SEQ, C.EVENT_TYPE)


class SparkSnapshot:
    """The shop on ``spark``: ``events`` (every event, a Spark frame of the export's event columns),
    ``interactions`` (a Spark frame of :data:`COLUMNS`), ``items`` (the item index) and ``catalog`` (a
    Dataset without interactions: ids and products). Made by :meth:`from_parquet` or
    :func:`shopsense.distributed.jdbc.from_postgres`."""

    def __init__(
        self, spark: SparkSession, events: DataFrame, products: pd.DataFrame, weights: EventWeights | None = None
    ) -> None:
        from pyspark.sql import functions as F

        self.spark = spark
        self.events: DataFrame = events  # every event (searches too): the users the local Dataset counts
        item_events = events.where(
            F.col(C.EVENT_TYPE).isin(list(ITEM_EVENT_TYPES)) & F.col(C.ITEM).isNotNull() & (F.col(C.ITEM) != "")
        ).withColumn(C.WEIGHT, _weight(F.col(C.EVENT_TYPE), (weights or EventWeights()).as_dict()))
        self.items = IdMap(np.asarray(products[C.ITEM], dtype=object)).extended(
            _items_without_product(spark, item_events, products)
        )
        ids = pd.DataFrame({C.ITEM: self.items.external_ids.astype(str), C.ITEM_IDX: np.arange(len(self.items))})
        index = spark.createDataFrame(ids)
        self.interactions: DataFrame = item_events.join(F.broadcast(index), C.ITEM).select(*COLUMNS)
        aligned = products.set_index(C.ITEM).reindex(self.items.external_ids).reset_index(names=C.ITEM)
        empty = pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in zip(COLUMNS[1:4], ("int64", "float32", "float64"), strict=True)}
        )
        self.catalog = Dataset(IdMap([]), self.items, empty, normalize_products(aligned))

    @classmethod
    def from_parquet(
        cls, spark: SparkSession, folder: str | Path, weights: EventWeights | None = None
    ) -> SparkSnapshot:
        """The Parquet snapshot at ``folder`` (``shopsense export --format parquet``)."""
        read_manifest(folder)  # a missing or other-format snapshot: say to export again
        return cls(spark, spark.read.parquet(str(Path(folder) / EVENTS_FILE)), read_products(folder), weights)

    @property
    def n_items(self) -> int:
        return len(self.items)


def first_row(frame: DataFrame) -> Any:
    """The one row of an aggregate (a global ``agg`` always has one)."""
    row = frame.first()
    assert row is not None
    return row


def _weight(event_type: Column, weights: dict[str, float]) -> Column:
    """The settings' weight of each event type (1 for a type they do not name), as float32 like the
    local path (then widened: every Spark sum runs in float64, as the local bincounts do)."""
    from pyspark.sql import functions as F

    expr = F.lit(1.0)
    for name, w in weights.items():
        expr = F.when(event_type == name, F.lit(float(np.float32(w)))).otherwise(expr)
    return expr.cast("float").cast("double")


def _items_without_product(spark: SparkSession, item_events: DataFrame, products: pd.DataFrame) -> list[str]:
    """Ids of items with events but no product row, in order of their first event (time, then arrival)."""
    from pyspark.sql import functions as F

    known = spark.createDataFrame(pd.DataFrame({C.ITEM: products[C.ITEM].astype(str)}))
    first = (
        item_events.join(F.broadcast(known), C.ITEM, "left_anti")
        .groupBy(C.ITEM)
        .agg(F.min(F.struct(C.TIMESTAMP, SEQ)).alias("first"))
        .orderBy("first.timestamp", f"first.{SEQ}")
    )
    return [r[C.ITEM] for r in first.select(C.ITEM).collect()]
