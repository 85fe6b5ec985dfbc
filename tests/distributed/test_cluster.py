"""The Spark job on a standalone cluster started in the test, with the least memory Spark accepts.

A master and one worker on loopback, started from the launcher PySpark ships (``bin/spark-class``:
the pip package has no ``sbin/start-master.sh``, which runs the same class through
``spark-daemon.sh``), and ``shopsense train --engine spark --master spark://127.0.0.1:PORT`` in a
process of its own with ``spark.driver.memory=512m`` and ``spark.executor.memory=512m`` (the least
Spark accepts for either). On the sample's 5k events this proves that the job runs on a real
cluster (executors in another JVM, reading the snapshot from the shared path), publishes a
version the store serves, and needs no more than those heaps at this size; it does not prove the
same above 512 MB of events, which ``test_driver_memory.py`` argues structurally (the driver gets
item-keyed tables and a bounded sample) and the scale benchmark is for.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shopsense.data.export import export_parquet
from tests.distributed.conftest import JVM_OPTIONS, SMALL_SAMPLE, needs_spark, sample_settings, sample_store
from tests.servers import free_port

START_TIMEOUT_S = 180


def _wait_for(log: Path, text: str, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while text not in (log.read_text(errors="replace") if log.exists() else ""):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.5)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """``spark://127.0.0.1:PORT`` with one worker (2 cores, 1 GB), and the environment to reach it."""
    needs_spark()
    from pyspark.find_spark_home import _find_spark_home

    home = _find_spark_home()
    # the master's and worker's JVMs as the suite's (tests/distributed/conftest.py JVM_OPTIONS)
    env = {**os.environ, "SPARK_HOME": home, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_DAEMON_JAVA_OPTS": JVM_OPTIONS}
    launcher = str(Path(home) / "bin" / "spark-class")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        master_log = tmp_path / "master.log"
        with open(master_log, "w") as out:
            master = [launcher, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port)]
            procs.append(subprocess.Popen([*master, "--webui-port", "0"], env=env, stdout=out, stderr=out))
        _wait_for(master_log, "New state: ALIVE", procs[0], "the Spark master")
        with open(tmp_path / "worker.log", "w") as out:
            worker = [launcher, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", "2"]
            worker += ["--memory", "1g", "--webui-port", "0", "--work-dir", str(tmp_path / "work"), url]
            procs.append(subprocess.Popen(worker, env=env, stdout=out, stderr=out))
        _wait_for(master_log, "Registering worker", procs[1], "the Spark worker")
        yield url, env
    finally:
        for p in reversed(procs):  # the worker first: it stops its executors
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()


def test_the_job_runs_on_a_standalone_cluster_with_the_least_memory(
    cluster: tuple[str, dict[str, str]], tmp_path: Path
):
    url, env = cluster
    settings = sample_settings(tmp_path / "home")
    store = sample_store(settings)
    export_parquet(store, tmp_path / "snap")  # on the path every executor reads (one machine here)
    env = {
        **env,
        "SHOPSENSE_ENGINE__SOURCES": "sparse",
        "SHOPSENSE_ENGINE__RANKER_USERS": str(SMALL_SAMPLE),
        "SHOPSENSE_ENGINE__ITEMKNN": "false",  # co-visitation alone: a shorter run proves the same
        # the sequential model through TorchDistributor's barrier tasks on the cluster's executor: short,
        # and one launch (no refit on every window: a second launch of the same kind, which the suite's
        # local[2] training runs, test_equivalence.py)
        "SHOPSENSE_ENGINE__SEQUENTIAL__EPOCHS": "2",
        "SHOPSENSE_ENGINE__SEQUENTIAL__DIM": "32",
        "SHOPSENSE_ENGINE__REFIT_EPOCHS": "0",
        "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2] / "src"), env.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "shopsense", "--home", str(settings.home), "train", "--engine", "spark"]
    cmd += ["--master", url, "--snapshot", str(tmp_path / "snap"), "--json"]
    for conf in ("spark.driver.memory=512m", "spark.executor.memory=512m", "spark.sql.shuffle.partitions=2"):
        cmd += ["--conf", conf]
    for jvm in ("driver", "executor"):
        cmd += ["--conf", f"spark.{jvm}.extraJavaOptions={JVM_OPTIONS}"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["spark_master"] == url and summary["spark_driver_memory"] == "512m"
    assert summary["heldout_users"] == SMALL_SAMPLE and summary["n_items"] == 360
    assert store.active_version() == summary["version"]
    for source in ("covisit", "sequential", "content"):
        assert (Path(summary["path"]) / "engine" / source / "params.json").exists(), source
    assert summary["text_vectors"]["encoded"] == 360  # on the cluster's executor
    store.close()
