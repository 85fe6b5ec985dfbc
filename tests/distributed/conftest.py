"""Spark fixtures: one local[2] session for the suite, and the sample shop trained on it once.

Everything here is marked ``spark`` and skipped without PySpark or Java."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from shopsense.config import Settings, load_settings
from shopsense.data.ingest import ingest_events, ingest_products
from shopsense.data.sample import sample_paths
from shopsense.distributed.jdbc import jdbc_jar
from shopsense.store import KnowledgeStore, open_store
from shopsense.training import TrainResult

#: the sparse engine both trainers build; ALS on (off by default), fewer sweeps to keep the suite short;
#: the fusion tuned on 10 held-out users, so that the sample the driver receives is a small part of
#: the shop's events (see test_driver_memory.py)
SMALL_SAMPLE = 10  # the least ranker_users allows
#: the sequential model: a few short epochs (two launches of PyTorch processes per training)
ENGINE = {
    "sources": "sparse",
    "als": {"factors": 32, "iterations": 10},
    "sequential": {"epochs": 3, "dim": 32},
    "refit_epochs": 1,
    "ranker_users": SMALL_SAMPLE,
}
#: the JVMs of the tests' short jobs: the client compiler only and the serial collector. The jobs are
#: seconds long on small data: the optimising compiler's work (on two cores, beside the job) never
#: pays back; measured, it halved the Spark side of a training of the sample shop (the library's
#: own defaults keep the JVM's, which suit long jobs on large data). The client compiler's frames are
#: larger: before the Spark job gave MLlib ALS a checkpoint folder, its tasks (the factors' lineage,
#: one link per sweep, to deserialise) overflowed the default 1 MB thread stack here (see
#: ``shopsense.distributed.als``); the tests now run with the default stack, as a shop's jobs do
JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"
#: shuffles of a 5k-event shop: two partitions (Spark's default 200 tasks per stage would dominate);
#: PostgreSQL's JDBC driver where the machine has it (test_postgres.py reads the store over JDBC)
CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.driver.extraJavaOptions": JVM_OPTIONS,  # local[2]: the executor runs in the driver's JVM
}
if (_jar := jdbc_jar()) is not None:
    CONF["spark.jars"] = str(_jar)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/distributed/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.spark)


def needs_spark() -> None:
    """Skip the test without PySpark or Java."""
    pytest.importorskip("pyspark")
    if shutil.which("java") is None:
        pytest.skip("Spark needs Java 17 (java is not on PATH)")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    needs_spark()
    from shopsense.distributed.session import spark_session

    session = spark_session("local[2]", CONF, app_name="shopsense-tests")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def sample_settings(home: Path, **engine: Any) -> Settings:
    return load_settings(home=home, engine={**ENGINE, **engine})


def sample_store(settings: Settings) -> KnowledgeStore:
    store = open_store(settings.store_url)
    products, events = sample_paths()
    ingest_products(store, products)
    ingest_events(store, events)
    return store


@dataclass
class Trained:
    store: KnowledgeStore
    settings: Settings
    result: TrainResult
    #: every read onto the driver during the training: (its columns, its rows)
    reads: list[tuple[set[str], int]] = field(default_factory=list)


@pytest.fixture(scope="session")
def spark_trained(spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    """The sample shop in a fresh home, trained once by the Spark job (in the suite's session),
    with every read onto the driver recorded."""
    from shopsense.distributed.job import train_on_spark

    settings = sample_settings(tmp_path_factory.mktemp("spark") / "home")
    store = sample_store(settings)
    reads: list[tuple[set[str], int]] = []
    with pytest.MonkeyPatch.context() as mp:
        watch_driver_reads(mp, reads)
        result = train_on_spark(store, settings, spark=spark)
    yield Trained(store, settings, result, reads)
    store.close()


def watch_driver_reads(mp: pytest.MonkeyPatch, reads: list[tuple[set[str], int]]) -> None:
    """Record what reaches the driver: Spark's ``collect`` and ``toPandas`` (``first`` goes through
    ``collect``), and the Parquet files the job writes on the executors and reads back with pyarrow."""
    import pyarrow.parquet as pq
    from pyspark.sql import DataFrame

    def wrap(owner: Any, name: str, columns: Any, count: Any) -> None:
        original = getattr(owner, name)

        def wrapper(*a: Any, **k: Any) -> Any:
            out = original(*a, **k)
            reads.append((set(columns(a, out)), count(out)))
            return out

        mp.setattr(owner, name, wrapper)

    wrap(DataFrame, "collect", lambda a, out: a[0].columns, len)
    wrap(DataFrame, "toPandas", lambda a, out: a[0].columns, len)
    wrap(pq, "read_table", lambda a, out: out.column_names, lambda out: out.num_rows)
