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
