"""Training on Spark from a PostgreSQL store: read over JDBC by the executors (the same rows as the
Parquet export), published, and served by the unchanged server from PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.export import SEQ, export_parquet
from shopsense.distributed.jdbc import jdbc_jar
from shopsense.distributed.snapshot import SparkSnapshot
from shopsense.ranking.pipeline import Engine
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from tests.distributed.conftest import ENGINE, sample_store

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(jdbc_jar() is None, reason="no PostgreSQL JDBC jar (apt-get install libpostgresql-jdbc-java)"),
]


def _rows(snap: SparkSnapshot) -> list[tuple]:
    cols = [C.USER, C.ITEM_IDX, C.WEIGHT, C.TIMESTAMP, SEQ, C.EVENT_TYPE]
    return sorted(tuple(r) for r in snap.interactions.select(*cols).collect())  # a 5k-event test shop


def test_jdbc_reads_the_same_interactions_as_the_export(spark: Any, pg_url: str, tmp_path: Path) -> None:
    from shopsense.distributed.jdbc import from_postgres

    settings = load_settings(home=tmp_path / "home", store=pg_url, engine=ENGINE)
    store = sample_store(settings)
    try:
        store.set_opted_out("U259")  # the export leaves opted-out shoppers out: so must JDBC
        export_parquet(store, tmp_path / "snap")
        parquet = SparkSnapshot.from_parquet(spark, tmp_path / "snap", settings.event_weights)
        jdbc = from_postgres(spark, store, settings.event_weights, partitions=3)
        assert jdbc.events.rdd.getNumPartitions() == 3  # ranges of seq, one query each
        assert list(jdbc.items.external_ids) == list(parquet.items.external_ids)
        rows = _rows(jdbc)
        assert rows == _rows(parquet) and len(rows) > 4000
        item = str(store.products()[C.ITEM].iloc[0])
        store.add_event_rows([{C.USER: "new", C.ITEM: item, C.EVENT_TYPE: C.VIEW, C.TIMESTAMP: 2e9}])
        assert _rows(jdbc) == rows  # an event that arrives during the training is not read by a later pass
        assert "U259" not in {r[0] for r in rows}
    finally:
        store.close()


def test_a_postgresql_shop_trains_on_spark_over_jdbc_and_is_served(spark: Any, pg_url: str, tmp_path: Path) -> None:
    from shopsense.distributed.job import train_on_spark

    # the sources that read the frames JDBC gives (above: the export's rows) as the Parquet ones do are
    # compared on Parquet (test_equivalence.py): ALS and the sequential model (two launches of PyTorch)
    # are left out here; the content source stays (the job writes the text vectors to PostgreSQL)
    engine = {**ENGINE, "als": None, "sequential": None}
    settings = load_settings(home=tmp_path / "home", store=pg_url, engine=engine)
    store = sample_store(settings)
    try:
        result = train_on_spark(store, settings, spark=spark, read="jdbc")
        assert list(Engine.load(result.path / "engine").models) == ["itemknn", "covisit", "content"]
        vectors = result.metrics["text_vectors"]
        assert vectors["encoded"] == vectors["texts"] > 300  # encoded on the executors, cached in PostgreSQL
        assert store.active_version() == result.version
        assert not (result.path / "spark-work").exists()
        key = create_key(store, ["read"])[1]
        with TestClient(create_app(settings, block_on_load=True)) as client:
            r = client.get("/recommend", params={"user_id": "U259", "k": 5}, headers={"X-API-Key": key})
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == result.version and len(r.json()["items"]) == 5
    finally:
        store.close()
