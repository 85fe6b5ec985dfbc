"""``shopsense serve`` from the command line: workers run with the parent's settings (the
``--config`` file) and share one page key and cookie secret; a stopped server has written every
search it answered."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.service.keys import create_key
from shopsense.service.shoppers import COOKIE
from shopsense.service.training_jobs import CLI
from shopsense.store import open_store
from tests.servers import free_port as _free_port
from tests.servers import stop as _stop
from tests.servers import wait_ready as _wait_ready
from tests.service.conftest import PRODUCTS

CONFIG = """
[service]
pseudonym_secret = "from the config file"
max_body_bytes = 2048
similar_index = false
"""


@pytest.fixture
def shop(tmp_path: Path) -> tuple[Path, Path, str]:
    """(home, config file, admin key): a small catalog with a lexical search index (no text model to load)."""
    from shopsense.search import build_from_store, default_index_path

    home = tmp_path / "kb"
    config = tmp_path / "shop.toml"
    config.write_text(CONFIG)
    settings = load_settings(config, home=home)
    store = open_store(settings.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    build_from_store(store, settings, semantic=False).save(default_index_path(settings))
    key = create_key(store, ["admin"])[1]
    store.close()
    return home, config, key


def _serve(home: Path, config: Path, port: int, *more: str) -> subprocess.Popen:
    cmd = [*CLI, "--home", str(home), "--config", str(config), "serve", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen([*cmd, *more], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stored_events(home: Path) -> pd.DataFrame:
    store = open_store(load_settings(home=home).store_url)
    try:
        return store.events()
    finally:
        store.close()


def _one_connection_per_worker(port: int, key: str, workers: int) -> Iterator[httpx.Client]:
    """Keep-alive clients (sending ``key``) until every worker holds one, so every worker is ready
    (a request id starts with its process's prefix)."""
    clients: dict[str, httpx.Client] = {}
    deadline = time.monotonic() + 120
    while len(clients) < workers:
        assert time.monotonic() < deadline, "not every worker got a connection"
        headers = {"X-API-Key": key} if key else {}
        c = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30)
        worker = c.get("/ready").headers["x-request-id"][:16]
        if worker in clients:
            c.close()  # a worker still loading gets connections only when no ready one is left
            time.sleep(0.2)
        else:
            clients[worker] = c  # held open: the next connection goes to a worker with fewer
    return iter(clients.values())


def test_workers_run_with_the_config_file_and_share_keys_and_write_every_search(shop) -> None:
    """``serve --workers 2 --config shop.toml``: every worker refuses bodies over the file's
    max_body_bytes, stores the file's pseudonyms, serves one page key and accepts the shopper
    cookie another worker set; SIGTERM stops them after writing every search they answered."""
    from shopsense.service.workers import handing_supported

    if not handing_supported():
        pytest.skip("no socket hand-over (send_fds) on this platform")
    home, config, key = shop
    port = _free_port()
    proc = _serve(home, config, port, "--workers", "2")
    clients: list[httpx.Client] = []
    try:
        _wait_ready(proc, port)
        clients = list(_one_connection_per_worker(port, key, 2))
        page_keys = set()
        for i, c in enumerate(clients):
            big = [{"user_id": "u", "item_id": "p1", "event_type": "view", "session_id": "x" * 200}] * 12
            assert c.post("/events", json=big).status_code == 413  # 2,048 bytes at most, from the file
            ok = c.post("/events", json={"user_id": f"alice{i}", "item_id": "p1", "event_type": "view"})
            assert ok.status_code == 200, ok.text
            page_keys.add(re.search(r'name="shopsense-key" content="([^"]+)"', c.get("/").text).group(1))
        assert len(page_keys) == 1  # one page key for the whole server
        (page_key,) = page_keys
        first, second = clients
        cookie = first.cookies[COOKIE]
        second.cookies.set(COOKIE, cookie, domain="127.0.0.1")
        r = second.post("/events", json={"item_id": "p2", "event_type": "view"}, headers={"X-API-Key": page_key})
        assert r.status_code == 200 and "set-cookie" not in r.headers  # the other worker's cookie is valid here
        for i in range(20):  # searches on both workers, then stop at once
            r = clients[i % 2].get("/search", params={"q": "coffee", "user_id": f"searcher{i}"})
            assert r.status_code == 200, r.text
    finally:
        for c in clients:
            c.close()
        _stop(proc, signal.SIGTERM)
    secret = Pseudonymizer("from the config file")
    ev = _stored_events(home)
    views = ev[ev[C.EVENT_TYPE] == "view"]
    assert set(views[C.USER]) == {secret.user("alice0"), secret.user("alice1"), secret.user(cookie.split(".")[0])}
    searches = ev.loc[ev[C.EVENT_TYPE] == C.SEARCH, C.USER]
    assert sorted(searches) == sorted(secret.user(f"searcher{i}") for i in range(20))


def test_ctrl_c_stops_a_server_after_writing_every_search(shop) -> None:
    home, config, key = shop
    port = _free_port()
    proc = _serve(home, config, port)
    try:
        _wait_ready(proc, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=30) as c:
            for i in range(20):
                assert c.get("/search", params={"q": "coffee", "user_id": f"searcher{i}"}).status_code == 200
    finally:
        _stop(proc, signal.SIGINT)
    ev = _stored_events(home)
    searches = ev.loc[ev[C.EVENT_TYPE] == C.SEARCH, C.USER]
    assert sorted(searches) == sorted(Pseudonymizer("from the config file").user(f"searcher{i}") for i in range(20))
