"""The held-out stage on Spark: each sampled user's last interaction held out, the sources fitted on
the rest, and the fusion weights tuned on the driver from those users' bounded histories.

What the local :meth:`shopsense.ranking.pipeline.Engine.fit` does between fitting on the held-out
split and refitting on everything, with the same tuning functions (``tune_fusion``,
``tune_for_tail``, ``hit_rate_by_rank``). Users are sampled by a hash of their id and the seed
(the local trainer draws from a random generator over user indices, so the two samples differ:
the fusion weights are compared by their held-out NDCG, not by value). The driver receives at most
``ranker_users`` histories of at most :data:`HISTORY_CAP` events each, whatever the event count.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from shopsense import columns as C
from shopsense.data.export import SEQ
from shopsense.distributed.snapshot import SparkSnapshot
from shopsense.engine_config import EngineConfig
from shopsense.models.base import Histories, Model
from shopsense.ranking.pipeline import INTENT_EVENTS, MIN_INTENT_TARGETS, Engine, _history_mask, hit_rate_by_rank
from shopsense.ranking.ranker import WeightedFusion
from shopsense.ranking.tuning import NOVELTY, TAIL_BIAS, heldout_ndcg, novelty_z, tune_for_tail, tune_fusion

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

#: latest events per held-out user sent to the driver (the item-item sources read the last 200)
HISTORY_CAP = 200
FROM_END = "from_end"


@dataclass
class HeldOut:
    """The held-out split: ``inner`` (a Spark frame of the interactions left to fit on), and on the
    driver the sampled users' histories in it, their held-out items and those items' event types."""

    inner: DataFrame
    histories: Histories
    targets: np.ndarray
    target_types: np.ndarray
    inner_popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))


def hold_out(snap: SparkSnapshot, config: EngineConfig, scratch: Path) -> HeldOut:
    """Hold out the last interaction of up to ``config.ranker_users`` users with 3+ interactions."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    inter = snap.interactions
    by_user = Window.partitionBy(C.USER)
    newest_first = by_user.orderBy(F.col(C.TIMESTAMP).desc(), F.col(SEQ).desc())
    numbered = inter.select(
        "*", (F.row_number().over(newest_first) - 1).alias(FROM_END), F.count(F.lit(1)).over(by_user).alias("_n")
    )
    eligible = numbered.where(F.col("_n") >= 3).select(C.USER).distinct()
    sampled = (
        eligible.orderBy(F.xxhash64(C.USER, F.lit(config.seed)), C.USER)
        .limit(config.ranker_users)
        .select(C.USER, F.lit(True).alias("_held"))
    )
    marked = numbered.join(sampled, C.USER, "left").fillna(False, subset=["_held"])
    marked.write.mode("overwrite").parquet(str(scratch / "split"))
    marked = snap.spark.read.parquet(str(scratch / "split"))  # one sample, however often it is read
    inner = marked.where(~(F.col("_held") & (F.col(FROM_END) == 0))).select(*inter.columns)
    near = marked.where(F.col("_held") & (F.col(FROM_END) <= HISTORY_CAP)).select(
        C.USER, C.ITEM_IDX, C.WEIGHT, C.TIMESTAMP, SEQ, C.EVENT_TYPE, FROM_END
    )
    near.write.mode("overwrite").parquet(str(scratch / "heldout"))
    df = pq.read_table(scratch / "heldout").to_pandas()
    shutil.rmtree(scratch / "heldout", ignore_errors=True)
    df = df.sort_values([C.USER, C.TIMESTAMP, SEQ], kind="stable")
    last = df[FROM_END] == 0
    targets = df[last]
    hist = df[~last]
    users = targets[C.USER].to_numpy()
    groups = {u: g for u, g in hist.groupby(C.USER, sort=False)}
    items, weights, times = [], [], []
    for u in users:
        g = groups[u]
        items.append(g[C.ITEM_IDX].to_numpy(np.int64))
        weights.append(g[C.WEIGHT].to_numpy(np.float32))
        times.append(g[C.TIMESTAMP].to_numpy(np.float64))
    counts: pd.DataFrame = inner.groupBy(C.ITEM_IDX).count().toPandas()
    pop = np.zeros(snap.n_items, np.float64)
    pop[counts[C.ITEM_IDX].to_numpy(np.int64)] = counts["count"].to_numpy(np.float64)
    return HeldOut(
        inner,
        Histories(items, weights, times),
        targets[C.ITEM_IDX].to_numpy(np.int64),
        targets[C.EVENT_TYPE].to_numpy(dtype=object),
        pop,
    )


def tune(models: dict[str, Model], held: HeldOut, config: EngineConfig, n_items: int) -> tuple[Engine, dict[str, Any]]:
    """An engine holding the held-out split's ``models`` with its fusion tuned on ``held`` (as
    ``Engine.fit`` tunes it), and the metrics of the tuning. The caller swaps in the full fits."""
    eng = Engine(config)
    eng.models, eng.n_items = dict(models), n_items
    metrics: dict[str, Any] = {}
    hist, targets = held.histories, held.targets
    if not len(targets):
        eng.fusion = WeightedFusion({name: 1.0 for name in models})
        return eng, metrics
    exclude = _history_mask(hist, n_items, targets)
    tail_item = held.inner_popularity <= config.tail_max_count
    terms = {NOVELTY: novelty_z(held.inner_popularity), TAIL_BIAS: tail_item.astype(np.float32)}
    z, local = eng._heldout_shortlist(hist, exclude, targets, terms, tail_item)
    sources = {n: v for n, v in z.items() if n in models}
    eng.fusion, metrics["heldout_ndcg@10_fusion"] = tune_fusion(sources, local)
    metrics["heldout_ndcg@10_single"] = {n: heldout_ndcg({n: 1.0}, z, local) for n in sources}
    tail = tail_item[targets]
    if config.tail_tolerance > 0 and tail.sum() >= 20:
        eng.fusion, tail_metrics = tune_for_tail(eng.fusion.weights, z, local, tail, config.tail_tolerance)
        metrics.update(tail_metrics)
    intent = np.isin(held.target_types, INTENT_EVENTS)
    over = intent if intent.sum() >= MIN_INTENT_TARGETS else np.ones(len(targets), bool)
    new_target = np.array([t not in set(h.tolist()) for h, t in zip(hist.items, targets, strict=True)])
    eng.discovery_hit_rate = hit_rate_by_rank(eng.fusion.weights, z, local, new_target, over)
    metrics["discovery_hit_rate_over"] = "carts and purchases" if over is intent else "all events"
    metrics["heldout_users"] = len(targets)
    return eng, metrics
