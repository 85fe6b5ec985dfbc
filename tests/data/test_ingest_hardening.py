"""What ingest questions (issue 13): JSON objects/arrays where one value belongs, NUL bytes, ids
repeated within a file (the last row wins, counted), events for products not in the catalog
(kept, counted), and formula-looking cells in the CSV files the engine writes."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.csvfile import safe_cell, write_frame
from shopsense.data.ingest import ingest, ingest_events, ingest_products
from shopsense.exceptions import SchemaError
from shopsense.store import KnowledgeStore

TINY = IngestConfig(batch_rows=2)

P = '{"item_id": "X", "title": "Xylophone"}\n{"item_id": "Y", "title": "Yoyo"}\n'
E = '{"user_id": "u1", "item_id": "X", "event_type": "view", "timestamp": 1}\n'

REFUSED = [
    # (kind, file name, content, line, column, reason)
    (
        "products",
        "p.jsonl",
        P + '{"item_id": {"a": 1}, "title": "Z"}\n',
        3,
        C.ITEM,
        "expected an id, found a JSON object",
    ),
    ("products", "p.jsonl", P + '{"item_id": ["Z"], "title": "Z"}\n', 3, C.ITEM, "expected an id, found a JSON array"),
    ("products", "p.jsonl", P + '{"item_id": "Z", "title": {"en": "Z"}}\n', 3, C.TITLE, "expected text, found a JSON"),
    ("products", "p.jsonl", P + '{"item_id": "Z", "title": "Z", "price": [1]}\n', 3, C.PRICE, "expected a number"),
    ("products", "p.jsonl", P + '{"item_id": "Z", "title": "Z", "category": {"a": 1}}\n', 3, C.CATEGORY, "found"),
    (
        "events",
        "e.jsonl",
        E + '{"user_id": {"id": 1}, "item_id": "X", "event_type": "view", "timestamp": 2}\n',
        2,
        C.USER,
        "expected an id, found a JSON object",
    ),  # fmt: skip
    (
        "events",
        "e.jsonl",
        E + '{"user_id": "u1", "item_id": "X", "event_type": ["view"], "timestamp": 2}\n',
        2,
        C.EVENT_TYPE,
        "expected an event type",
    ),  # fmt: skip
    ("products", "p.csv", "item_id,title\nX,Xylophone\nY,Yoyo\nZ,Zit\x00her\n", 4, C.TITLE, "NUL byte"),
    ("products", "p.jsonl", P + '{"item_id": "Z\\u0000", "title": "Z"}\n', 3, C.ITEM, "NUL byte"),
    ("events", "e.csv", "user_id,item_id,event_type,timestamp\nu1,X,view,1\nu\x002,X,view,2\n", 3, C.USER, "NUL byte"),
]


@pytest.mark.parametrize(("kind", "name", "content", "line", "column", "reason"), REFUSED)
def test_nested_values_and_nul_bytes_are_refused_with_file_line_column(
    store: KnowledgeStore, tmp_path: Path, kind: str, name: str, content: str, line: int, column: str, reason: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SchemaError) as e:
        ingest(store, kind, path, config=TINY)
    assert [(x.line, x.column) for x in e.value.errors] == [(line, column)], e.value
    assert reason in e.value.errors[0].reason
    assert store.stats()["products"] == store.stats()["events"] == 0


def test_a_category_list_is_joined(store: KnowledgeStore, tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"item_id": "X", "title": "X", "category": ["Kitchen", "Coffee"]}\n', encoding="utf-8")
    ingest_products(store, path)
    assert store.get_product("X")[C.CATEGORY] == "Kitchen > Coffee"


@pytest.mark.parametrize("config", [IngestConfig(), TINY], ids=["one-batch", "batches-of-2"])
def test_a_repeated_id_keeps_the_last_row_and_is_counted_once(store: KnowledgeStore, tmp_path: Path, config) -> None:
    path = tmp_path / "p.csv"
    path.write_text("item_id,title\nA,Apple v1\nB,Banana\nA,Apple v2\nC,Cherry\nA,Apple v3\n", encoding="utf-8")
    report = ingest_products(store, path, config=config)
    assert (report.read, report.inserted, report.repeated, report.duplicates) == (5, 3, 2, 0)
    assert store.get_product("A")[C.TITLE] == "Apple v3"
    assert "2 row(s) repeated an earlier item_id in the file: the last one was kept" in report.summary()
    again = ingest_products(store, path, config=config)
    assert again.repeated == 2 and store.get_product("A")[C.TITLE] == "Apple v3"
    if config.batch_rows > 5:  # across batches A's first row does overwrite v3 before v3 comes back
        assert (again.inserted, again.duplicates) == (0, 3)


def test_events_for_unknown_products_are_kept_and_counted(store: KnowledgeStore, tmp_path: Path) -> None:
    ingest_products(store, _write(tmp_path / "p.csv", "item_id,title\nA,Apple\nB,Banana\n"))
    events = (
        "user_id,item_id,event_type,timestamp,query\n"
        "u1,A,view,1,\nu1,Z,view,2,\nu2,Z,click,3,\nu2,,search,4,shoes\nu3,Q,purchase,5,\nu3,B,view,6,\n"
    )
    report = ingest_events(store, _write(tmp_path / "e.csv", events), config=TINY)
    assert (report.inserted, report.unknown_items) == (6, 3)
    assert "3 event(s) name an item_id not in the catalog (kept)" in report.summary()
    assert report.as_dict()["unknown_items"] == 3


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_safe_cell() -> None:
    for cell in ('=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(cell) == "'" + cell
    for cell in ("Apple", "-1.5", "+3", "1e5", "", None, 5, -1.0, "a=b"):
        assert safe_cell(cell) == cell


def test_the_rejects_csv_neutralises_formulas(store: KnowledgeStore, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "=cmd.csv", "item_id,title,price\n=A1,=HYPERLINK(1),cheap\n@B,Banana,1\n")
    report = ingest_products(store, Path("=cmd.csv"), on_error="skip", rejects_path="bad.csv")
    assert report.rejected == 1
    with open(tmp_path / "bad.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["file"] == "'=cmd.csv"
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())
    assert store.get_product("@B")[C.TITLE] == "Banana"  # stored as given


def test_dataset_exports_neutralise_formulas_in_csv_only(tmp_path: Path) -> None:
    from shopsense.cli.datasets import write_files
    from shopsense.data.public import PublicDataset

    products = pd.DataFrame({C.ITEM: ["1", "2"], C.TITLE: ["=1+1", "-5% off"], C.PRICE: [-1.0, 2.0]})
    events = pd.DataFrame({C.USER: ["@u"], C.ITEM: ["1"], C.EVENT_TYPE: ["view"], C.TIMESTAMP: [1.0]})
    ds = PublicDataset(name="t", products=products, events=events)
    for fmt in ("csv", "tsv", "jsonl"):
        write_files(ds, tmp_path / fmt, fmt)
    text = (tmp_path / "csv" / "products.csv").read_text(encoding="utf-8")
    assert "'=1+1" in text and "'-5% off" in text and "-1.0" in text
    assert "'@u" in (tmp_path / "tsv" / "events.tsv").read_text(encoding="utf-8")
    first = json.loads((tmp_path / "jsonl" / "products.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert first[C.TITLE] == "=1+1"
    frame = tmp_path / "f.csv"
    write_frame(pd.DataFrame({"a": ["=x", None], "b": [1, 2]}), frame)
    assert frame.read_text(encoding="utf-8").splitlines() == ["a,b", "'=x,1", ",2"]
