"""The hot list routes (``/recommend``, ``/search``, ``/autocomplete``) skip FastAPI's dependency
solving (:mod:`shopsense.service.lean`) but must answer exactly as declared: the same parameters in
the API docs, 422s in the same format, the key's policy and the shopper cookie."""

from __future__ import annotations

import pytest
from fastapi import APIRouter, Request

from shopsense.service.lean import LeanRoute, lean_get
from shopsense.service.shoppers import COOKIE
from tests.service.conftest import Env


@pytest.mark.parametrize(
    ("path", "params", "loc"),
    [
        ("/recommend", {"user_id": "u1", "k": 0}, ["query", "k"]),
        ("/recommend", {"user_id": "u1", "k": "ten"}, ["query", "k"]),
        ("/recommend", {"user_id": "u1", "surface": "nowhere"}, ["query", "surface"]),
        ("/recommend", {"user_id": "", "k": 3}, ["query", "user_id"]),
        ("/recommend", {"user_id": "u1", "diversity": 2}, ["query", "diversity"]),
        ("/search", {}, ["query", "q"]),
        ("/search", {"q": "x" * 501}, ["query", "q"]),
        ("/search", {"q": "shoe", "available": "perhaps"}, ["query", "available"]),
        ("/autocomplete", {"q": "sh", "k": 51}, ["query", "k"]),
    ],
)
def test_bad_query_values_get_422_naming_the_parameter(env: Env, path: str, params: dict, loc: list) -> None:
    r = env.client.get(path, params=params, headers=env.h("read"))
    assert r.status_code == 422, r.text
    assert [e["loc"] for e in r.json()["detail"]] == [loc]


def test_values_are_parsed_as_declared_and_unknown_parameters_ignored(env: Env) -> None:
    c, h = env.client, env.h("read")
    r = c.get("/recommend", params={"user_id": "u1", "k": "2", "details": "true", "utm_source": "mail"}, headers=h)
    assert r.status_code == 200 and len(r.json()["items"]) == 2
    assert r.json()["items"][0]["product"] is not None  # details=true: the catalog record comes along
    r = c.get("/search", params={"q": "running", "k": "1", "available": "1"}, headers=h)
    assert r.status_code == 200 and len(r.json()["items"]) == 1
    assert c.get("/autocomplete", params={"q": "ru"}, headers=h).json()["query"] == "ru"
    # a user id is required for /recommend with an operator key (none is implied)
    r = c.get("/recommend", params={"k": 2}, headers=h)
    assert r.status_code == 422 and "user_id is required" in r.text


def test_the_key_policy_still_applies(env: Env) -> None:
    c = env.client
    assert c.get("/search", params={"q": "shoe"}).status_code == 401
    assert c.get("/search", params={"q": "shoe"}, headers={"X-API-Key": "ss_nope_nope"}).status_code == 401
    assert c.get("/autocomplete", params={"q": "sh"}, headers=env.h("write")).status_code == 403
    assert c.get(
        "/recommend", params={"user_id": "u1"}, headers={"Authorization": f"Bearer {env.keys['read']}"}
    ).is_success


def test_the_page_key_gets_its_shopper_cookie_on_a_lean_route(env: Env) -> None:
    key = env.client.app.state.shopsense.page_key
    r = env.client.get("/recommend", params={"user_id": "someone-else", "k": 2}, headers={"X-API-Key": key})
    assert r.status_code == 200 and f"{COOKIE}=shopper-" in r.headers["set-cookie"]


def test_the_docs_list_every_query_parameter_and_the_key(env: Env) -> None:
    spec = env.client.get("/openapi.json").json()["paths"]
    params = {p["name"] for p in spec["/recommend"]["get"]["parameters"]}
    assert {"user_id", "k", "category", "surface", "item_id", "details"} <= params
    assert {p["name"] for p in spec["/search"]["get"]["parameters"]} >= {"q", "k", "brand", "available"}
    assert spec["/search"]["get"]["security"]


def test_an_endpoint_it_cannot_supply_is_refused_at_start_up() -> None:
    router = APIRouter()

    async def odd(request: Request, other: int = 3) -> dict:
        return {}

    with pytest.raises(TypeError, match="cannot supply parameter 'other'"):
        lean_get(router, "/odd")(odd)
    assert not any(isinstance(r, LeanRoute) for r in router.routes)


def test_chinese_queries_and_ids_pass_through_unchanged(env: Env) -> None:
    """Percent-encoded non-ASCII values are decoded once and checked by characters, not bytes."""
    c, h = env.client, env.h("read")
    r = c.get("/search", params={"q": "电饭锅 跑鞋", "user_id": "顾客-七"}, headers=h)
    assert r.status_code == 200 and r.json()["query"] == "电饭锅 跑鞋"
    assert c.get("/search", params={"q": "锅" * 500}, headers=h).status_code == 200  # 500 characters, 1,500 bytes
    assert c.get("/search", params={"q": "锅" * 501}, headers=h).status_code == 422
    r = c.get("/recommend", params={"user_id": "顾客-七", "k": 2, "category": "厨房"}, headers=h)
    assert r.status_code == 200, r.text
