"""The sample shop's generated pictures: deterministic, small, one per product, alike within a kind."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.cli.main import app
from shopsense.data.sample import CATALOG, picture, sample_paths, sample_pictures


def test_every_sample_product_names_a_picture_that_init_writes(tmp_path: Path) -> None:
    from PIL import Image

    products = pd.read_csv(sample_paths()[0])
    assert products[C.IMAGE_URL].tolist() == [f"sample/{i}.png" for i in products[C.ITEM]]
    assert sample_pictures(tmp_path) == len(products)
    files = sorted((tmp_path / "sample").iterdir())
    assert len(files) == len(products)
    sizes = [f.stat().st_size for f in files]
    assert max(sizes) < 4_000 and sum(sizes) < 300_000  # a few hundred bytes each
    with Image.open(files[0]) as im:
        assert im.size == (96, 96)
    again = tmp_path / "again"
    sample_pictures(again)
    assert (again / "sample" / files[7].name).read_bytes() == files[7].read_bytes()  # deterministic


def test_a_picture_says_the_category_and_the_kind() -> None:
    from PIL import Image

    def pixels(b: bytes) -> set[tuple[int, int, int]]:
        with Image.open(io.BytesIO(b)) as im:
            return set(im.convert("RGB").getdata())

    (cat_a, (nouns_a, brands_a, _, _)), (cat_b, _) = list(CATALOG.items())[:2]
    one = picture(cat_a, nouns_a[0], brands_a[0])
    assert picture(cat_a, nouns_a[0], brands_a[0]) == one
    assert picture(cat_a, nouns_a[1], brands_a[0]) != one  # another kind: another colour
    assert picture(cat_b, nouns_a[0], brands_a[0]) != one  # another category: another shape
    assert len(pixels(one)) <= 8


def test_init_writes_the_sample_pictures_into_the_media_folder(tmp_path: Path) -> None:
    r = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "init", "--sample-pictures"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "home" / "media" / "sample" / "P0001.png").exists()
    assert "360 sample product pictures" in r.output
