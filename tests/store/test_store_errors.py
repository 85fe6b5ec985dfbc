"""Driver errors leave the store as StoreError (StoreBusyError when a retry may work), whichever
method, raw-cursor path or transaction they come from."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from shopsense import columns as C
from shopsense.exceptions import StoreBusyError, StoreError
from shopsense.store import KnowledgeStore, open_store

EVENTS = pd.DataFrame({C.USER: ["u1"], C.ITEM: ["A"], C.EVENT_TYPE: ["view"], C.TIMESTAMP: [1.0]})
PRODUCTS = pd.DataFrame({C.ITEM: ["A"], C.TITLE: ["Apple"]})


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "kb.db"
    open_store(f"sqlite:///{path}").close()
    return path


@pytest.fixture
def locked(db: Path) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock (as a long ingest or a stuck process would)."""
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    yield holder
    holder.execute("ROLLBACK")
    holder.close()


def _busy_store(db: Path) -> KnowledgeStore:
    return open_store(f"sqlite:///{db}", timeout_s=0.05)


def test_a_held_lock_is_store_busy_on_every_write_path(db: Path, locked: sqlite3.Connection) -> None:
    store = _busy_store(db)
    writes = [
        lambda: store.add_events(EVENTS),  # SQLAlchemy statements and the driver's executemany
        lambda: store.upsert_products(PRODUCTS),  # the driver's executemany only
        lambda: store.register_version("v1", status="training"),
        lambda: store.delete_user("u1"),
    ]
    for write in writes:
        with pytest.raises(StoreBusyError, match=r"is busy \(database is locked\) after waiting 0.05 s"):
            write()
    with pytest.raises(StoreBusyError), store.transaction() as conn:
        store.add_events(EVENTS, conn)
    assert store.stats()["events"] == 0  # reads go on under WAL while a writer holds the lock
    store.close()


def test_busy_inside_a_transaction_block_and_at_commit(db: Path) -> None:
    store = _busy_store(db)
    holder = sqlite3.connect(db, isolation_level=None)
    # a driver error raised by the caller's own statements in the block is mapped too
    with pytest.raises(StoreBusyError), store.transaction() as conn:
        holder.execute("BEGIN EXCLUSIVE")
        conn.connection.driver_connection.execute("INSERT INTO users (user_id) VALUES ('x')")
    holder.execute("ROLLBACK")
    holder.close()
    store.close()


def test_a_corrupt_database_file_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "kb.db"
    path.write_bytes(b"not a database" * 100)
    with pytest.raises(StoreError, match="file is not a database") as info:
        open_store(f"sqlite:///{path}")
    assert not isinstance(info.value, StoreBusyError)


def test_the_message_hides_a_password() -> None:
    from shopsense.store.errors import to_store_error

    err = to_store_error(sqlite3.OperationalError("database is locked"), "postgresql://u:secret@h/db", 2)
    assert isinstance(err, StoreBusyError)
    assert "secret" not in str(err) and "***" in str(err)


def test_postgresql_gets_the_same_timeout_unless_its_url_says_otherwise() -> None:
    from shopsense.store.engine import _pg_timeouts

    assert _pg_timeouts("postgresql://h/db", 2.5) == {"connect_timeout": 2, "options": "-c lock_timeout=2500"}
    assert _pg_timeouts("postgresql://h/db?connect_timeout=9&options=-c%20x%3D1", 2.5) == {}
