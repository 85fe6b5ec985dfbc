"""ALS on Spark MLlib (``pyspark.ml.recommendation.ALS``, implicit preferences): item factors for
:class:`~shopsense.models.als.ALSModel`, which folds users in from their live history when serving.

The input is the local model's: each (user, item)'s summed event weights, dampened by ``log1p``;
the knobs are the local ones (factors, regularization, alpha, iterations, seed). MLlib is another
solver (block-partitioned, its regularisation scaled by each row's number of ratings), so its
factors are not the ``implicit`` library's: the two are compared by held-out NDCG, not entry by
entry. MLlib needs integer user ids: users are numbered on the executors (a distinct, then each
partition's offset from a per-partition count: the driver sees one number per partition).
Items without events get zero factors (the local model maps them from text vectors, which the
Spark job does not compute).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow.parquet as pq

from shopsense import columns as C
from shopsense.distributed.snapshot import SparkSnapshot
from shopsense.engine_config import ALSConfig
from shopsense.models.als import ALSModel

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

USER_ID = "user_int"
#: ALS's user and item blocks: a few per core of a small job (MLlib's default is 10)
BLOCKS = 4
#: every this many sweeps MLlib cuts the factors' lineage by writing them to the checkpoint folder
CHECKPOINT_INTERVAL = 5
#: the checkpoint folders this module set on a SparkContext (a shop's own setting is left alone)
_OWN_CHECKPOINT_DIRS: set[str] = set()


def fit_als(snap: SparkSnapshot, config: ALSConfig, scratch: Path, interactions: DataFrame | None = None) -> ALSModel:
    """The fitted :class:`ALSModel` (``interactions``: a subset of the snapshot's, default all)."""
    from pyspark.ml.recommendation import ALS
    from pyspark.sql import functions as F

    cfg = config
    inter = snap.interactions if interactions is None else interactions
    scratch = Path(scratch)
    _checkpoint_into(inter.sparkSession.sparkContext, scratch / "checkpoints")
    ratings = inter.groupBy(C.USER, C.ITEM_IDX).agg(F.log1p(F.sum(C.WEIGHT)).alias("rating"))
    users = dense_ids(inter.select(C.USER).distinct(), scratch / "users")
    data = ratings.join(users, C.USER).select(USER_ID, F.col(C.ITEM_IDX).cast("int").alias(C.ITEM_IDX), "rating")
    als = ALS(
        rank=cfg.factors,
        maxIter=cfg.iterations,
        regParam=cfg.regularization,
        alpha=cfg.alpha,
        implicitPrefs=True,
        seed=cfg.seed,
        userCol=USER_ID,
        itemCol=C.ITEM_IDX,
        ratingCol="rating",
        numUserBlocks=BLOCKS,
        numItemBlocks=BLOCKS,
        checkpointInterval=CHECKPOINT_INTERVAL,
    )
    fitted = als.fit(data)
    out = scratch / "item_factors"
    fitted.itemFactors.write.mode("overwrite").parquet(str(out))
    try:
        table = pq.read_table(out)
        ids = table.column("id").to_numpy().astype(np.int64)
        vectors = np.asarray(table.column("features").to_pylist(), dtype=np.float32).reshape(len(ids), cfg.factors)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    factors = np.zeros((snap.n_items, cfg.factors), np.float32)
    factors[ids] = vectors
    model = ALSModel(cfg)
    model.n_items = snap.n_items
    model.item_factors = factors
    model.fitted = True
    return model


def _checkpoint_into(sc: Any, folder: Path) -> None:
    """Give MLlib a checkpoint folder unless the shop set one (``SparkContext.setCheckpointDir``).
    Without one MLlib ignores ``checkpointInterval``: each sweep lengthens the factors' lineage, and
    with many sweeps deserialising it overflows a task's thread stack (a StackOverflowError; seen
    here with the tests' JVM options at 10 sweeps). ``folder`` is under the job's scratch folder,
    which a cluster's executors must share like the rest of the job's work (it is removed after)."""
    current = sc.getCheckpointDir()
    if current is None or current in _OWN_CHECKPOINT_DIRS:
        sc.setCheckpointDir(str(folder))
        _OWN_CHECKPOINT_DIRS.add(sc.getCheckpointDir())


def dense_ids(values: DataFrame, scratch: Path) -> DataFrame:
    """``values`` (one column) with a dense integer id 0..n-1 in :data:`USER_ID`, numbered on the executors
    and written to ``scratch`` (so the numbering is fixed however often the result is read)."""
    from pyspark.sql import functions as F

    tagged = values.select("*", F.spark_partition_id().alias("_part"), F.monotonically_increasing_id().alias("_mid"))
    tagged.write.mode("overwrite").parquet(str(scratch))
    tagged = values.sparkSession.read.parquet(str(scratch))
    counts = sorted((r["_part"], r["count"]) for r in tagged.groupBy("_part").count().collect())
    offsets, total = {}, 0
    for part, n in counts:
        offsets[part] = total
        total += n
    offset = F.element_at(F.create_map(*[F.lit(x) for kv in offsets.items() for x in kv]), F.col("_part"))
    # monotonically_increasing_id = partition << 33 | row within the partition
    row = F.col("_mid") - F.shiftleft(F.col("_part").cast("long"), 33)
    return tagged.select(*values.columns, (offset + row).cast("int").alias(USER_ID))
