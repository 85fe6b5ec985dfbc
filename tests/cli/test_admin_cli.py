"""init / stats / datasets from the command line, with exit codes."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from shopsense.cli.main import app

runner = CliRunner()


def test_init_and_stats(tmp_path) -> None:
    home = str(tmp_path / "kb")
    r = runner.invoke(app, ["--home", home, "init"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["--home", home, "stats", "--json"])
    assert r.exit_code == 0
    assert json.loads(r.stdout)["products"] == 0


def test_stats_without_store_is_exit_2(tmp_path) -> None:
    r = runner.invoke(app, ["--home", str(tmp_path / "none"), "stats"])
    assert r.exit_code == 2
    assert "shopsense init" in r.stderr


def test_bad_store_url_is_exit_2(tmp_path) -> None:
    r = runner.invoke(app, ["--store", "mongodb://x", "init"])
    assert r.exit_code == 2
    assert "Unknown store" in r.stderr


def test_datasets_errors(tmp_path) -> None:
    r = runner.invoke(app, ["--home", str(tmp_path), "datasets", "load", "nope", "--out", str(tmp_path)])
    assert r.exit_code == 2 and "valid: scientific" in r.stderr
    r = runner.invoke(app, ["--home", str(tmp_path), "datasets", "load", "scientific"])
    assert r.exit_code == 2 and "--out" in r.stderr


@pytest.mark.realdata
def test_load_scientific_into_store(tmp_path, shared_data) -> None:
    home = str(tmp_path / "kb")
    r = runner.invoke(app, ["--home", home, "datasets", "load", "scientific", "--into-store"])
    assert r.exit_code == 0, r.output
    s = json.loads(runner.invoke(app, ["--home", home, "stats", "--json"]).stdout)
    assert s["products"] == 4385 and s["events"] == 59427 and s["users"] == 8442
    # loading again changes nothing
    runner.invoke(app, ["--home", home, "datasets", "load", "scientific", "--into-store"])
    assert json.loads(runner.invoke(app, ["--home", home, "stats", "--json"]).stdout)["events"] == 59427


@pytest.mark.realdata
def test_write_files(tmp_path, shared_data) -> None:
    r = runner.invoke(app, ["datasets", "load", "homedepot", "--out", str(tmp_path), "--format", "tsv"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["products.tsv", "qrels.tsv", "queries.tsv"]
