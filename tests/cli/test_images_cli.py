"""The demo's image path end to end through the CLI: the sample shop's pictures written by ``init``,
read from the media folder by a training with a (tiny) CLIP, fused into every product's vector."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app
from tests.images import make_tiny_clip
from tests.shops import SMALL_ENGINE_TOML

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "shopsense" / "sample"

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_the_sample_shop_trains_with_its_pictures(tmp_path: Path) -> None:
    clip = make_tiny_clip(tmp_path / "clip")
    config = tmp_path / "shop.toml"
    config.write_text(SMALL_ENGINE_TOML + f'\n[images]\nmodel = "{clip}"\nweight = 0.3\n', encoding="utf-8")
    runner = CliRunner()
    base = ["--config", str(config), "--home", str(tmp_path / "home")]
    assert runner.invoke(app, [*base, "init", "--sample-pictures"]).exit_code == 0
    assert runner.invoke(app, [*base, "ingest", "products", str(SAMPLE / "products.csv")]).exit_code == 0
    assert runner.invoke(app, [*base, "ingest", "events", str(SAMPLE / "events.csv")]).exit_code == 0
    r = runner.invoke(app, [*base, "train", "--json"])
    assert r.exit_code == 0, r.output
    version = json.loads(r.stdout.strip().splitlines()[-1])["version"]
    params = json.loads((tmp_path / "home" / "models" / version / "images.json").read_text())
    assert params["weight"] == 0.3 and params["report"]["with_vector"] == 360 and params["report"]["failed"] == 0
    r = runner.invoke(app, [*base, "similar", "P0001", "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    assert len(r.stdout.strip().splitlines()) == 3
