"""A purchase's ``value`` (the amount paid) and ``order_id`` (issue 15, point 0): from a file and over
a file, stored, exported, and added to a store made before (over HTTP: tests/service/test_purchases.py)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.data.ingest import ingest_events
from shopsense.exceptions import SchemaError
from shopsense.store import KnowledgeStore, open_store

HEADER = "user_id,item_id,event_type,timestamp,value,order_id\n"


def _csv(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "events.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_purchase_carries_its_value_and_order(store: KnowledgeStore, tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        [
            "u1,p1,view,1700000000,,",
            "u1,p1,purchase,1700000100,59.8,order-7",  # two at 29.90
            "u1,p2,purchase,1700000100,0,order-7",  # a free gift in the same order
            "u1,p3,purchase,1700000200,, ord 8 ",  # both optional; the id rule trims
        ],
    )
    assert ingest_events(store, path).inserted == 4
    ev = store.events(user_id="u1")
    assert ev[C.ORDER_ID].tolist()[1:] == ["order-7", "order-7", "ord 8"] and pd.isna(ev[C.ORDER_ID].iloc[0])
    assert ev[C.VALUE].tolist()[1:3] == [59.8, 0.0] and pd.isna(ev[C.VALUE].iloc[3])
    exported = store.export_user("u1")["events"]
    assert [e[C.ORDER_ID] for e in exported] == [None, "order-7", "order-7", "ord 8"]


@pytest.mark.parametrize(
    ("row", "column", "reason"),
    [
        ("u1,p1,purchase,1700000000,-5,o1", C.VALUE, "purchase's value is the amount paid and must be >= 0, got -5"),
        ("u1,p1,purchase,1700000000,inf,o1", C.VALUE, "not a number"),
        ("u1,p1,purchase,1700000000,1e999,o1", C.VALUE, "not a finite number"),
        ("u1,p1,purchase,1700000000,10," + "o" * 257, C.ORDER_ID, "field too long"),
        ('u1,p1,purchase,1700000000,10,"o\x01"', C.ORDER_ID, "control character"),
    ],
)
def test_bad_purchase_values_and_order_ids_are_refused_with_line_and_column(
    sqlite_store: KnowledgeStore, tmp_path: Path, row: str, column: str, reason: str
) -> None:
    with pytest.raises(SchemaError) as e:
        ingest_events(sqlite_store, _csv(tmp_path, ["u1,p1,view,1700000000,,", row]))
    (err,) = e.value.errors
    assert err.line == 3 and err.column == column and reason in err.reason, err


def test_only_a_purchase_value_must_not_be_negative(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    """A rating's value may be negative (a -2..2 scale); the rule is about amounts paid."""
    assert ingest_events(sqlite_store, _csv(tmp_path, ["u1,p1,rating,1700000000,-2,"])).inserted == 1


def test_a_store_from_before_gets_the_order_id_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    open_store(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)  # back to the events table as earlier versions created it
    con.execute("ALTER TABLE events DROP COLUMN order_id")
    con.execute("DELETE FROM store_meta WHERE key = 'schema_version'")  # made before schema versions
    con.commit()
    con.close()
    for create in (False, True):  # reading commands open stores without creating tables
        store = open_store(f"sqlite:///{db}", create=create)
        row = {C.USER: "u1", C.ITEM: "p1", C.EVENT_TYPE: C.PURCHASE, C.TIMESTAMP: float(create), C.ORDER_ID: "o1"}
        assert store.add_event_rows([row]) == 1
        assert store.events()[C.ORDER_ID].tolist()[-1] == "o1"
        store.close()
