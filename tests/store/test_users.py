"""What the store holds about a shopper: opt-out, export, deletion that erases, and old stores upgraded."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.data.dataset import Dataset
from shopsense.store import KnowledgeStore, open_store

SECRET_QUERY = "zyzzyva anniversary gift for marguerite"
SECRET_USER = "marguerite.quillfeather@example.org"


def _events(user: str = "u1") -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.USER: [user, user, "u2", user, "u2"],
            C.ITEM: ["a", "b", "a", None, None],
            C.EVENT_TYPE: ["view", "purchase", "view", "search", "search"],
            C.TIMESTAMP: [10.0, 20.0, 10.0, 30.0, 31.0],
            C.SESSION: ["s-1", "s-1", None, "s-2", None],
            C.QUERY: [None, None, None, SECRET_QUERY, "red fruit"],
            C.REQUEST_ID: [None, "r-1", None, None, None],
        }
    )


def _shown(user: str, query: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.REQUEST_ID: ["r-1", "r-1"],
            C.USER: [user, user],
            C.ITEM: ["a", "b"],
            C.POSITION: [0, 1],
            C.SURFACE: ["search", "search"],
            C.QUERY: [query, query],
            C.TIMESTAMP: [9.0, 9.0],
        }
    )


def test_opted_out_events_shape_nothing_until_opt_in(store: KnowledgeStore) -> None:
    store.add_events(_events())
    assert store.recent_event_columns("u1", 10)[C.ITEM] == ["a", "b", None]
    store.set_opted_out("u1")
    assert store.opted_out() == {"u1"} and store.opted_out(["u2", "u1"]) == {"u1"}
    # the per-request read of recommend and search personalisation sees nothing: non-personal lists
    assert store.recent_event_columns("u1", 10)[C.ITEM] == []
    assert store.recent_event_columns("u2", 10)[C.ITEM] == ["a", None]
    # training and indexing leave them out; analytics and export still see them
    assert set(store.events(include_opted_out=False)[C.USER]) == {"u2"}
    assert set(Dataset.from_store(store).users.external_ids) == {"u2"}
    assert len(store.events(user_id="u1")) == 3
    store.set_opted_out("u1", False)
    assert store.opted_out() == set() and len(store.recent_event_columns("u1", 10)[C.ITEM]) == 3
    # a shopper not seen yet can opt out ahead of their first event
    store.set_opted_out("newcomer")
    store.add_events(_events("newcomer"))
    assert store.recent_event_columns("newcomer", 10)[C.ITEM] == []


def test_export_holds_everything_about_the_shopper(store: KnowledgeStore) -> None:
    store.add_events(_events())
    store.upsert_users(pd.DataFrame({C.USER: ["u1"], C.ATTRIBUTES: [{"tier": "gold"}]}))
    store.log_impressions(_shown("u1"))
    store.set_opted_out("u1")
    out = store.export_user("u1")
    assert out[C.USER] == "u1" and out["known"] and out[C.OPTED_OUT] is True
    assert out[C.ATTRIBUTES] == {"tier": "gold"}
    assert [e[C.EVENT_TYPE] for e in out["events"]] == ["view", "purchase", "search"]
    assert out["events"][2][C.QUERY] == SECRET_QUERY and out["events"][0][C.VALUE] is None  # NaN -> null
    assert [i[C.ITEM] for i in out["impressions"]] == ["a", "b"]
    assert out["linked_ids"] == {"sessions": ["s-1", "s-2"], "requests": ["r-1"], "event_ids": [], "anonymous_ids": []}
    nobody = store.export_user("nobody")
    assert not nobody["known"] and nobody["events"] == [] and nobody[C.OPTED_OUT] is False


def test_delete_takes_rows_and_the_vectors_of_queries_only_they_searched(store: KnowledgeStore) -> None:
    store.add_events(_events())
    store.log_impressions(_shown("u1", SECRET_QUERY))
    store.log_impressions(_shown("u2", "red fruit").assign(**{C.REQUEST_ID: "r-2"}))
    vec = np.ones((2, 4), np.float32)
    store.put_embeddings("minilm#query", store.query_keys([SECRET_QUERY, "red fruit"]), vec)
    store.put_embeddings("minilm", ["product-hash"], vec[:1])  # product vectors are not the user's
    store.set_opted_out("u1")
    d = store.delete_users(["u1", "u1"], vacuum="vacuum")  # PostgreSQL: VACUUM afterwards (SQLite: ignored)
    assert d.counts == {"events": 3, "impressions": 2, "users": 1, "links": 0, "query_vectors": 1}
    assert d.searches == [SECRET_QUERY] and d.forgotten_queries == [SECRET_QUERY]
    assert set(store.events()[C.USER]) == {"u2"} and set(store.impressions()[C.USER]) == {"u2"}
    assert store.get_embeddings("minilm#query", store.query_keys([SECRET_QUERY])) == {}
    assert len(store.get_embeddings("minilm#query", store.query_keys(["red fruit"]))) == 1  # u2 searched it
    assert len(store.get_embeddings("minilm", ["product-hash"])) == 1
    assert store.opted_out() == set() and not store.export_user("u1")["known"]


def test_deleted_bytes_are_gone_from_the_sqlite_files(tmp_path: Path) -> None:
    """secure_delete + a truncating WAL checkpoint: grep the database files for what was deleted."""
    db = tmp_path / "kb.db"
    store = open_store(f"sqlite:///{db}")
    others = pd.DataFrame(
        {
            C.USER: [f"shopper-{i}" for i in range(300)],
            C.ITEM: [f"p{i % 7}" for i in range(300)],
            C.EVENT_TYPE: "view",
            C.TIMESTAMP: np.arange(300, dtype=float),
        }
    )
    store.add_events(others)
    store.add_events(_events(SECRET_USER))
    store.log_impressions(_shown(SECRET_USER, SECRET_QUERY))
    store.add_events(others.assign(**{C.TIMESTAMP: others[C.TIMESTAMP] + 1000}))  # later pages too
    files = [db, Path(f"{db}-wal")]
    seen = b"".join(p.read_bytes() for p in files if p.exists())
    assert SECRET_USER.encode() in seen and SECRET_QUERY.encode() in seen  # the test can see them
    store.delete_users([SECRET_USER])
    for p in files:
        raw = p.read_bytes() if p.exists() else b""
        assert SECRET_USER.encode() not in raw, p
        assert SECRET_QUERY.encode() not in raw, p
    assert len(store.events()) == 602  # everyone else is still there
    store.close()


def test_a_store_from_before_gets_the_opt_out_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    open_store(f"sqlite:///{db}").close()
    con = sqlite3.connect(db)  # back to the tables as earlier versions created them
    con.execute("DROP INDEX ix_users_opted_out")
    con.execute("ALTER TABLE users DROP COLUMN opted_out")
    con.execute("DROP TABLE store_meta")
    con.execute("INSERT INTO users VALUES ('u1', NULL, 1.0)")
    # a query vector cached under the old, unsalted key would tell what was searched
    con.execute("INSERT INTO embeddings VALUES ('m#query', 'plainhash', 1, x'00000000')")
    con.execute("INSERT INTO embeddings VALUES ('m', 'producthash', 1, x'00000000')")
    con.commit()
    assert "opted_out" not in {r[1] for r in con.execute("PRAGMA table_info(users)")}
    con.close()
    for create in (False, True):  # reading commands open stores without creating tables
        store = open_store(f"sqlite:///{db}", create=create)
        store.set_opted_out("u1")
        assert store.opted_out() == {"u1"} and store.export_user("u1")[C.OPTED_OUT]
        store.add_events(_events())
        assert store.recent_event_columns("u1", 10)[C.ITEM] == []
        store.set_opted_out("u1", False)
        assert store.get_embeddings("m#query", ["plainhash"]) == {}
        assert len(store.get_embeddings("m", ["producthash"])) == 1
        store.close()
