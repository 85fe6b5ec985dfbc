"""The dashboard: no key in its page, an operator key for its data, and only the engine's own
benchmark results shown from disk (never another file, never a path)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.service.conftest import Env

RESULTS = {"recommendation": {"tiny": {"models": {"popular": {"ndcg@10": 0.05}, "engine": {"ndcg@10": 0.11}}}}}


def test_the_dashboard_needs_an_operator_key(env: Env) -> None:
    c = env.client
    page = c.get("/dashboard").text
    assert 'name="shopsense-key"' not in page and not re.search(r"ss_[0-9a-f]{8}_", page)
    page_key = re.search(r'name="shopsense-key" content="([^"]+)"', c.get("/").text).group(1)
    assert c.get("/dashboard/data").status_code == 401
    assert c.get("/dashboard/data", headers={"X-API-Key": page_key}).status_code == 403
    assert c.get("/dashboard/data", headers=env.h("write")).status_code == 403
    assert c.get("/dashboard/data", headers=env.h("read")).status_code == 200
    # a stopped experiment's report, fetched when the dashboard opens it: the same keys
    assert c.get("/dashboard/experiments/x", headers={"X-API-Key": page_key}).status_code == 403
    assert c.get("/dashboard/experiments/x", headers=env.h("write")).status_code == 403
    assert c.get("/dashboard/experiments/x", headers=env.h("read")).status_code == 404


def test_only_the_engines_results_are_read(env: Env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reports = env.settings.home / "reports"
    reports.mkdir(parents=True)
    (reports / "private.json").write_text(json.dumps({"models": {"secret": {"ndcg@10": 1.0}}, "token": "t0ps3cret"}))
    cwd = tmp_path / "elsewhere"
    (cwd / "reports").mkdir(parents=True)
    (cwd / "reports" / "results.json").write_text(json.dumps(RESULTS))  # the working folder's: never read
    monkeypatch.chdir(cwd)

    def data() -> dict:
        r = env.client.get("/dashboard/data", headers=env.h("read"))
        assert r.status_code == 200 and str(tmp_path) not in r.text and "t0ps3cret" not in r.text
        return r.json()

    assert data()["offline"] is None
    (reports / "results.json").write_text(json.dumps(RESULTS))
    offline = data()["offline"]
    assert offline["name"] == "results.json" and set(offline) == {"name", "written_at", "charts"}
    assert offline["charts"] == [
        {
            "section": "recommendation",
            "dataset": "tiny",
            "metric": "ndcg@10",
            "bars": [["popular", 0.05], ["engine", 0.11]],
        }
    ]
    (reports / "results.json").write_text(json.dumps({"any": "json", "token": "t0ps3cret"}))  # not the runner's shape
    assert data()["offline"] is None


def test_the_dashboard_carries_running_experiments_over_time_and_stopped_ones_as_records(env: Env) -> None:
    c, admin = env.client, env.h("admin")
    env.store.register_version("v2", status="complete")
    for name in ("old", "new"):
        body = {"name": name, "arms": {"control": "v1", "treatment": "v2"}, "surface": "recommend"}
        assert c.post("/experiments", json=body, headers=admin).status_code == 201
        for n in range(6):
            c.get("/recommend", params={"user_id": f"{name}-{n}", "k": 2}, headers=env.h("read"))
        if name == "old":
            assert c.post("/experiments/old/stop", headers=admin).status_code == 200
    panel = c.get("/dashboard/data", headers=env.h("read")).json()["experiments"]
    assert [p["experiment"]["name"] for p in panel] == ["new", "old"]  # newest first
    running, stopped = panel
    assert set(stopped) == {"experiment"} and "salt" not in stopped["experiment"]
    report = c.get("/experiments/new/report", headers=admin).json()
    series = running.pop("over_time")
    assert running == report  # the engine's report, nothing else
    for arm, numbers in report["arms"].items():
        assert series["arms"][arm]["users"][-1] == numbers["users"]
        assert series["arms"][arm]["ctr"]["value"][-1] == pytest.approx(numbers["ctr"]["value"])
    opened = c.get("/dashboard/experiments/old", headers=env.h("read")).json()
    assert opened["experiment"]["status"] == "stopped" and sum(a["impressions"] for a in opened["arms"].values()) == 12
