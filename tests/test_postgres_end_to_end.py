"""The whole life of a shop on PostgreSQL, through the CLI and real servers: init, ingest, train, keys,
recommend, search, similar, an experiment, `serve --workers 2` beside a second server and a CLI ingest
on the same database at once, and a shopper's deletion. (Training on Spark from PostgreSQL:
tests/distributed/test_postgres.py.)"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app
from shopsense.data.sample import sample_paths
from shopsense.service.training_jobs import CLI
from shopsense.store import open_store
from tests.servers import free_port, stop, wait_ready
from tests.shops import SMALL_ENGINE_TOML

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

#: a small engine, and a small pool per process (two servers, two workers and CLI commands share the database)
CONFIG = (
    """
store_pool_size = 3
store_pool_overflow = 2
"""
    + SMALL_ENGINE_TOML
)


def _cli(*args: str, expect: int = 0) -> str:
    r = CliRunner().invoke(app, list(args))
    assert r.exit_code == expect, r.output
    return r.stdout


def _serve(base: list[str], port: int, *more: str) -> subprocess.Popen:
    cmd = [*CLI, *base, "serve", "--host", "127.0.0.1", "--port", str(port), *more]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _get(port: int, path: str, key: str, **params: object) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{port}{path}", params=params, headers={"X-API-Key": key}, timeout=30)


def test_a_shop_lives_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    config = tmp_path / "shop.toml"
    config.write_text(CONFIG)
    base = ["--store", pg_url, "--home", str(tmp_path / "home"), "--config", str(config)]
    products, events = sample_paths()

    # --- the CLI life
    assert "knowledge base ready" in _cli(*base, "init")
    _cli(*base, "ingest", "products", str(products))
    _cli(*base, "ingest", "events", str(events))
    first = json.loads(_cli(*base, "train", "--json").strip().splitlines()[-1])["version"]
    second = json.loads(_cli(*base, "train", "--json").strip().splitlines()[-1])["version"]
    _cli(*base, "search-index")
    rows = [json.loads(x) for x in _cli(*base, "recommend", "U259", "-k", "3", "--json").strip().splitlines()]
    assert len(rows) == 3
    assert "coffee" in _cli(*base, "search", "coffee", "-k", "3").lower()
    some_item = rows[0]["item_id"]
    assert _cli(*base, "similar", some_item, "-k", "3").strip()
    admin = _cli(*base, "keys", "create", "--scope", "admin").strip().splitlines()[-1]
    _cli(*base, "experiment", "start", "pg", "--arm", f"control={first}", "--arm", f"treatment={second}")
    assert "pg" in _cli(*base, "experiment", "list")
    assert _cli(*base, "migrate").startswith("schema version")

    # --- two servers (one with two workers) and a CLI ingest on one database at once
    ports = [free_port(), free_port()]
    servers = [_serve(base, ports[0], "--workers", "2"), _serve(base, ports[1])]
    try:
        for proc, port in zip(servers, ports, strict=True):
            wait_ready(proc, port)
        more = tmp_path / "more.csv"
        pd.DataFrame(  # long enough to overlap the requests below: 200 of late_shopper among 20,000
            {
                "user_id": "late_shopper" if i % 100 == 0 else f"late{i % 997}",
                "item_id": some_item,
                "event_type": "view",
                "timestamp": 1.9e9 + i,
            }
            for i in range(20_000)
        ).to_csv(more, index=False)
        ingest = subprocess.Popen([*CLI, *base, "ingest", "events", str(more)], stderr=subprocess.PIPE)
        answered = 0
        while ingest.poll() is None or answered < 20:
            for port in ports:
                for path, params in (
                    ("/recommend", {"user_id": "U259", "k": 5}),
                    ("/search", {"q": "coffee", "k": 5}),
                ):
                    r = _get(port, path, admin, **params)
                    assert r.status_code == 200, (path, r.status_code, r.text)
                    answered += 1
        assert ingest.wait(timeout=120) == 0, ingest.stderr.read().decode() if ingest.stderr else ""
        # each server reads what the other and the CLI wrote: the ingested shopper's history, a posted event
        r = httpx.post(
            f"http://127.0.0.1:{ports[1]}/events",
            json=[{"user_id": "U259", "item_id": some_item, "event_type": "click"}],
            headers={"X-API-Key": admin},
            timeout=30,
        )
        assert r.status_code in (200, 202), r.text
        for port in ports:
            body = _get(port, "/users/late_shopper/export", admin).json()
            assert len(body["events"]) == 200
        arms = {_get(ports[0], "/recommend", admin, user_id=f"u{i}", k=3).json().get("arm") for i in range(40)}
        assert arms == {"control", "treatment"}  # the experiment serves both versions from PostgreSQL
        deadline = time.monotonic() + 120  # the similar-products index is built in the background
        while (r := _get(ports[1], f"/similar/{some_item}", admin, k=3)).status_code == 503:
            assert time.monotonic() < deadline, r.text
            time.sleep(1)
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        # a deletion through one server: nothing of the shopper is left in the database
        r = httpx.delete(f"http://127.0.0.1:{ports[0]}/users/U259", headers={"X-API-Key": admin}, timeout=30)
        assert r.status_code == 200, r.text
    finally:
        for proc in servers:
            stop(proc, signal.SIGTERM)
    store = open_store(pg_url)
    try:
        assert not len(store.events(user_id="U259"))
        assert store.stats()["events"] > 25_000
    finally:
        store.close()
