"""Ingest into the store (SQLite, and PostgreSQL when configured): all-or-nothing, skip with rejects,
round trips of every format, idempotent re-ingest, mapping, streaming."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.ingest import ingest, ingest_events, ingest_products, ingest_users
from shopsense.exceptions import SchemaError
from shopsense.store import KnowledgeStore
from shopsense.store import tables as T

TINY = IngestConfig(batch_rows=2)  # several batches even for tiny files: rollback must undo earlier ones

PRODUCTS_CSV = """item_id,title,price,tags,attributes,available,category
A,Apple,1.5,fruit|red,"{""origin"": ""NZ""}",true,Food > Fruit
B,Banana,,fruit,,false,Food > Fruit
C,Cherry,3,,,,
"""

EVENTS_CSV = """user_id,item_id,event_type,timestamp,value,query
u1,A,view,1700000000,,
u1,A,purchase,2023-11-14T22:13:20Z,,
u2,,search,1700000100,,red fruit
u2,B,rating,1700000200,4,
"""


def _snapshot(store: KnowledgeStore) -> tuple:
    with store.engine.connect() as c:
        users = sorted(map(tuple, c.execute(select(T.users.c[C.USER], T.users.c[C.ATTRIBUTES])).fetchall()))
    return store.stats(), store.products().to_json(), store.events().to_json(), users


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def loaded(store: KnowledgeStore, tmp_path: Path) -> KnowledgeStore:
    """A store that already holds a catalog and some events (so "unchanged" means something)."""
    ingest_products(store, _write(tmp_path / "p0.csv", PRODUCTS_CSV))
    ingest_events(store, _write(tmp_path / "e0.csv", EVENTS_CSV))
    return store


GOOD_EVENTS = "user_id,item_id,event_type,timestamp\nu9,A,view,1\nu9,B,view,2\nu9,C,click,3\n"

BAD_FILES = [
    # (kind, file name, content, line, column, reason fragment)
    ("events", "e.csv", GOOD_EVENTS + "u9,C,view,yesterday\n", 5, C.TIMESTAMP, "bad timestamp 'yesterday'"),
    ("events", "e.csv", GOOD_EVENTS + "u9,C,like,4\n", 5, C.EVENT_TYPE, "valid: view, click"),
    ("events", "e.csv", GOOD_EVENTS + ",C,view,4\n", 5, C.USER, "empty user_id"),
    ("events", "e.csv", GOOD_EVENTS + "u9,,view,4\n", 5, C.ITEM, "only a search"),
    ("events", "e.csv", GOOD_EVENTS + "u9,C,view\n", 5, None, "expected 4 fields, found 3"),
    ("events", "e.csv", GOOD_EVENTS + "u" * 300 + ",C,view,4\n", 5, C.USER, "more than 256"),
    ("events", "e.tsv", GOOD_EVENTS.replace(",", "\t") + "u9\tC\tview\t17e12\n", 5, C.TIMESTAMP, "milliseconds"),
    (
        "events",
        "e.jsonl",
        '{"user_id": "u9", "item_id": "A", "event_type": "view", "timestamp": 1}\n{"user_id": 5\n',
        2,
        None,
        "not valid JSON",
    ),
    (
        "products",
        "p.csv",
        "item_id,title,price\nX,Xylophone,12\nY,Yoyo,2\nZ,Zither,cheap\n",
        4,
        C.PRICE,
        "not a number: 'cheap'",
    ),
    ("products", "p.csv", "item_id,title,price\nX,Xylophone,12\nY,Yoyo,2\nZ,Zither,-1\n", 4, C.PRICE, "must be >= 0"),
    ("products", "p.csv", "item_id,title\nX,Xylophone\nY,Yoyo\nZ,\n", 4, C.TITLE, "required value is missing"),
    (
        "products",
        "p.csv",
        "item_id,title,attributes\nX,Xylophone,\nY,Yoyo,\nZ,Zither,{oops\n",
        4,
        C.ATTRIBUTES,
        "not valid JSON",
    ),
    ("users", "u.csv", 'user_id,attributes\nu7,{}\nu8,{}\nu9,"[1]"\n', 4, C.ATTRIBUTES, "expected a JSON object"),
]


@pytest.mark.parametrize(
    ("kind", "name", "content", "line", "column", "reason"),
    BAD_FILES,
    ids=[f"{k}-{n.split('.')[-1]}-{c or 'row'}-{r.split()[0]}" for k, n, _, _, c, r in BAD_FILES],
)
def test_fail_leaves_the_store_unchanged(loaded, tmp_path, kind, name, content, line, column, reason) -> None:
    before = _snapshot(loaded)
    path = _write(tmp_path / name, content)
    with pytest.raises(SchemaError) as e:
        ingest(loaded, kind, path, config=TINY)
    assert _snapshot(loaded) == before
    assert any(err.line == line and err.column == column and reason in err.reason for err in e.value.errors), e.value
    assert f"{path}:{line}" in str(e.value)
    assert not list(tmp_path.glob("*.rejects.*"))  # fail writes no rejects file


def test_non_utf8_bytes_fail_with_line_and_column(loaded, tmp_path) -> None:
    before = _snapshot(loaded)
    path = tmp_path / "p.csv"
    path.write_bytes(b"item_id,title\nX,Xylophone\nY,Yoyo\nZ,Zither \xff\xfe\n")
    with pytest.raises(SchemaError) as e:
        ingest_products(loaded, path, config=TINY)
    assert [(x.line, x.column, x.reason) for x in e.value.errors] == [(4, C.TITLE, "not valid UTF-8 text")]
    assert _snapshot(loaded) == before


def test_missing_required_column_fails_before_reading(loaded, tmp_path) -> None:
    before = _snapshot(loaded)
    path = _write(tmp_path / "e.csv", "user_id,item_id,kind,timestamp\nu1,A,view,1\n")
    with pytest.raises(
        SchemaError, match="missing required event column.*'event_type'.*the file has: user_id, item_id, kind"
    ):
        ingest_events(loaded, path)
    assert _snapshot(loaded) == before


def test_skip_keeps_good_rows_and_writes_rejects(store, tmp_path) -> None:
    path = _write(tmp_path / "e.csv", GOOD_EVENTS + "u9,C,like,4\nu9,C,view,5\n,C,view,6\n")
    report = ingest_events(store, path, on_error="skip", config=TINY)
    assert (report.read, report.inserted, report.rejected, report.duplicates) == (6, 4, 2, 0)
    assert report.rejects_path == str(tmp_path / "e.rejects.jsonl")
    rejects = [json.loads(x) for x in Path(report.rejects_path).read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["column"]) for r in rejects] == [(5, C.EVENT_TYPE), (7, C.USER)]
    assert all(r["file"] == str(path) and r["reason"] and r["raw"] for r in rejects)
    assert store.stats()["events"] == 4
    # a CSV rejects file where asked
    again = ingest_events(store, path, on_error="skip", rejects_path=tmp_path / "bad.csv")
    assert again.inserted == 0 and again.duplicates == 4
    with open(tmp_path / "bad.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["line"], r["column"]) for r in rows] == [("5", C.EVENT_TYPE), ("7", C.USER)]


def test_reingest_changes_nothing(loaded, tmp_path) -> None:
    before = _snapshot(loaded)
    p = ingest_products(loaded, tmp_path / "p0.csv")
    e = ingest_events(loaded, tmp_path / "e0.csv")
    assert (p.inserted, p.duplicates, e.inserted, e.duplicates) == (0, 3, 0, 4)
    assert _snapshot(loaded) == before
    # a changed product is updated, the rest left alone
    _write(tmp_path / "p1.csv", PRODUCTS_CSV.replace("Banana", "Plantain"))
    assert ingest_products(loaded, tmp_path / "p1.csv").inserted == 1
    assert loaded.get_product("B")[C.TITLE] == "Plantain"


def test_repeat_purchase_at_another_time_is_a_new_event(loaded, tmp_path) -> None:
    path = _write(
        tmp_path / "e.csv",
        "user_id,item_id,event_type,timestamp\nu1,A,purchase,2023-11-14T22:13:20Z\nu1,A,purchase,1700000999\n",
    )
    r = ingest_events(loaded, path)
    assert (r.inserted, r.duplicates) == (1, 1)
    assert loaded.stats()["events_by_type"]["purchase"] == 2


def test_event_id_is_the_identity(store, tmp_path) -> None:
    path = _write(
        tmp_path / "e.csv",
        "event_id,user_id,item_id,event_type,timestamp\ne1,u1,A,view,1\ne1,u1,A,view,2\ne2,u1,A,view,1\n",
    )
    assert ingest_events(store, path).inserted == 2


def test_mapping(store, tmp_path) -> None:
    path = _write(tmp_path / "p.csv", "product_id,name\nA,Apple\n")
    r = ingest_products(store, path, mapping={"product_id": C.ITEM, "name": C.TITLE})
    assert r.inserted == 1 and store.get_product("A")[C.TITLE] == "Apple"


def test_users_and_their_attributes(store, tmp_path) -> None:
    path = _write(tmp_path / "u.jsonl", '{"user_id": "u1", "attributes": {"age": 31}}\n{"user_id": "u2"}\n')
    assert ingest_users(store, path).inserted == 2
    assert store.stats()["users"] == 2


# ---------------------------------------------------------------------------- round trips
PRODUCTS = pd.DataFrame(
    {
        C.ITEM: ["A", "B", "C"],
        C.TITLE: ["Apple, red", 'Banana "B"', "Cherry\nsweet"],
        C.CATEGORY: ["Food > Fruit", None, "Food"],
        C.PRICE: [1.5, None, 3.0],
        C.TAGS: [["fruit", "red"], None, ["stone fruit"]],
        C.ATTRIBUTES: [{"origin": "NZ", "organic": True}, None, {}],
        C.AVAILABLE: [True, False, True],
    }
)
EVENTS = pd.DataFrame(
    {
        C.USER: ["u1", "u1", "u2", "u2", "u1"],
        C.ITEM: ["A", "B", None, "C", "A"],
        C.EVENT_TYPE: ["view", "purchase", "search", "rating", "purchase"],
        C.TIMESTAMP: [1_700_000_000.0, 1_700_000_010.5, 1_700_000_020.0, 1_700_000_030.0, 1_700_000_040.0],
        C.VALUE: [None, 9.99, None, 4.0, 9.99],
        C.QUERY: [None, None, "red fruit", None, None],
    }
)


def _write_frame(df: pd.DataFrame, path: Path, fmt: str) -> None:
    flat = df.copy()
    if fmt in ("csv", "tsv") and C.TAGS in flat:
        flat[C.TAGS] = ["|".join(t) if t is not None else None for t in flat[C.TAGS]]
    if fmt != "jsonl" and C.ATTRIBUTES in flat:
        flat[C.ATTRIBUTES] = [json.dumps(a) if a is not None else None for a in flat[C.ATTRIBUTES]]
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(flat, preserve_index=False), path)
    elif fmt == "jsonl":
        with open(path, "w", encoding="utf-8") as f:
            for rec in flat.to_dict("records"):
                f.write(json.dumps({k: v for k, v in rec.items() if v is not None and v == v}) + "\n")
    else:
        flat.to_csv(path, sep="," if fmt == "csv" else "\t", index=False)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "parquet", "jsonl"])
def test_round_trip(store, tmp_path, fmt) -> None:
    _write_frame(PRODUCTS, tmp_path / f"p.{fmt}", fmt)
    _write_frame(EVENTS, tmp_path / f"e.{fmt}", fmt)
    assert ingest_products(store, tmp_path / f"p.{fmt}", config=TINY).inserted == 3
    assert ingest_events(store, tmp_path / f"e.{fmt}", config=TINY).inserted == 5
    got = store.products()
    for col in (C.ITEM, C.TITLE, C.AVAILABLE):
        assert got[col].tolist() == PRODUCTS[col].tolist(), col
    assert got[C.CATEGORY].tolist() == ["Food > Fruit", None, "Food"]  # the store reads missing as None
    assert got[C.PRICE].fillna(-1).tolist() == PRODUCTS[C.PRICE].fillna(-1).tolist()
    assert got[C.TAGS].tolist() == [["fruit", "red"], [], ["stone fruit"]]
    assert got[C.ATTRIBUTES].tolist() == [{"origin": "NZ", "organic": True}, {}, {}]
    ev = store.events()
    cols = [C.USER, C.ITEM, C.EVENT_TYPE, C.TIMESTAMP, C.VALUE, C.QUERY]
    got_ev = ev[cols].astype(object).where(ev[cols].notna(), None)
    want = EVENTS[cols].astype(object).where(EVENTS[cols].notna(), None)
    assert got_ev.values.tolist() == want.values.tolist()
    # and the same file again changes nothing
    before = _snapshot(store)
    assert ingest_events(store, tmp_path / f"e.{fmt}").inserted == 0
    assert ingest_products(store, tmp_path / f"p.{fmt}").inserted == 0
    assert _snapshot(store) == before


def test_progress_reports_the_whole_file(store, tmp_path) -> None:
    _write_frame(EVENTS, tmp_path / "e.parquet", "parquet")
    seen: list[int] = []
    ingest_events(store, tmp_path / "e.parquet", progress=seen.append, config=TINY)
    assert sum(seen) == len(EVENTS) and len(seen) == 3


def test_unknown_policy(store, tmp_path) -> None:
    with pytest.raises(ValueError, match="valid: fail, skip"):
        ingest_events(store, _write(tmp_path / "e.csv", GOOD_EVENTS), on_error="ignore")


def _event_indexes(store: KnowledgeStore) -> set[str]:
    from sqlalchemy import inspect

    return {ix["name"] for ix in inspect(store.engine).get_indexes("events")}


def test_first_load_keeps_the_indexes_also_after_a_rollback(store, tmp_path) -> None:
    indexes = _event_indexes(store)
    by_user = "ix_events_user_recent" if store.dialect == "sqlite" else "ix_events_user_ts"
    assert {by_user, "ix_events_request"} <= indexes
    with pytest.raises(SchemaError):
        ingest_events(store, _write(tmp_path / "bad.csv", GOOD_EVENTS + "u9,C,like,4\n"), config=TINY)
    assert _event_indexes(store) == indexes and store.stats()["events"] == 0
    ingest_events(store, _write(tmp_path / "good.csv", GOOD_EVENTS), config=TINY)
    assert _event_indexes(store) == indexes and store.stats()["events"] == 3


def test_a_first_bulk_load_has_a_larger_page_cache_and_gives_it_back(sqlite_store) -> None:
    from shopsense.store.events import BULK_CACHE_KIB

    with sqlite_store.transaction() as conn:
        dbapi = conn.connection.driver_connection

        def cache() -> int:
            return dbapi.execute("PRAGMA cache_size").fetchone()[0]

        before = cache()
        assert before == -65536
        with sqlite_store.bulk_events(conn):
            assert cache() == -BULK_CACHE_KIB
        assert cache() == before
        with pytest.raises(RuntimeError), sqlite_store.bulk_events(conn):
            assert cache() == -BULK_CACHE_KIB
            raise RuntimeError("a bad batch")
        assert cache() == before


def test_equal_timestamps_keep_file_order_per_user(store, tmp_path) -> None:
    rows = "".join(f"{u},{i},view,5\n" for u, i in [("u2", "C"), ("u1", "B"), ("u2", "A"), ("u1", "A"), ("u2", "B")])
    ingest_events(store, _write(tmp_path / "e.csv", "user_id,item_id,event_type,timestamp\n" + rows), config=TINY)
    assert store.events(user_id="u2")[C.ITEM].tolist() == ["C", "A", "B"]
    assert store.events(user_id="u1")[C.ITEM].tolist() == ["B", "A"]
