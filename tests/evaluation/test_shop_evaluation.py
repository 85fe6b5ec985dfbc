"""``shopsense evaluate recommend`` without files: the knowledge base's own log split by time, the
engine beside its peers, kept in the knowledge base, an HTML report with charts, shown on the dashboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.config import load_settings
from shopsense.data.sample import sample_paths
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store
from tests.shops import SMALL_ENGINE_TOML

pytestmark = pytest.mark.slow

CONFIG = SMALL_ENGINE_TOML


def test_a_funnel_log_without_purchases_after_the_cut_is_scored_on_discovery(tmp_path: Path) -> None:
    """No purchase after the cut: nothing for the next-purchase block, but the shoppers' first new items
    after it still score the lists (before: exit 2, "nothing to score")."""
    import pandas as pd

    products, events = sample_paths()
    log = pd.read_csv(events)
    when = pd.to_datetime(log["timestamp"])
    late = when >= when.quantile(0.6)
    trimmed = tmp_path / "events.csv"
    log[~(late & (log["event_type"] == "purchase"))].to_csv(trimmed, index=False)
    base = ["--home", str(tmp_path / "home")]
    runner = CliRunner()
    for kind, path in (("products", products), ("events", trimmed)):
        assert runner.invoke(app, [*base, "ingest", kind, str(path)]).exit_code == 0
    r = runner.invoke(app, [*base, "evaluate", "recommend", "--no-engine", "--peers", "pop", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["info"]["target"] == "first new item after the cut" and out["info"]["test_users"] > 20
    assert set(out["models"]) == {"pop"} and out["also"] == {}


def test_the_shops_own_evaluation_is_kept_reported_and_shown(tmp_path: Path) -> None:
    config = tmp_path / "shop.toml"
    config.write_text(CONFIG)
    base = ["--home", str(tmp_path / "home"), "--config", str(config)]
    runner = CliRunner()
    products, events = sample_paths()
    r = runner.invoke(app, [*base, "evaluate", "recommend"])  # an empty knowledge base: one line, exit 2
    assert r.exit_code == 2 and "Traceback" not in r.output
    for kind, path in (("products", products), ("events", events)):
        assert runner.invoke(app, [*base, "ingest", kind, str(path)]).exit_code == 0
    r = runner.invoke(app, [*base, "evaluate", "recommend", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    # the sample shop's log is a funnel (views, carts, purchases): scored on each shopper's next purchase,
    # nothing masked, through the lists a shop shows, beside the shopper's own items
    assert set(out["models"]) == {
        "engine for_you",
        "engine continue_shopping",
        "own items by weighted count",
        "pop",
        "itemknn",
    }
    assert out["info"]["target"] == "first purchase after the cut" and out["info"]["test_users"] >= 20
    for m in out["models"].values():
        assert 0 <= m["ndcg@10"] <= 1
    assert (
        out["models"]["engine continue_shopping"]["hr@10"]
        >= out["models"]["own items by weighted count"]["hr@10"] - 0.1
    )
    # and on discovery: each shopper's first item after the cut they had not touched before, own items masked
    new = out["also"]["this shop, first new item"]
    assert set(new["models"]) == {"engine", "pop", "itemknn"} and new["info"]["test_users"] > 40
    for m in new["models"].values():
        assert 0 <= m["ndcg@10"] <= 1 and m["coverage@10"] > 0 and m["novelty@10"] > 0
    # the engine beats popularity on what its shoppers found next (they keep to one or two categories)
    assert new["models"]["engine"]["ndcg@10"] > new["models"]["pop"]["ndcg@10"]
    report = Path(out["report"])
    assert report.is_file() and {p.suffix for p in report.parent.iterdir()} == {".html", ".png"}
    assert "this shop" in report.read_text(encoding="utf-8")

    settings = load_settings(config, home=tmp_path / "home")
    store = open_store(settings.store_url)
    kept = store.latest_evaluation()
    assert kept is not None and kept["evaluation_id"] == out["evaluation_id"]
    key = create_key(store, ["read"])[1]
    store.close()
    with TestClient(create_app(settings)) as client:
        data = client.get("/dashboard/data", headers={"X-API-Key": key}).json()
    offline = data["offline"]
    assert offline["name"] == f"evaluation {out['evaluation_id']} of this shop"
    engine_bars = [c for c in offline["charts"] if c["dataset"] == "this shop" and c["metric"] == "ndcg@10"]
    assert engine_bars and {b[0] for b in engine_bars[0]["bars"]} == set(out["models"])
    assert str(tmp_path) not in json.dumps(data)  # no filesystem path leaves the server


def test_logged_searches_judge_search_and_the_dashboard_shows_both_kinds(tmp_path: Path) -> None:
    """Searches through the server, then what shoppers did with their results: `evaluate search`
    without files ranks every product for each logged query and keeps the result."""
    config = tmp_path / "shop.toml"
    config.write_text(CONFIG)
    base = ["--home", str(tmp_path / "home"), "--config", str(config)]
    runner = CliRunner()
    products, events = sample_paths()
    for kind, path in (("products", products), ("events", events)):
        assert runner.invoke(app, [*base, "ingest", kind, str(path)]).exit_code == 0
    r = runner.invoke(app, [*base, "evaluate", "search"])  # nothing logged yet: one line, exit 2
    assert r.exit_code == 2 and "no logged search" in r.stderr
    assert runner.invoke(app, [*base, "search-index"]).exit_code == 0
    settings = load_settings(config, home=tmp_path / "home")
    store = open_store(settings.store_url)
    key = create_key(store, ["read", "write"])[1]
    store.close()
    h = {"X-API-Key": key}
    with TestClient(create_app(settings, block_on_load=True)) as client:
        for i, q in enumerate(["coffee", "Coffee ", "running shoes", "tea", "kettle", "yoga mat"]):
            res = client.get("/search", params={"q": q, "k": 10, "user_id": f"s{i}"}, headers=h)
            assert res.status_code == 200, res.text
            body = res.json()
            shown = [x["item_id"] for x in body["items"]]
            if not shown:
                continue
            picked = shown[min(2, len(shown) - 1)]  # not always the top one
            outcome = [{"user_id": f"s{i}", "item_id": picked, "event_type": "click", "request_id": body["request_id"]}]
            if i % 2:
                outcome.append({**outcome[0], "event_type": "add_to_cart"})
            assert client.post("/events", json=outcome, headers=h).status_code in (200, 202)
    r = runner.invoke(app, [*base, "evaluate", "search", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(out["models"]) == {"engine", "bm25"}
    assert 3 <= out["info"]["queries"] <= 5  # "coffee" and "Coffee " are one query
    assert all(0 <= m["ndcg@10"] <= 1 for m in out["models"].values())
    assert out["models"]["engine"]["ndcg@10"] > 0  # it found what the shoppers picked from its own lists
    r = runner.invoke(app, [*base, "evaluate", "recommend", "--json", "--peers", "pop"])
    assert r.exit_code == 0, r.output
    store = open_store(settings.store_url)
    read = create_key(store, ["read"])[1]
    store.close()
    with TestClient(create_app(settings)) as client:
        offline = client.get("/dashboard/data", headers={"X-API-Key": read}).json()["offline"]
    assert {c["section"] for c in offline["charts"]} == {"recommendation", "search"}
