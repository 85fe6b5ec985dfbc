"""Every route behind its scope: 401 without (or with a bad) key, 403 with the wrong scope, success with the right one."""

from __future__ import annotations

import pytest

from tests.service.conftest import Env

EVENT = {"user_id": "u1", "item_id": "p1", "event_type": "view"}
PRODUCT = {"item_id": "p9", "title": "Tea kettle", "category": "Kitchen > Tea"}
EXPERIMENT = {"name": "new", "arms": {"control": "v1", "treatment": "v2"}, "surface": "search"}
#: not idempotent: the repeated call (admin as a bearer) is refused as a repeat, not for its key
REPEAT_REFUSED = {("POST", "/experiments"): 409, ("POST", "/experiments/running/stop"): 409}

# (method, path, json body, required scope, a scope that must be refused)
ROUTES = [
    ("GET", "/recommend?user_id=u1", None, "read", "write"),
    ("GET", "/search?q=shoe", None, "read", "write"),
    ("GET", "/similar/p1", None, "read", "write"),
    ("GET", "/autocomplete?q=re", None, "read", "write"),
    ("GET", "/products/p1", None, "read", "write"),
    ("GET", "/products", None, "read", "write"),
    ("GET", "/models", None, "read", "write"),
    ("GET", "/dashboard/data", None, "read", "write"),
    ("GET", "/dashboard/experiments/running", None, "read", "write"),
    ("POST", "/events", EVENT, "write", "read"),
    ("PUT", "/products", PRODUCT, "admin", "write"),
    ("DELETE", "/products/p6", None, "admin", "write"),
    ("DELETE", "/users/u1", None, "admin", "write"),
    ("GET", "/users/u1/export", None, "admin", "read"),
    ("POST", "/users/u1/opt-out", None, "admin", "write"),
    ("POST", "/users/u1/opt-in", None, "admin", "write"),
    ("POST", "/models/v1/activate", None, "admin", "read"),
    ("POST", "/models/rollback", None, "admin", "read"),
    ("GET", "/train", None, "admin", "read"),
    ("POST", "/experiments", EXPERIMENT, "admin", "write"),
    ("GET", "/experiments", None, "admin", "read"),
    ("GET", "/experiments/running/report", None, "admin", "read"),
    ("POST", "/experiments/running/stop", None, "admin", "write"),
    ("GET", "/keys", None, "admin", "write"),
    ("POST", "/keys", {"scopes": ["read"]}, "admin", "write"),
]


@pytest.mark.parametrize(("method", "path", "body", "scope", "wrong"), ROUTES, ids=[f"{m} {p}" for m, p, *_ in ROUTES])
def test_scopes(env: Env, method: str, path: str, body: dict | None, scope: str, wrong: str) -> None:
    c = env.client
    if path == "/models/rollback":  # something to roll back to, and back again
        env.store.register_version("v0", status="complete")
        env.store.activate_version("v0")
        env.store.activate_version("v1")
    if path.startswith(("/experiments", "/dashboard/experiments")):  # a second version, and a running experiment
        from shopsense import experiments

        env.store.register_version("v2", status="complete")
        experiments.start(env.store, env.settings.home, "running", ["control=v1", "treatment=v2"])
    r = c.request(method, path, json=body)
    assert r.status_code == 401, r.text
    assert "API key" in r.json()["detail"]
    assert c.request(method, path, json=body, headers={"X-API-Key": "ss_nope_nope"}).status_code == 401
    r = c.request(method, path, json=body, headers=env.h(wrong))
    assert r.status_code == 403, r.text
    assert scope in r.json()["detail"]
    r = c.request(method, path, json=body, headers=env.h(scope))
    assert r.status_code < 300, r.text
    # admin holds every scope; bearer works like the header
    r = c.request(method, path, json=body, headers={"Authorization": f"Bearer {env.keys['admin']}"})
    repeat = REPEAT_REFUSED.get((method, path), 404 if method == "DELETE" else None)
    assert r.status_code < 300 or r.status_code == repeat, r.text


def test_public_routes_need_no_key(env: Env) -> None:
    c = env.client
    assert c.get("/health").json() == {"status": "ok"}
    assert c.get("/ready").json() == {"status": "ready", "model_version": "v1"}
    m = c.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    assert 'shopsense_http_requests_total{method="GET",route="/health",status="200"} 1' in m.text
    assert 'shopsense_model_loaded{version="v1"} 1' in m.text
    assert c.get("/openapi.json").json()["info"]["title"] == "shopsense"


def test_revoked_key_is_refused(env: Env) -> None:
    c = env.client
    created = c.post("/keys", json={"scopes": ["read"], "name": "tmp"}, headers=env.h("admin")).json()
    assert created["scopes"] == ["read"] and created["key"].startswith("ss_")
    hdr = {"X-API-Key": created["key"]}
    assert c.get("/products/p1", headers=hdr).status_code == 200
    listed = c.get("/keys", headers=env.h("admin")).json()
    assert created["key_id"] in {k["key_id"] for k in listed}
    assert all("key" not in k for k in listed)  # never shown again
    assert c.delete(f"/keys/{created['key_id']}", headers=env.h("admin")).status_code == 200
    assert c.get("/products/p1", headers=hdr).status_code == 401
    assert c.delete("/keys/nope", headers=env.h("admin")).status_code == 404


def test_keys_are_stored_hashed(env: Env) -> None:
    from sqlalchemy import text

    with env.store.engine.connect() as conn:
        rows = conn.execute(text("SELECT key_id, key_hash, scopes FROM api_keys")).fetchall()
    stored = " ".join(str(x) for r in rows for x in r)
    for key in env.keys.values():
        assert key not in stored
        assert key.split("_", 2)[2] not in stored  # the whole secret (token_urlsafe may contain "_")


def _page_key(env: Env) -> str:
    import re

    return re.search(r'name="shopsense-key" content="([^"]+)"', env.client.get("/").text).group(1)


#: what the storefront's public page key may do: lists, catalog reads and its own shopper's events
PAGE_KEY_ALLOWED = {
    ("GET", p) for p in ("/recommend?user_id=u1", "/search?q=shoe", "/similar/p1", "/autocomplete?q=re")
} | {("GET", "/products/p1"), ("GET", "/products"), ("POST", "/events")}


def test_page_key_only_reads_lists_and_posts_its_shoppers_events(env: Env) -> None:
    key = _page_key(env)
    assert key.startswith("ss_") and key not in env.client.get("/dashboard").text  # the dashboard embeds none
    for method, path, body, scope, _ in ROUTES:
        r = env.client.request(method, path, json=body, headers={"X-API-Key": key})
        if (method, path) in PAGE_KEY_ALLOWED:
            assert r.status_code == 200, (method, path, r.text)
        else:
            assert r.status_code == 403, (method, path, r.text)
            assert "page key" in r.json()["detail"] and scope in r.json()["detail"]
    assert env.store.api_keys().empty or key.split("_")[1] not in set(env.store.api_keys()["key_id"])  # never stored


def test_an_api_key_must_name_the_user(env: Env) -> None:
    """Only the page key acts for a user it does not name (its cookie's shopper)."""
    c = env.client
    r = c.get("/recommend", headers=env.h("read"))
    assert r.status_code == 422 and "user_id" in r.json()["detail"]
    r = c.post("/events", json=[EVENT, {"item_id": "p1", "event_type": "view"}], headers=env.h("write"))
    assert r.status_code == 422 and r.json()["detail"] == "event 1: user_id is required"
    assert env.store.events(user_id="u1").empty


def test_pages_off_means_no_page_key(settings) -> None:
    from tests.service.conftest import make_env

    s = settings.model_copy(update={"service": settings.service.model_copy(update={"pages": False})})
    for e in make_env(s):
        assert e.client.get("/").status_code == 404
        assert e.client.get("/dashboard").status_code == 404
        assert e.client.app.state.shopsense.page_key is None
