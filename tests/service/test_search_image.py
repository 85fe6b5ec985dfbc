"""``POST /search/image``: upload a picture, get the products that look like it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shopsense.config import load_settings
from shopsense.service.app import create_app
from shopsense.service.keys import create_key
from shopsense.store import open_store
from tests.images import image_shop, make_tiny_clip, picture, shop_products

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, dict[str, str], Path]]:
    clip = make_tiny_clip(tmp_path_factory.mktemp("clip"))
    home = tmp_path_factory.mktemp("home")
    store, settings, _ = image_shop(home, clip)
    hdr = {"X-API-Key": create_key(store, ["read", "write"])[1]}
    settings.images = settings.images.model_copy(update={"max_upload_bytes": 20_000})
    with TestClient(create_app(settings, block_on_load=True)) as c:
        yield c, hdr, home
    store.close()


def test_raw_and_multipart_uploads_find_the_product_in_the_picture(client) -> None:
    c, hdr, home = client
    data = (home / "media" / "mug2.png").read_bytes()
    raw = c.post("/search/image", content=data, headers={**hdr, "Content-Type": "image/png"}, params={"k": 3})
    assert raw.status_code == 200, raw.text
    body = raw.json()
    assert body["items"][0]["item_id"] == "mug2" and body["items"][0]["source"] == "image"
    assert len(body["items"]) == 3 and body["model_version"]
    form = c.post("/search/image", files={"image": ("mug.png", data, "image/png")}, headers=hdr, params={"k": 2})
    assert form.status_code == 200, form.text
    assert [h["item_id"] for h in form.json()["items"]][0] == "mug2"
    only = c.post(
        "/search/image", content=data, headers={**hdr, "Content-Type": "image/png"}, params={"category": "lamp", "k": 3}
    )
    assert {h["item_id"][:4] for h in only.json()["items"]} == {"lamp"}


def test_bad_uploads_are_clear_4xx(client) -> None:
    c, hdr, _ = client
    png = {**hdr, "Content-Type": "image/png"}
    assert c.post("/search/image", content=b"not a picture", headers=png).status_code == 415
    assert (
        c.post("/search/image", content=b"{}", headers={**hdr, "Content-Type": "application/json"}).status_code == 415
    )
    big = picture((1, 2, 3), size=(120, 120), fmt="BMP")  # ~43 KB, over this server's 20 KB
    r = c.post("/search/image", content=big, headers=png)
    assert r.status_code == 413 and "bytes" in r.text
    assert c.post("/search/image", content=b"", headers=png).status_code == 400
    no_file = c.post("/search/image", data={"note": "x"}, files={"other": ("a.txt", b"", "text/plain")}, headers=hdr)
    assert no_file.status_code == 400
    assert c.post("/search/image", content=picture((1, 2, 3)), headers={"Content-Type": "image/png"}).status_code == 401


def test_a_version_without_pictures_says_503(tmp_path: Path) -> None:
    from shopsense.training import train
    from tests.images import FAST, shop_events

    settings = load_settings(home=tmp_path)
    store = open_store(settings.store_url)
    store.upsert_products(shop_products(tmp_path))
    store.add_events(shop_events(12))
    train(store, settings, config=FAST)
    hdr = {"X-API-Key": create_key(store, ["read"])[1]}
    with TestClient(create_app(settings, block_on_load=True)) as c:
        r = c.post("/search/image", content=picture((1, 2, 3)), headers={**hdr, "Content-Type": "image/png"})
    assert r.status_code == 503 and "[images] model" in r.json()["detail"]
    store.close()
