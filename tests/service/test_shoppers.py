"""The storefront's page key acts only for the anonymous shopper of its browser session: a signed,
http-only cookie set by the server decides the user, whatever user id a request names."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from shopsense import columns as C
from shopsense.service.app import create_app
from shopsense.service.shoppers import COOKIE
from tests.service.conftest import Env, fake_loader

JAR_DOMAIN = "testserver.local"  # where the test client's cookie jar keeps the server's cookies


def _page(client: TestClient) -> tuple[str, str]:
    """(page key, shopper id) of a storefront page load."""
    html = client.get("/").text
    key = re.search(r'name="shopsense-key" content="([^"]+)"', html).group(1)
    shopper = re.search(r'name="shopsense-shopper" content="([^"]+)"', html).group(1)
    return key, shopper


def test_the_page_load_sets_a_signed_http_only_cookie(env: Env) -> None:
    r = env.client.get("/")
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=shopper-") and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain http here: a Secure cookie would not return
    _, shopper = _page(env.client)
    assert env.client.cookies[COOKIE].split(".")[0] == shopper
    assert "set-cookie" not in env.client.get("/").headers  # a known shopper keeps the cookie it has


def test_the_cookie_decides_the_user_not_the_request(env: Env) -> None:
    c = env.client
    key, shopper = _page(c)
    hdr = {"X-API-Key": key}
    # an event naming someone else is recorded for the browser's own shopper
    r = c.post("/events", json={"user_id": "victim", "item_id": "p4", "event_type": "view"}, headers=hdr)
    assert r.status_code == 200
    assert c.post("/events", json={"item_id": "p5", "event_type": "click"}, headers=hdr).status_code == 200
    assert env.store.events(user_id="victim").empty
    assert env.store.events(user_id=shopper)[C.ITEM].tolist() == ["p4", "p5"]
    # lists are the shopper's (it looked at kitchen products), whoever the request names
    r = c.get("/recommend", params={"user_id": "victim", "k": 2}, headers=hdr).json()
    assert [h["item_id"] for h in r["items"]] == ["p6", "p1"]  # p4 and p5 were seen: the kitchen's unseen first
    r = c.get("/search", params={"q": "coffee", "user_id": "victim"}, headers=hdr).json()
    log = c.app.state.shopsense.impressions
    log.flush()
    assert env.store.events(user_id="victim").empty
    assert env.store.events(user_id=shopper)[C.EVENT_TYPE].tolist()[-1] == C.SEARCH
    assert set(env.store.impressions(r["request_id"])[C.USER]) == {shopper}


def test_the_first_api_call_without_a_cookie_gets_one_and_forged_cookies_are_replaced(env: Env) -> None:
    key, first = _page(env.client)
    hdr = {"X-API-Key": key}
    for forged in (None, "shopper-00000000000000aa.AAAA", f"{first}.{'A' * 24}", "victim"):
        c = TestClient(env.client.app)
        if forged:
            c.cookies.set(COOKIE, forged, domain=JAR_DOMAIN)
        r = c.post("/events", json={"item_id": "p1", "event_type": "view"}, headers=hdr)
        assert r.status_code == 200 and f"{COOKIE}=shopper-" in r.headers["set-cookie"]
        shopper = c.cookies[COOKIE].split(".")[0]
        assert shopper != first and (forged is None or not forged.startswith(shopper))
        assert env.store.events(user_id=shopper)[C.ITEM].tolist() == ["p1"]
        again = c.get("/recommend", headers=hdr)  # the cookie it got now names its shopper
        assert again.status_code == 200 and "set-cookie" not in again.headers
    assert env.store.events(user_id=first).empty


@pytest.mark.parametrize("configured", [False, True])
def test_processes_sharing_the_secret_accept_each_others_cookies(env: Env, configured: bool) -> None:
    """What every worker of ``serve --workers N`` does: one page key, one cookie secret."""
    s = env.settings
    shared: dict = {"page_key": "ss_feedbeef_the-shared-page-key-of-all-workers"}
    if configured:
        s = s.model_copy(update={"service": s.service.model_copy(update={"session_secret": "a configured secret"})})
    else:
        shared["session_secret"] = b"k" * 32
    apps = [create_app(s, loader=fake_loader(env.store, s), block_on_load=True, **shared) for _ in range(2)]
    with TestClient(apps[0]) as one, TestClient(apps[1]) as two:
        key, shopper = _page(one)
        two.cookies.set(COOKIE, one.cookies[COOKIE], domain=JAR_DOMAIN)
        assert _page(two) == (key, shopper) and key == shared["page_key"]
        r = two.post("/events", json={"item_id": "p2", "event_type": "view"}, headers={"X-API-Key": key})
        assert r.status_code == 200 and "set-cookie" not in r.headers
    assert env.store.events(user_id=shopper)[C.ITEM].tolist() == ["p2"]
