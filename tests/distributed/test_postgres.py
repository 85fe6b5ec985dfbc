"""Training on Spark from a PostgreSQL store: the job reads the store through its Parquet snapshot
(``shopsense export``'s streamed reader), and the unchanged server serves the version from PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from tests.distributed.conftest import ENGINE, sample_store

pytestmark = pytest.mark.postgres


def test_a_postgresql_shop_trains_on_spark_and_is_served(spark: Any, pg_url: str, tmp_path: Path) -> None:
    from shopsense.distributed.job import train_on_spark

    settings = load_settings(home=tmp_path / "home", store=pg_url, engine=ENGINE)
    store = sample_store(settings)
    try:
        result = train_on_spark(store, settings, spark=spark)
        assert store.active_version() == result.version
        key = create_key(store, ["read"])[1]
        with TestClient(create_app(settings, block_on_load=True)) as client:
            r = client.get("/recommend", params={"user_id": "U259", "k": 5}, headers={"X-API-Key": key})
            assert r.status_code == 200, r.text
            assert r.json()["model_version"] == result.version and len(r.json()["items"]) == 5
    finally:
        store.close()
