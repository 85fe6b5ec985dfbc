"""The storefront's pictures in headless Chromium: product cards show the pictures the media folder
serves, and "by picture" uploads an image and lists the products that look like it (a shop trained
with the tiny CLIP the tests build)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shopsense.service.app import create_app
from tests.images import image_shop, make_tiny_clip
from tests.service.test_pages_browser import ARGS, CHROMIUM, _need_chromium, _serving

pytestmark = [pytest.mark.browser, pytest.mark.slow]

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    _need_chromium()
    clip = make_tiny_clip(tmp_path_factory.mktemp("clip"))
    store, settings, _ = image_shop(tmp_path_factory.mktemp("home"), clip)
    with _serving(create_app(settings, block_on_load=True)) as base:
        yield base, settings.media_dir
    store.close()


def test_cards_show_pictures_and_a_picture_finds_its_product(shop) -> None:
    from playwright.sync_api import sync_playwright

    base, media = shop
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.wait_for_selector("#recs .card img.pic")
        page.wait_for_function(
            "[...document.querySelectorAll('#recs .card img.pic')].some(i => i.complete && i.naturalWidth > 0)"
        )
        page.set_input_files("#picture", str(media / "mug2.png"))
        page.wait_for_function("document.querySelector('#results .card')?.dataset.item === 'mug2'")
        assert "look like your picture" in page.text_content("#results-title")
        page.click("#results .card img.pic")  # a picture opens its product, which shows it large
        page.wait_for_selector("#product .product img.pic")
        assert errors == []
        browser.close()
