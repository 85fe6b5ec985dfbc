"""``shopsense export --format parquet``: the store's catalog and events as a Parquet snapshot, streamed."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.cli.main import app
from shopsense.data.export import EVENTS_FILE, MANIFEST_FILE, SEQ, export_parquet, read_manifest, read_products
from shopsense.data.ingest import ingest_events, ingest_products
from shopsense.data.sample import sample_paths
from shopsense.exceptions import ShopsenseError
from shopsense.store import KnowledgeStore


@pytest.fixture
def sample(store: KnowledgeStore) -> KnowledgeStore:
    products, events = sample_paths()
    ingest_products(store, products)
    ingest_events(store, events)
    return store


def test_the_snapshot_holds_what_the_store_gives_the_trainer_in_its_order(sample: KnowledgeStore, tmp_path: Path):
    sample.set_opted_out("U001")  # an opted-out shopper's events shape nothing: not exported
    seen: list[int] = []
    report = export_parquet(sample, tmp_path / "snap", batch_size=1000, progress=seen.append)
    want = sample.events(include_opted_out=False)
    assert report.events == len(want) == sum(seen) and max(seen) == 1000 and "U001" not in set(want[C.USER])
    assert len(seen) == pq.ParquetFile(tmp_path / "snap" / EVENTS_FILE).num_row_groups  # one batch at a time
    got = pd.read_parquet(tmp_path / "snap" / EVENTS_FILE)
    assert list(got.sort_values([C.TIMESTAMP, SEQ]).index) == list(got.index)  # time, then arrival
    for col in (C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.QUERY, C.SESSION):
        a, b = got[col].tolist(), want[col].tolist()
        assert [None if pd.isna(x) else x for x in a] == [None if pd.isna(x) else x for x in b], col
    products = read_products(tmp_path / "snap")
    assert products.equals(sample.products())
    assert read_manifest(tmp_path / "snap") == {"format_version": 1, "products": len(products), "events": len(want)}


def test_an_unfinished_snapshot_says_to_export_again(tmp_path: Path):
    (tmp_path / "snap").mkdir()
    with pytest.raises(ShopsenseError, match="shopsense export --format parquet"):
        read_manifest(tmp_path / "snap")


def test_the_cli_exports_with_a_summary(tmp_path: Path):
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    products, events = sample_paths()
    assert runner.invoke(app, [*home, "ingest", "products", str(products)]).exit_code == 0
    assert runner.invoke(app, [*home, "ingest", "events", str(events)]).exit_code == 0
    r = runner.invoke(app, [*home, "export", "--format", "parquet", str(tmp_path / "snap"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["products"] == 360 and summary["events"] == 5236
    assert json.loads((tmp_path / "snap" / MANIFEST_FILE).read_text())["events"] == 5236
    bad = runner.invoke(app, [*home, "export", "--format", "csv", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "valid formats: parquet" in bad.output
