"""``shopsense train`` and ``shopsense recommend`` on the demo shop, end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "shopsense" / "sample"


@pytest.mark.slow
def test_train_then_recommend_prints_reasons(tmp_path: Path):
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    assert runner.invoke(app, [*home, "recommend", "U259"]).exit_code == 2  # nothing trained yet
    assert runner.invoke(app, [*home, "ingest", "products", str(SAMPLE / "products.csv")]).exit_code == 0
    assert runner.invoke(app, [*home, "ingest", "events", str(SAMPLE / "events.csv")]).exit_code == 0
    r = runner.invoke(app, [*home, "train", "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["n_items"] == 360 and summary["version"]
    r = runner.invoke(app, [*home, "recommend", "U259", "-k", "3", "--json"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert len(rows) == 3 and all(row["explanation"] for row in rows)
    r = runner.invoke(app, [*home, "recommend", "nobody", "-k", "2", "--category", "Coffee"])
    assert r.exit_code == 0 and "popular in Coffee" in r.stdout
    assert runner.invoke(app, [*home, "recommend", "U259", "-k", "0"]).exit_code == 2


def test_a_relative_home_works_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Trained with `--home tr` in one folder, served with the absolute home from another: the version's
    folder is recorded relative to the home, not to the folder the training ran in."""
    from shopsense.config import load_settings
    from shopsense.store import open_store
    from shopsense.training import train
    from tests.test_recommend import FAST, _events, _products

    runner = CliRunner()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _products().assign(title=lambda d: d["item_id"]).to_csv(tmp_path / "p.csv", index=False)  # no text: no encoder
    _events().to_csv(tmp_path / "e.csv", index=False)
    monkeypatch.chdir(tmp_path / "a")
    assert runner.invoke(app, ["--home", "tr", "init"]).exit_code == 0
    assert runner.invoke(app, ["--home", "tr", "ingest", "products", "../p.csv"]).exit_code == 0
    assert runner.invoke(app, ["--home", "tr", "ingest", "events", "../e.csv"]).exit_code == 0
    settings = load_settings(home="tr")  # what `--home tr` gives `shopsense train`
    store = open_store(settings.store_url, create=False)
    version = train(store, settings, config=FAST).version
    monkeypatch.chdir(tmp_path / "b")
    r = runner.invoke(app, ["--home", str(tmp_path / "a" / "tr"), "recommend", "u0", "-k", "2", "--json"])
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["item_id"][0] for line in r.stdout.strip().splitlines()] == ["k", "k"]
    assert store.versions().set_index("version").loc[version, "path"] == f"models/{version}"
    store.close()
