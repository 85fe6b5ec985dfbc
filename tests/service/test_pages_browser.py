"""The storefront and dashboard end to end in headless Chromium (Debian `chromium`), driven by Playwright
against a uvicorn server started here on a free loopback port: over a fake engine (obvious answers),
and over a trained shop whose purchases come in baskets (the product page's and the cart's lists)."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import uvicorn
from fastapi import FastAPI

from shopsense import columns as C
from shopsense.config import load_settings
from shopsense.engine_config import EngineConfig
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import KnowledgeStore, open_store
from shopsense.training import train
from tests.servers import free_port
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


@contextmanager
def _serving(app: FastAPI) -> Iterator[str]:
    """The app served by uvicorn on a free loopback port, in a thread; yields its base URL."""
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    t = threading.Thread(target=srv.run, daemon=True)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        t.join(timeout=10)


def _need_chromium() -> None:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.skip("Debian chromium not installed (apt-get install chromium chromium-driver)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KnowledgeStore, Path]]:
    _need_chromium()
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
    with _serving(create_app(s, loader=fake_loader(store, s), block_on_load=True)) as base:
        yield base, store, home
    store.close()


# A shop whose purchases come in baskets: an espresso machine with a paper filter and a cup (cups
# have Chinese titles: the page must render any text), bought in one session after browsing machines.
MACHINES, FILTERS, CUPS = ([f"{p}{i}" for i in range(6)] for p in "mfc")
KINDS = {"m": ("Espresso machine", "Coffee > Machines"), "f": ("Paper filter", "Coffee > Filters")}
KINDS["c"] = ("陶瓷咖啡杯", "厨房 > 杯子")
T0 = 1_750_000_000.0
SMALL = EngineConfig(
    sequential=None, ease={"l2": 1.0}, per_source=10, returns={"min_moments": 20, "rounds": 60, "rebuy_min_buyers": 3}
)


def _title(item: str) -> str:
    return f"{KINDS[item[0]][0]} {item}"


def _basket_log() -> tuple[pd.DataFrame, pd.DataFrame]:
    products = pd.DataFrame(
        [
            (i, _title(i), KINDS[i[0]][1], 10.0 + n, True)
            for ids in (MACHINES, FILTERS, CUPS)
            for n, i in enumerate(ids)
        ],
        columns=[C.ITEM, C.TITLE, C.CATEGORY, C.PRICE, C.AVAILABLE],
    )
    rng = np.random.default_rng(0)
    rows = []
    for u in range(60):
        t = T0 + u * 50_000
        machines = rng.choice(MACHINES, 3, replace=False)
        rows += [(f"u{u}", m, C.VIEW, t + 60 * s) for s, m in enumerate([*machines, machines[1]])]
        rows.append((f"u{u}", machines[1], C.ADD_TO_CART, t + 400))
        basket = [machines[1], FILTERS[u % 6], CUPS[u % 6]]
        rows += [(f"u{u}", i, C.PURCHASE, t + 900 + j) for j, i in enumerate(basket)]
    return products, pd.DataFrame(rows, columns=[C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP])


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, KnowledgeStore]]:
    """The basket shop trained and served with the real engine."""
    _need_chromium()
    s = load_settings(home=tmp_path_factory.mktemp("baskets") / "home")
    store = open_store(s.store_url)
    products, events = _basket_log()
    store.upsert_products(products)
    store.add_events(events)
    train(store, s, config=SMALL)
    with _serving(create_app(s, block_on_load=True)) as base:
        yield base, store
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


def _texts(page, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent)")


def _visitor(page) -> str:
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "shopsense_shopper"]
    return str(cookie["value"]).split(".")[0]


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


def _experiment_traffic(base: str, name: str, hdr: dict[str, str], users: int) -> int:
    """Recommendations for ``users`` new shoppers, a click on every third list's first item; the
    number of impressions shown."""
    import httpx

    shown = 0
    for n in range(users):
        rec = httpx.get(f"{base}/recommend?user_id={name}-{n}&k=3", headers=hdr).json()
        assert rec["experiment"] == name, rec
        shown += len(rec["items"])
        if n % 3 == 0:
            ev = {"user_id": f"{name}-{n}", "item_id": rec["items"][0]["item_id"], "event_type": "click"}
            r = httpx.post(f"{base}/events", json={**ev, "request_id": rec["request_id"]}, headers=hdr)
            assert r.status_code == 200, r.text
    return shown


def test_dashboard_shows_each_experiment_per_arm_over_time(server, browser) -> None:
    import httpx

    base, store, _ = server
    store.register_version("v2", status="complete")
    admin = {"X-API-Key": create_key(store, ["admin"])[1]}
    operator_key = create_key(store, ["read", "write"])[1]
    hdr = {"X-API-Key": operator_key}
    body = {"name": "dash-ab", "arms": {"control": "v1", "treatment": "v2"}, "surface": "recommend"}
    assert httpx.post(f"{base}/experiments", json=body, headers=admin).status_code == 201
    shown = _experiment_traffic(base, "dash-ab", hdr, 24)
    deadline = time.monotonic() + 10  # impressions reach the store with the next background flush
    while len(store.experiment_impressions("dash-ab")) < shown and time.monotonic() < deadline:
        time.sleep(0.05)
    report = httpx.get(f"{base}/experiments/dash-ab/report", headers=admin).json()
    assert report["arms"]["control"]["clicks"] + report["arms"]["treatment"]["clicks"] == 8

    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/dashboard")
    page.fill("#key", operator_key)
    page.click("#key-submit")
    box = "[data-experiment='dash-ab'][data-status='running']"
    page.wait_for_selector(box)
    for arm in ("control", "treatment"):
        want = report["arms"][arm]
        row = f"{box} tr[data-arm='{arm}']"
        assert page.text_content(f"{row} [data-field='users']") == str(want["users"])
        assert page.text_content(f"{row} [data-field='impressions']") == str(want["impressions"])
        ctr = want["ctr"]
        assert page.text_content(f"{row} [data-metric='ctr']") == (
            f"{100 * ctr['value']:.1f}% [{100 * ctr['ci_low']:.1f}%, {100 * ctr['ci_high']:.1f}%]"
        )
        assert page.text_content(f"{row} [data-metric='revenue_per_1000']").startswith("0.00")
    assert page.query_selector(f"{box} tr[data-compare='treatment'] [data-metric='ctr']") is not None
    assert "Sample ratio" in page.text_content(f"{box} .srm")
    for metric in ("ctr", "add_to_cart_rate", "conversion_rate", "revenue_per_1000"):
        chart = f"{box} [data-chart='exp-dash-ab-{metric}']"
        assert len(page.query_selector_all(f"{chart} polyline.line")) == 2, metric  # a line per arm
    assert len(page.query_selector_all(f"{box} [data-chart='exp-dash-ab-ctr'] polygon.band")) == 2
    page.screenshot(path=str(SHOTS / "experiments.png"), full_page=True) if SHOTS else None

    # the storefront's page key reads no report
    page_key = re.search(r'name="shopsense-key" content="([^"]+)"', httpx.get(base + "/").text).group(1)
    assert httpx.get(f"{base}/dashboard/experiments/dash-ab", headers={"X-API-Key": page_key}).status_code == 403

    # stopped: collapsed below, its report fetched when opened; an interleaving experiment runs
    assert httpx.post(f"{base}/experiments/dash-ab/stop", headers=admin).status_code == 200
    body = {"name": "dash-il", "arms": {"old": "v1", "new": "v2"}, "surface": "recommend", "mode": "interleave"}
    assert httpx.post(f"{base}/experiments", json=body, headers=admin).status_code == 201
    _experiment_traffic(base, "dash-il", hdr, 12)
    page.reload()
    page.wait_for_selector("[data-experiment='dash-il'] [data-interleaving]")
    wins = page.text_content("[data-interleaving]")
    assert re.search(r"old wins \d+, new wins \d+, ties \d+, of 4 requests with clicks", wins), wins
    assert len(page.query_selector_all("[data-experiment='dash-il'] [data-chart='exp-dash-il-ctr'] polyline.line")) == 2
    stopped = "details[data-experiment='dash-ab'][data-status='stopped']"
    assert page.query_selector(f"{stopped} tr[data-arm]") is None
    page.click(f"{stopped} summary")
    page.wait_for_selector(f"{stopped} tr[data-arm='treatment']")
    assert page.text_content(f"{stopped} tr[data-arm='control'] [data-field='users']") == str(
        report["arms"]["control"]["users"]
    )
    assert page.query_selector(f"{stopped} [data-chart='exp-dash-ab-conversion_rate'] polyline.line") is not None
    assert httpx.post(f"{base}/experiments/dash-il/stop", headers=admin).status_code == 200
    assert not errors, errors
    page.close()


@pytest.mark.slow  # trains the basket shop
def test_product_page_shows_similar_and_bought_together(shop, browser) -> None:
    base, store = shop
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/#/product/m1")
    page.wait_for_selector("#product-title")
    assert page.text_content("#product-title") == "Espresso machine m1"
    page.wait_for_selector("#similar .card")
    page.wait_for_selector("#together .card")
    similar, together = _items(page, "similar"), _items(page, "together")
    assert similar and "m1" not in similar
    # complements: filters and cups bought with machines, never another machine (a substitute)
    assert together and {i[0] for i in together} == {"f", "c"}
    assert all(w.startswith("often bought with") for w in _texts(page, "#together .card .why"))
    cup = next(i for i in together if i.startswith("c"))
    assert page.text_content(f"#together .card[data-item='{cup}'] .title") == f"陶瓷咖啡杯 {cup}"

    # a click in the list quotes its request_id; the clicked product's page opens with its own lists
    rid = page.get_attribute("#together", "data-request-id")
    page.click(f"#together .card[data-item='{cup}'] .title")
    page.wait_for_function(f"document.getElementById('product-title')?.textContent === '陶瓷咖啡杯 {cup}'")
    page.wait_for_function("[...document.querySelectorAll('#together .card')].some(c => c.dataset.item[0] === 'm')")
    ev = store.events(user_id=_visitor(page))
    clicks = ev[ev["event_type"] == "click"]
    assert clicks["item_id"].tolist() == [cup] and clicks["request_id"].tolist() == [rid]
    assert ev[ev["event_type"] == "view"]["item_id"].tolist() == ["m1", cup]
    page.screenshot(path=str(SHOTS / "product.png"), full_page=True) if SHOTS else None
    assert not errors, errors
    page.close()


@pytest.mark.slow  # trains the basket shop
def test_cart_page_completes_the_cart_without_its_own_items(shop, browser) -> None:
    base, store = shop
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    page.wait_for_selector("#recs .card")
    for n, item in enumerate(["m2", "f3"], start=1):
        page.evaluate(f"location.hash = '#/product/{item}'")
        page.wait_for_function(f"document.getElementById('product-title')?.textContent === '{_title(item)}'")
        page.click("#product-add")
        page.wait_for_function(f"document.getElementById('cart-count').textContent === '{n}'")
    page.click("#cart-link")
    page.wait_for_selector("#complete .card")
    assert page.eval_on_selector_all("#cart-items li", "els => els.map(e => e.dataset.item)") == ["m2", "f3"]
    complete = _items(page, "complete")
    # complements of the cart, none of its items nor of their kinds (a second machine or filter)
    assert complete and {i[0] for i in complete} == {"c"}
    assert all(w.startswith("often bought with") for w in _texts(page, "#complete .card .why"))

    # remove the filter: the server's cart follows the event, so filters complete the machine again
    page.click("#cart-items li[data-item='f3'] .remove")
    page.wait_for_function("document.getElementById('cart-count').textContent === '1'")
    page.wait_for_function("[...document.querySelectorAll('#complete .card')].some(c => c.dataset.item[0] === 'f')")
    assert page.eval_on_selector_all("#cart-items li", "els => els.map(e => e.dataset.item)") == ["m2"]
    assert "m2" not in _items(page, "complete")
    ev = store.events(user_id=_visitor(page))
    assert ev[ev["event_type"] == "add_to_cart"]["item_id"].tolist() == ["m2", "f3"]
    assert ev[ev["event_type"] == "remove_from_cart"]["item_id"].tolist() == ["f3"]
    page.screenshot(path=str(SHOTS / "cart.png"), full_page=True) if SHOTS else None

    # home: the machine still in the cart is where to continue; nothing bought, so no "buy again"
    page.click("#home-link")
    page.wait_for_selector("#continue .card[data-item='m2']")
    assert page.text_content("#continue .card[data-item='m2'] .why") == "still in your cart"
    page.wait_for_selector("#buy-again[data-request-id]", state="attached")
    assert page.is_hidden("#buy-again-section")
    assert not errors, errors
    page.close()
