"""The whole life of a shop whose catalog has only the required columns (``item_id``, ``title``), or
whose optional columns are partly empty: init, ingest, train, recommend, search, similar and
autocomplete through the CLI, then the service over the real engines, every GET route, and a product
put over HTTP without brand, category or price."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store

pytestmark = pytest.mark.slow

KINDS = [
    "red electric kettle",
    "blue ceramic coffee mug",
    "steel chef knife",
    "cotton bath towel",
    "wooden cutting board",
    "trail running shoes",
    "rubber yoga mat",
    "wireless computer mouse",
]
N_PRODUCTS = 40  # five of each kind: p0, p8, p16... are kettles


def _kind(i: int) -> str:
    return KINDS[i % len(KINDS)]


def _products(partly_empty: bool) -> list[dict]:
    """Only item_id and title; or every optional column present but with gaps of every spelling."""
    rows: list[dict] = []
    for i in range(N_PRODUCTS):
        row: dict = {"item_id": f"p{i}", "title": f"{_kind(i)} {i}"}
        if partly_empty:
            gap = i % 4  # 0: a value, 1: null, 2: empty string, 3: key absent
            value = {
                "brand": f"Brand{i % 3}",
                "category": f"Home > {_kind(i).split()[-1].title()}",
                "price": 10.0 + i,
                "description": f"a good {_kind(i)}",
            }
            for col, v in value.items():
                if gap == 0:
                    row[col] = v
                elif gap == 1:
                    row[col] = None
                elif gap == 2:
                    row[col] = "" if col != "price" else None
            if i % 5 == 0:
                row["brand"] = "   "  # whitespace only: as good as missing
        rows.append(row)
    return rows


def _write_catalog(path: Path, partly_empty: bool) -> Path:
    rows = _products(partly_empty)
    if partly_empty:  # JSONL: null, "" and absent keys side by side
        out = path / "products.jsonl"
        out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return out
    out = path / "products.csv"
    out.write_text("item_id,title\n" + "".join(f"{r['item_id']},{r['title']}\n" for r in rows), encoding="utf-8")
    return out


def _write_events(path: Path) -> Path:
    """Each of 30 users sticks to two kinds (so co-visitation has something to learn), plus searches."""
    rng = random.Random(7)
    lines = ["user_id,item_id,event_type,timestamp,query"]
    ts = 1_700_000_000
    for u in range(30):
        kinds = rng.sample(range(len(KINDS)), 2)
        for _ in range(10):
            i = rng.choice(kinds) + len(KINDS) * rng.randrange(N_PRODUCTS // len(KINDS))
            ts += 60
            lines.append(f"u{u},p{i},{rng.choice(['view', 'view', 'click', 'add_to_cart', 'purchase'])},{ts},")
        ts += 60
        lines.append(f"u{u},,search,{ts},{KINDS[kinds[0]]}")
    out = path / "events.csv"
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _kettles(ids: list[str]) -> list[str]:
    return [i for i in ids if int(i[1:]) % len(KINDS) == 0]


def _wait_for_similar(client: TestClient, item_id: str, hdr: dict[str, str]) -> dict:
    """``/similar/{item_id}`` once its index holds the product (built in the background after a
    start or a catalog change); a 503 for any reason but "being built" is a failure."""
    deadline = time.monotonic() + 120
    while True:
        r = client.get(f"/similar/{item_id}", params={"k": 3}, headers=hdr)
        assert r.status_code != 503 or "being built" in r.text, r.text
        if r.status_code == 200 or time.monotonic() > deadline:
            assert r.status_code == 200, r.text
            return r.json()
        time.sleep(0.2)


@pytest.mark.parametrize("partly_empty", [False, True], ids=["item_id-title-only", "partly-empty"])
def test_whole_life_on_a_catalog_without_optional_columns(tmp_path: Path, partly_empty: bool) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]

    def cli(*args: str) -> str:
        r = runner.invoke(app, [*home, *args])
        assert r.exit_code == 0, f"shopsense {' '.join(args)} -> {r.exit_code}\n{r.output}\n{r.exception!r}"
        return r.stdout

    cli("init")
    cli("ingest", "products", str(_write_catalog(tmp_path, partly_empty)))
    cli("ingest", "events", str(_write_events(tmp_path)))
    assert json.loads(cli("stats", "--json"))["products"] == N_PRODUCTS
    cli("train")

    warm = [json.loads(line) for line in cli("recommend", "u1", "-k", "5", "--json").splitlines()]
    assert len(warm) == 5 and all(r["explanation"] for r in warm)
    cold = [
        json.loads(line) for line in cli("recommend", "newbie", "-k", "3", "--query", "kettle", "--json").splitlines()
    ]
    assert _kettles([r["item_id"] for r in cold]) == [r["item_id"] for r in cold]  # query matches, not trending
    found = [
        h["item_id"] for h in json.loads(cli("search", "electric kettle", "-k", "5", "--json", "--no-log"))["items"]
    ]
    assert sorted(found) == ["p0", "p16", "p24", "p32", "p8"]
    like = [json.loads(line) for line in cli("similar", "p0", "-k", "3", "--json").splitlines()]
    assert _kettles([r["item_id"] for r in like]) == [r["item_id"] for r in like]
    assert "red electric kettle" in cli("similar", "p0", "-k", "3")  # the table names the product too
    assert "red electric kettle" in cli("autocomplete", "red el").lower()

    settings = load_settings(home=tmp_path / "home")
    store = open_store(settings.store_url)
    hdr = {"X-API-Key": create_key(store, ["admin"])[1]}
    with TestClient(create_app(settings, block_on_load=True)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 200
        assert client.get("/metrics").status_code == 200
        models = client.get("/models", headers=hdr)
        assert models.status_code == 200, models.text
        rec = client.get("/recommend", params={"user_id": "u1", "k": 5}, headers=hdr)
        assert rec.status_code == 200 and len(rec.json()["items"]) == 5, rec.text
        hits = client.get("/search", params={"q": "kettle", "k": 5}, headers=hdr)
        assert hits.status_code == 200, hits.text
        assert _kettles([h["item_id"] for h in hits.json()["items"]]) == [h["item_id"] for h in hits.json()["items"]]
        done = client.get("/autocomplete", params={"q": "red el"}, headers=hdr)
        assert done.status_code == 200 and done.json()["suggestions"], done.text
        listed = client.get("/products", params={"limit": 100}, headers=hdr)
        assert listed.status_code == 200 and len(listed.json()) == N_PRODUCTS, listed.text
        one = client.get("/products/p1", headers=hdr)
        assert one.status_code == 200 and one.json()["title"] == f"{_kind(1)} 1", one.text
        like = _wait_for_similar(client, "p0", hdr)
        assert _kettles([h["item_id"] for h in like["items"]]) == [h["item_id"] for h in like["items"]]

        put = client.put("/products", json={"item_id": "new-kettle", "title": "green electric kettle"}, headers=hdr)
        assert put.status_code == 200 and put.json()["written"] == 1, put.text
        got = client.get("/products/new-kettle", headers=hdr).json()
        assert got["brand"] is None and got["category"] is None and got["price"] is None
        like = _wait_for_similar(client, "new-kettle", hdr)
        assert like["items"][0]["item_id"] in _kettles([h["item_id"] for h in like["items"]])

    # a restart loads the catalog with the product put over HTTP: /similar still answers
    with TestClient(create_app(settings, block_on_load=True)) as client:
        like = _wait_for_similar(client, "new-kettle", hdr)
        assert like["items"] and client.get("/similar/p0", headers=hdr).status_code == 200
    store.close()
