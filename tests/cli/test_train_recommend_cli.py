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
