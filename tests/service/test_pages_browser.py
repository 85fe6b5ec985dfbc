"""The storefront and dashboard end to end in headless Chromium (Debian `chromium`), driven by Playwright
against a uvicorn server started here on a free loopback port."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import uvicorn

from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import KnowledgeStore, open_store
from tests.service.conftest import PRODUCTS, fake_loader

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
#: set SHOPSENSE_SCREENSHOTS=folder to keep screenshots of both pages
SHOTS = Path(os.environ["SHOPSENSE_SCREENSHOTS"]) if os.environ.get("SHOPSENSE_SCREENSHOTS") else None
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KnowledgeStore, Path]]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium not installed (apt-get install chromium chromium-driver)")
    home = tmp_path_factory.mktemp("browser") / "home"
    s = load_settings(home=home)
    store = open_store(s.store_url)
    store.upsert_products(pd.DataFrame(PRODUCTS))
    store.register_version("v1", status="complete")
    store.activate_version("v1")
    create_key(store, ["admin"])
    reports = home / "reports"
    reports.mkdir(parents=True)
    # the shape of the benchmark runner's reports/results.json
    models = {"popular": {"ndcg@10": 0.05, "coverage@10": 0.1}, "engine": {"ndcg@10": 0.11, "coverage@10": 0.4}}
    results = {"recommendation": {"tiny": {"info": {"users": 3}, "models": models}}, "environment": {}}
    (reports / "results.json").write_text(json.dumps(results))
    port = _free_port()
    app = create_app(s, loader=fake_loader(store, s), block_on_load=True)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", store, home
    srv.should_exit = True
    t.join(timeout=10)
    store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def _items(page, grid: str) -> list[str]:
    return page.eval_on_selector_all(f"#{grid} .card", "els => els.map(e => e.dataset.item)")


def test_storefront_searches_filters_and_adapts(server, browser) -> None:
    base, store, _ = server
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    sent: list[str] = []  # every API request the page makes: none may name a user
    page.on("request", lambda r: sent.append(r.url + " " + (r.post_data or "")))
    page.goto(base + "/")
    page.wait_for_selector("#recs .card")
    # the server chose the shopper: a signed, http-only cookie the page's scripts cannot read
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "shopsense_shopper"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    visitor = cookie["value"].split(".")[0]
    assert page.text_content("#visitor") == visitor
    assert page.evaluate("document.cookie") == ""
    assert _items(page, "recs")[:3] == ["p1", "p2", "p3"]  # cold start

    # autocomplete, then pick a suggestion
    page.fill("#q", "co")
    page.wait_for_selector("#suggest li")
    assert page.text_content("#suggest li") == "Coffee grinder"
    page.click("#suggest li")
    page.wait_for_function("document.querySelector('#results .card')?.dataset.item === 'p5'")

    # search with facets: filter by brand
    page.fill("#q", "running shoe")
    page.press("#q", "Enter")
    page.wait_for_function("document.querySelectorAll('#results .card').length === 3")
    page.check("input[data-facet='brand'][value='Peak']")
    page.wait_for_function("document.querySelectorAll('#results .card').length === 1")
    assert _items(page, "results") == ["p3"]

    # open a kitchen product from the recommendations: product page, similar products, adapted recs
    page.click("#home-link")
    page.wait_for_selector("#recs .card")
    page.fill("#q", "espresso")
    page.press("#q", "Enter")
    page.wait_for_function("document.querySelector('#results .card')?.dataset.item === 'p4'")
    page.click("#results .card[data-item='p4'] .title")
    page.wait_for_selector("#product-title")
    assert page.text_content("#product-title") == "Espresso machine"
    page.wait_for_selector("#similar .card")
    assert _items(page, "similar") == ["p5", "p6"]
    page.wait_for_function("document.querySelector('#recs .card')?.dataset.item === 'p5'")  # the page adapted

    # add to cart from the recommendations: an event quoting the list's request_id
    rid = page.get_attribute("#recs", "data-request-id")
    page.click("#recs .card[data-item='p5'] .add")
    page.wait_for_function("document.getElementById('cart-count').textContent === '1'")
    ev = store.events(user_id=visitor)
    cart = ev[ev["event_type"] == "add_to_cart"]
    assert cart["item_id"].tolist() == ["p5"] and cart["request_id"].tolist() == [rid]
    assert {"click", "view"} <= set(ev["event_type"])
    assert "search" in set(ev["event_type"])  # the searches were the shopper's too
    assert sent and not [s for s in sent if "user_id" in s]
    page.screenshot(path=str(SHOTS / "storefront.png"), full_page=True) if SHOTS else None
    assert not errors, errors
    page.close()


def test_dashboard_shows_counts_versions_offline_and_online(server, browser) -> None:
    import httpx

    base, store, _ = server
    operator_key = create_key(store, ["read", "write"])[1]
    hdr = {"X-API-Key": operator_key}
    rec = httpx.get(f"{base}/recommend?user_id=dash&k=3", headers=hdr).json()
    ev = {
        "user_id": "dash",
        "item_id": rec["items"][0]["item_id"],
        "event_type": "click",
        "request_id": rec["request_id"],
    }
    assert httpx.post(f"{base}/events", json=ev, headers=hdr).status_code == 200
    deadline = time.monotonic() + 10  # impressions reach the store with the next background flush
    while store.impressions(rec["request_id"]).empty and time.monotonic() < deadline:
        time.sleep(0.05)
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/dashboard")
    # no key in the page: the operator enters one; a wrong one is refused and asked for again
    page.wait_for_selector("#login:not([hidden])")
    assert not re.search(r"ss_[0-9a-f]{8}_", page.content())
    page.fill("#key", "ss_nope_nope")
    page.click("#key-submit")
    page.wait_for_selector("#login:not([hidden])")
    assert "invalid" in page.text_content("#error")
    page.fill("#key", operator_key)
    page.click("#key-submit")
    page.wait_for_selector("body[data-loaded='1']")
    assert page.evaluate("sessionStorage.getItem('shopsense-operator-key')") == operator_key
    assert page.text_content("[data-stat='products'] b") == "6"
    assert "serving" in page.text_content("#versions tr[data-version='v1']")
    bars = page.query_selector_all("[data-chart='offline-recommendation-tiny-ndcg@10'] rect.bar")
    assert len(bars) == 2
    assert page.query_selector("[data-chart='offline-recommendation-tiny-coverage@10'] rect.bar") is not None
    rows = page.query_selector_all("#online tr[data-version='v1']")
    assert rows, "no online metrics row"
    assert page.query_selector("[data-chart='ctr'] rect.bar") is not None
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True) if SHOTS else None
    assert not errors, errors
    page.close()
