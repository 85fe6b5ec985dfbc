"""The one id rule and pseudonyms: the same raw id lands on the same stored id from every entry."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from shopsense import columns as C
from shopsense.config import IngestConfig
from shopsense.data.ids import WHITESPACE, has_control, normalize_id, normalize_id_array
from shopsense.data.ingest import ingest_events, ingest_users
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.exceptions import SchemaError
from shopsense.service.validate import events_frame
from shopsense.store import KnowledgeStore


def test_whitespace_is_what_python_strips() -> None:
    assert set(WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


@pytest.mark.parametrize(
    ("raw", "stored"),
    [(" x ", "x"), ("a/b", "a/b"), ("100%", "100%"), ("\u3000zoë 用户\t", "zoë 用户"), ("in  side", "in  side")],
)
def test_one_rule_for_one_id_and_for_a_column(raw: str, stored: str) -> None:
    assert normalize_id(raw) == stored
    assert normalize_id_array(pa.array([raw])).to_pylist() == [stored]


@pytest.mark.parametrize("bad", ["", " \t", "a\x00b", "a\x1bb", "tab\tinside"])
def test_empty_and_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(SchemaError):
        normalize_id(bad)
    trimmed = normalize_id_array(pa.array([bad]))
    assert trimmed.to_pylist() == [None] or has_control(trimmed).to_pylist() == [True]


def test_pseudonyms_are_keyed_and_stable() -> None:
    p, other = Pseudonymizer("s3cret"), Pseudonymizer("another")
    assert p.user(" alice ") == p.user("alice") != other.user("alice")
    assert p.user("alice").startswith("u_") and "alice" not in p.user("alice")
    assert Pseudonymizer(None).user(" alice ") == "alice"
    t = p.table(pa.table({C.USER: ["alice", "bob", "alice"], C.ITEM: ["a", "b", "c"]}))
    assert t[C.USER].to_pylist() == [p.user("alice"), p.user("bob"), p.user("alice")]
    df = p.frame(pd.DataFrame({C.USER: ["bob ", "alice"]}))
    assert df[C.USER].tolist() == [p.user("bob"), p.user("alice")]


def test_file_and_http_rows_land_on_one_stored_id(store: KnowledgeStore, tmp_path: Path) -> None:
    p = Pseudonymizer("s3cret")
    f = tmp_path / "e.csv"
    f.write_text("user_id,item_id,event_type,timestamp\n alice ,A,view,1700000000\n", encoding="utf-8")
    ingest_events(store, f, pseudonyms=p)
    u = tmp_path / "u.jsonl"
    u.write_text('{"user_id": "alice", "attributes": {"tier": "gold"}}\n', encoding="utf-8")
    ingest_users(store, u, pseudonyms=p)
    # what POST /events does with a body: the pydantic-stripped id, pseudonymised, then validated
    body = [{C.USER: p.user("\talice"), C.ITEM: "B", C.EVENT_TYPE: "view", C.TIMESTAMP: 1700000001.0}]
    store.add_events(events_frame(body, IngestConfig()))
    assert set(store.events()[C.USER]) == {p.user("alice")}
    assert store.export_user(p.user("alice"))[C.ATTRIBUTES] == {"tier": "gold"}
    assert store.stats()["users"] == 1


def test_ids_with_control_characters_are_rejected_rows(store: KnowledgeStore, tmp_path: Path) -> None:
    f = tmp_path / "e.csv"
    f.write_text("user_id,item_id,event_type,timestamp\nok,A,view,1\nbad\x01id,A,view,2\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="e.csv:3 column 'user_id': an id holds a control character"):
        ingest_events(store, f)
