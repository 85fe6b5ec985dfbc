"""shopsense search / search-index / autocomplete from the command line, with exit codes."""

from __future__ import annotations

import json

import pandas as pd
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.cli.main import app
from shopsense.store import open_store

runner = CliRunner()

PRODUCTS = pd.DataFrame(
    {
        C.ITEM: ["p1", "p2", "p3", "p4"],
        C.TITLE: [
            "Whirlpool Countertop Microwave",
            "Whirlpool Over the Range Microwave",
            "LG Refrigerator",
            "Ryobi Drill",
        ],
        C.CATEGORY: ["Kitchen > Microwaves", "Kitchen > Microwaves", "Kitchen > Refrigerators", "Tools"],
        C.BRAND: ["Whirlpool", "Whirlpool", "LG", "Ryobi"],
        C.PRICE: [199.0, 299.0, 1599.0, 79.0],
    }
)


def test_search_cli_builds_searches_logs_and_refuses_bad_filters(tmp_path) -> None:
    home = tmp_path / "kb"
    base = ["--home", str(home)]
    assert runner.invoke(app, [*base, "init"]).exit_code == 0
    store = open_store(f"sqlite:///{home / 'shopsense.db'}")
    store.upsert_products(PRODUCTS)
    syn = tmp_path / "synonyms.txt"
    syn.write_text("fridge, refrigerator\n", encoding="utf-8")
    r = runner.invoke(app, [*base, "search-index", "--lexical-only", "--synonyms", str(syn)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, [*base, "search", "fridge", "--no-log", "--json"])
    assert [i["item_id"] for i in json.loads(r.stdout)["items"]] == ["p3"]
    r = runner.invoke(app, [*base, "search", "whirpool microwve", "--user", "u1", "-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert {i["item_id"] for i in out["items"]} == {"p1", "p2"}
    assert out["did_you_mean"] == "whirlpool microwave"
    ev = store.events(user_id="u1")
    assert ev[C.EVENT_TYPE].tolist() == ["search"] and ev[C.REQUEST_ID].tolist() == [out["request_id"]]
    r = runner.invoke(app, [*base, "search", "microwave", "--filter", "max_price=250", "--no-log"])
    assert r.exit_code == 0 and "p1" in r.stdout and "p2" not in r.stdout
    r = runner.invoke(app, [*base, "search", "microwave", "--filter", "colour=red"])
    assert r.exit_code == 2 and "unknown filter" in r.stderr
    r = runner.invoke(app, [*base, "autocomplete", "whirl", "-k", "3"])
    assert r.exit_code == 0
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and all(line.startswith("whirlpool") for line in lines)


def test_search_cli_says_did_you_mean_when_a_query_finds_little(tmp_path) -> None:
    home = tmp_path / "kb"
    base = ["--home", str(home)]
    assert runner.invoke(app, [*base, "init"]).exit_code == 0
    open_store(f"sqlite:///{home / 'shopsense.db'}").upsert_products(PRODUCTS)
    assert runner.invoke(app, [*base, "search-index", "--lexical-only"]).exit_code == 0
    r = runner.invoke(app, [*base, "search", "ryobi drill xyzzy", "--no-log"])
    assert r.exit_code == 0, r.output
    assert "did you mean: ryobi drill?" in r.stdout and "showing results for" not in r.stdout
    r = runner.invoke(app, [*base, "search", "ryobi drill xyzzy", "--no-log", "--json"])
    out = json.loads(r.stdout)
    assert out["did_you_mean"] == "ryobi drill" and out["showing_results_for"] is None
