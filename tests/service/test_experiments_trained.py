"""An experiment over the real engines of a trained tiny shop: two trained versions served at once,
every impression of a request in the experiment recording its experiment and arm."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import KnowledgeStore, open_store
from shopsense.training import train
from tests.test_recommend import FAST, _events, _products

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, KnowledgeStore, dict[str, str]]]:
    settings = load_settings(home=tmp_path_factory.mktemp("exp") / "home")
    store = open_store(settings.store_url)
    store.upsert_products(_products())
    store.add_events(_events())
    train(store, settings, config=FAST)
    train(store, settings, config=FAST)  # a second version, made active
    hdr = {"X-API-Key": create_key(store, ["admin"])[1]}
    with TestClient(create_app(settings, block_on_load=True)) as client:
        yield client, store, hdr
    store.close()


def test_impressions_of_a_request_in_an_experiment_record_experiment_and_arm(shop) -> None:
    client, store, hdr = shop
    old, new = store.versions()["version"].tolist()
    r = client.post("/experiments", json={"name": "retrain", "arms": {"control": old, "treatment": new}}, headers=hdr)
    assert r.status_code == 201, r.text
    state = client.app.state.shopsense
    assert state.models.version == new and state.models.experiments.loaded[new] is state.models.current  # shared
    answers = {}
    for u in range(12):
        got = client.get("/recommend", params={"user_id": f"u{u}", "k": 3}, headers=hdr).json()
        assert got["experiment"] == "retrain" and len(got["items"]) == 3
        assert got["model_version"] == {"control": old, "treatment": new}[got["arm"]]
        answers[got["request_id"]] = got["arm"]
    assert set(answers.values()) == {"control", "treatment"}
    state.impressions.flush()
    for rid, arm in answers.items():
        imp = store.impressions(rid)
        assert len(imp) == 3 and (imp[C.EXPERIMENT] == "retrain").all() and (imp[C.ARM] == arm).all()
    # a search is outside this experiment (surface recommend): no experiment recorded
    s = client.get("/search", params={"q": "kettle", "user_id": "u1", "k": 2}, headers=hdr).json()
    state.impressions.flush()
    assert s["experiment"] is None and store.impressions(s["request_id"])[C.EXPERIMENT].isna().all()
    assert client.post("/experiments/retrain/stop", headers=hdr).status_code == 200
