"""The driver never holds the events: what it receives is catalog-sized or a bounded sample.

Two tests, two claims. The first watches every read onto the driver in one training (Spark's
``collect``/``toPandas`` and the Parquet files the job reads back): rows keyed by shopper arrive only
as the held-out sample (at most ``ranker_users`` histories of at most 201 events), everything else is
keyed by item. The second runs the whole job through the CLI in a new JVM with
``spark.driver.memory=512m`` (the least Spark accepts; in local mode that JVM also runs the
executors). On the sample's 5k events it proves the job completes, publishes and records the limit
under that cap, not that it would at a data size above 512 MB: that is what the first test argues
structurally and what the scale benchmark is for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shopsense import columns as C
from shopsense.data.export import export_parquet
from tests.distributed.conftest import SMALL_SAMPLE, Trained, sample_settings, sample_store


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


def test_a_run_with_the_smallest_driver_memory_spark_accepts(tmp_path: Path):
    settings = sample_settings(tmp_path / "home")
    store = sample_store(settings)
    export_parquet(store, tmp_path / "snap")
    env = {
        **os.environ,
        "SHOPSENSE_ENGINE__SOURCES": "sparse",
        "SHOPSENSE_ENGINE__RANKER_USERS": str(SMALL_SAMPLE),
        "SHOPSENSE_ENGINE__ITEMKNN": "false",  # co-visitation alone: a shorter run proves the same
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[2] / "src"), os.environ.get("PYTHONPATH", "")]
        ),
    }
    cmd = [sys.executable, "-m", "shopsense", "--home", str(settings.home), "train", "--engine", "spark"]
    cmd += ["--snapshot", str(tmp_path / "snap"), "--conf", "spark.driver.memory=512m"]
    cmd += ["--conf", "spark.sql.shuffle.partitions=2", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["spark_driver_memory"] == "512m" and summary["heldout_users"] == SMALL_SAMPLE
    assert store.active_version() == summary["version"]
    store.close()
