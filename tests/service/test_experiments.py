"""``/experiments`` over HTTP, and requests in an experiment: answered by their arm's version (or
both arms' interleaved), the arm in the response and in every impression."""

from __future__ import annotations

from collections import Counter

import pytest

from shopsense import columns as C
from tests.service.conftest import Env


@pytest.fixture
def two(env: Env) -> Env:
    """The app with a second complete version (v1 stays the active one)."""
    env.store.register_version("v2", status="complete")
    env.store.register_version("v3", status="training")
    return env


def _start(env: Env, **body) -> dict:
    r = env.client.post(
        "/experiments",
        json={"name": "exp", "arms": {"control": "v1", "treatment": "v2"}, **body},
        headers=env.h("admin"),
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_start_is_refused_with_the_reason(two: Env) -> None:
    c, admin = two.client, two.h("admin")
    r = c.post("/experiments", json={"name": "x", "arms": {"control": "v1", "treatment": "v9"}}, headers=admin)
    assert r.status_code == 409 and "unknown model version 'v9'" in r.json()["detail"]
    r = c.post("/experiments", json={"name": "x", "arms": {"control": "v1", "treatment": "v3"}}, headers=admin)
    assert r.status_code == 409 and "'v3' is training, not complete" in r.json()["detail"]
    r = c.post("/experiments", json={"name": "x", "arms": {"c": "v1", "t": "v2"}, "surface": "home"}, headers=admin)
    assert r.status_code == 422 and "unknown surface 'home'" in r.json()["detail"]
    r = c.post("/experiments", json={"name": "x", "arms": {"c": "v1", "t": "v2"}, "mode": "bandit"}, headers=admin)
    assert r.status_code == 422
    assert c.get("/experiments", headers=admin).json() == []


def test_a_request_in_an_experiment_is_answered_and_logged_with_its_arm(two: Env) -> None:
    c = two.client
    started = _start(two, split=[50, 50])
    assert started["status"] == "running" and "salt" not in started
    seen: dict[str, str] = {}
    for n in range(40):
        user = f"shopper-{n}"
        r = c.get("/recommend", params={"user_id": user, "k": 3}, headers=two.h("read")).json()
        assert r["experiment"] == "exp" and r["arm"] in ("control", "treatment")
        assert r["model_version"] == {"control": "v1", "treatment": "v2"}[r["arm"]]
        again = c.get("/recommend", params={"user_id": user, "k": 3}, headers=two.h("read")).json()
        assert again["arm"] == r["arm"]  # sticky
        seen[r["request_id"]] = r["arm"]
    assert set(Counter(seen.values())) == {"control", "treatment"}
    two.client.app.state.shopsense.impressions.flush()
    imp = two.store.experiment_impressions("exp")
    logged = imp.groupby(C.REQUEST_ID)[C.ARM].agg(set).to_dict()
    assert all(logged[rid] == {arm} for rid, arm in seen.items())
    assert set(imp[C.MODEL_VERSION]) == {"v1", "v2"}
    assert (imp[imp[C.ARM] == "treatment"][C.MODEL_VERSION] == "v2").all()
    # search is not in this experiment (surface recommend)
    s = c.get("/search", params={"q": "shoe", "user_id": "shopper-1"}, headers=two.h("read")).json()
    assert s["experiment"] is None and s["arm"] is None and s["model_version"] == "v1"
    # the report reads them back
    rep = c.get("/experiments/exp/report", headers=two.h("admin")).json()
    assert rep["arms"]["control"]["users"] + rep["arms"]["treatment"]["users"] == 40
    assert set(rep["comparison"]) >= {"control", "arms", "srm"}
    # stopped: everyone gets the default again, unrecorded
    assert c.post("/experiments/exp/stop", headers=two.h("admin")).json()["status"] == "stopped"
    r = c.get("/recommend", params={"user_id": "shopper-1"}, headers=two.h("read")).json()
    assert r["experiment"] is None and r["model_version"] == "v1"
    assert c.post("/experiments/exp/stop", headers=two.h("admin")).status_code == 409
    assert c.post("/experiments/nope/stop", headers=two.h("admin")).status_code == 404
    assert c.get("/experiments/nope/report", headers=two.h("admin")).status_code == 404


def test_an_arm_keeps_its_version_when_another_is_activated(two: Env) -> None:
    _start(two, surface="for_you")
    two.store.register_version("v4", status="complete")
    two.client.post("/models/v4/activate", headers=two.h("admin"))
    versions = {
        r["arm"]: r["model_version"]
        for r in (
            two.client.get("/recommend", params={"user_id": f"s{n}"}, headers=two.h("read")).json() for n in range(30)
        )
    }
    assert versions == {"control": "v1", "treatment": "v2"}
    other = two.client.get("/recommend", params={"user_id": "s1", "surface": "buy_again"}, headers=two.h("read")).json()
    assert other["model_version"] == "v4" and other["experiment"] is None


def test_interleaved_search_logs_each_items_team(two: Env) -> None:
    _start(two, surface="search", mode="interleave")
    r = two.client.get("/search", params={"q": "running shoe", "user_id": "u7", "k": 3}, headers=two.h("read")).json()
    assert r["experiment"] == "exp" and r["arm"] is None and len(r["items"]) == 3
    two.client.app.state.shopsense.impressions.flush()
    imp = two.store.impressions(r["request_id"])
    assert imp[C.EXPERIMENT].tolist() == ["exp"] * 3
    teams = imp[C.ARM].tolist()
    assert set(teams) <= {"control", "treatment"} and abs(teams.count("control") - teams.count("treatment")) == 1
    assert imp[C.MODEL_VERSION].tolist() == [{"control": "v1", "treatment": "v2"}[t] for t in teams]
    rec = two.client.get("/recommend", params={"user_id": "u7"}, headers=two.h("read")).json()
    assert rec["experiment"] is None  # only search is in it


def test_an_experiment_whose_version_does_not_load_is_not_served(two: Env, tmp_path) -> None:
    from shopsense.versions import MANIFEST

    broken = tmp_path / "v5"
    broken.mkdir()
    (broken / MANIFEST).write_text("{}")
    (broken / "BROKEN").write_text("")
    two.store.register_version("v5", status="complete", path=str(broken))
    r = two.client.post(
        "/experiments", json={"name": "b", "arms": {"control": "v1", "treatment": "v5"}}, headers=two.h("admin")
    )
    assert r.status_code == 201, r.text  # the version is complete; this process cannot load it
    for n in range(20):  # nobody is half in it: everyone gets the default, unrecorded
        got = two.client.get("/recommend", params={"user_id": f"s{n}"}, headers=two.h("read")).json()
        assert got["experiment"] is None and got["model_version"] == "v1"
    models = two.client.get("/models", headers=two.h("read")).json()
    assert "broken artifact" in models["failed_to_load"]["v5"]


def test_catalog_changes_and_deletions_reach_the_arms_versions(two: Env, monkeypatch) -> None:
    _start(two)
    models = two.client.app.state.shopsense.models
    served = models.every_served()
    assert [s.version for s in served] == ["v1", "v2"]  # the default first, each version once
    refreshed, forgot = [], []
    for s in served:
        monkeypatch.setattr(s, "refresh_catalog", lambda s=s: refreshed.append(s.version), raising=False)
        monkeypatch.setattr(s, "forget_user", lambda uid, deletion, s=s: forgot.append(s.version), raising=False)
    two.client.app.state.shopsense._refresh_catalog()
    assert refreshed == ["v1", "v2"]
    assert two.client.delete("/users/u1", headers=two.h("admin")).status_code == 200
    assert forgot == ["v1", "v2"]
