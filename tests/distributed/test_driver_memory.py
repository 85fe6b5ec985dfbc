"""The driver never holds the events: what it receives is catalog-sized or a bounded sample.

This test watches every read onto the driver in one training (Spark's ``collect``/``toPandas`` and
the Parquet files the job reads back): rows keyed by shopper arrive only as the held-out sample (at
most ``ranker_users`` histories of at most 201 events), everything else is keyed by item. The run
with the smallest driver memory Spark accepts is in ``test_cluster.py``.
"""

from __future__ import annotations

from shopsense import columns as C
from tests.distributed.conftest import SMALL_SAMPLE, Trained


def test_the_driver_gets_item_keyed_tables_and_a_bounded_sample(spark_trained: Trained):
    from shopsense.distributed.heldout import HISTORY_CAP

    reads, metrics = spark_trained.reads, spark_trained.result.metrics
    n_events, n_items = metrics["n_interactions"], metrics["n_items"]
    assert reads and metrics["heldout_users"] == SMALL_SAMPLE
    by_user = [n for cols, n in reads if C.USER in cols]
    assert by_user and max(by_user) <= SMALL_SAMPLE * (HISTORY_CAP + 1) < n_events
    config = spark_trained.settings.engine
    neighbours = max(c.neighbors for c in (config.covisit, config.itemknn) if c is not None)
    assert all(n <= n_items * neighbours for cols, n in reads if C.USER not in cols)
