"""A Spark-trained version is published like any other and served by the unchanged service."""

from __future__ import annotations

from fastapi.testclient import TestClient

from shopsense.ranking.rules import Filters
from shopsense.recommend import Recommender, RecommendRequest
from shopsense.recommend.precomputed import FOLDER, PrecomputedLists
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.versions import read_manifest
from tests.distributed.conftest import Trained


def test_the_version_is_complete_active_and_served(spark_trained: Trained):
    store, settings, result = spark_trained.store, spark_trained.settings, spark_trained.result
    assert store.active_version() == result.version
    assert read_manifest(result.path).version == result.version
    assert not (result.path / "spark-work").exists()  # the snapshot and the job's files are not published
    key = create_key(store, ["read"])[1]
    with TestClient(create_app(settings, block_on_load=True)) as client:
        r = client.get("/recommend", params={"user_id": "U259", "k": 5}, headers={"X-API-Key": key})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model_version"] == result.version
        assert len(body["items"]) == 5 and all(i["item_id"] for i in body["items"])
        bought = client.get(
            "/recommend",
            params={"user_id": "U259", "k": 3, "surface": "bought_together", "item_id": body["items"][0]["item_id"]},
            headers={"X-API-Key": key},
        )
        # the surface reads the Spark-counted table (the sample's baskets stay within one category,
        # so there is nothing to show, locally too: test_equivalence compares the counts)
        assert bought.status_code == 200
        cold = client.get("/recommend", params={"user_id": "nobody", "k": 3}, headers={"X-API-Key": key}).json()
        assert len(cold["items"]) == 3  # a shopper without history: the fallback chain over the version


def test_the_spark_job_writes_the_precomputed_lists_a_live_ranking_would_give(spark_trained: Trained):
    store, settings, result = spark_trained.store, spark_trained.settings, spark_trained.result
    lists = PrecomputedLists.load(result.path / FOLDER)
    assert lists is not None and result.metrics["precomputed_lists"] == len(lists.users) > 100
    listed = Recommender.from_store(store, settings)
    live = Recommender.from_store(store, settings, settings.online.model_copy(update={"precomputed": False}))
    assert listed.lists is not None and live.lists is None
    for user in lists.users.external_ids[:40].tolist():
        request = RecommendRequest(user, 10)
        assert listed.precomputed(listed.history(user), request, Filters(), lists.pool) is not None
        assert [r.item_id for r in listed.recommend(request)] == [r.item_id for r in live.recommend(request)]
