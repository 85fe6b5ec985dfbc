"""``GET /media/...``: the product pictures relative image_url values name, for the storefront."""

from __future__ import annotations

from shopsense.data.sample import sample_pictures
from tests.service.conftest import Env


def test_media_serves_pictures_without_a_key_and_nothing_else(env: Env) -> None:
    media = env.settings.media_dir
    sample_pictures(media)
    (media / "notes.txt").write_text("secret")
    (env.settings.home / "outside.png").write_bytes((media / "sample" / "P0001.png").read_bytes())
    r = env.client.get("/media/sample/P0001.png")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert r.content == (media / "sample" / "P0001.png").read_bytes()
    for path in ("/media/notes.txt", "/media/sample/P9999.png", "/media/../outside.png", "/media/%2e%2e/outside.png"):
        # 404, or 401 where the client folds the dots into another path (which needs a key)
        assert env.client.get(path).status_code in (401, 404), path


def test_the_storefront_shows_pictures(env: Env) -> None:
    js = env.client.get("/static/storefront.js").text
    assert "pictureUrl(p.image_url)" in js and '"/media/"' in js
