"""Schema versions: which layout of the tables a knowledge base has, and bringing an older one up to date.

A store records its version in ``store_meta`` (key ``schema_version``). A store made before versions
existed has none and counts as version 0. Opening a store made by this release records the current
version; opening an older one runs the role mixins' ``_migrate`` (each adds what its tables lack,
idempotently) when the caller allows it, and else refuses with :class:`SchemaVersionError`, which says
to run ``shopsense migrate``. The server opens without migrating: several servers and a CLI share one
database, and only an operator should change its tables under them. A store made by a newer release
is refused everywhere (this release would not know its columns).

On PostgreSQL a migration holds an advisory lock, so two processes never alter the same table at once;
on SQLite the database's own write lock and the mixins' "added meanwhile" checks do the same.

Changing ``store/tables.py`` means: bump :data:`SCHEMA_VERSION`, add the migration to the role's
``_migrate``, and update the fingerprint in ``tests/store/test_schema.py`` (that test fails until then).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from sqlalchemy import Engine, MetaData, inspect, select, text

from shopsense.exceptions import StoreError
from shopsense.store import tables as T

if TYPE_CHECKING:
    from sqlalchemy import Connection

#: the layout of ``store/tables.py`` this release reads and writes; 2: the ``evaluations`` table
SCHEMA_VERSION = 2
_KEY = "schema_version"
#: any fixed 64-bit number: the advisory lock migrations take on PostgreSQL
_PG_LOCK = 0x5E0C5E05E


class SchemaVersionError(StoreError):
    """The store's tables are older or newer than this release's."""


def stored_version(engine: Engine) -> int | None:
    """The version recorded in the store; 0 for a store made before versions; None for an empty
    database (no shopsense tables yet)."""
    names = set(inspect(engine).get_table_names())
    if T.products.name not in names:
        return None
    if T.meta.name not in names:
        return 0
    with engine.connect() as c:
        row = c.execute(select(T.meta.c.value).where(T.meta.c.key == _KEY)).first()
    return int(row[0]) if row is not None else 0


def record_version(conn: Connection, version: int = SCHEMA_VERSION) -> None:
    """Write ``version`` as the store's schema version (inside the caller's transaction)."""
    conn.execute(
        text("INSERT INTO store_meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO UPDATE SET value = :v"),
        {"k": _KEY, "v": str(version)},
    )


def outdated_message(found: int, where: str) -> str:
    return (
        f"the knowledge base at {where} has schema version {found}, this release needs {SCHEMA_VERSION}: "
        "run `shopsense migrate` (with the same --store/--home) first"
    )


def newer_message(found: int, where: str) -> str:
    return (
        f"the knowledge base at {where} has schema version {found}, made by a newer shopsense than this one "
        f"(which knows up to {SCHEMA_VERSION}): upgrade shopsense"
    )


def migration_lock(conn: Connection, dialect: str) -> None:
    """Hold the migration lock for the rest of ``conn``'s session (PostgreSQL; nothing on SQLite)."""
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": _PG_LOCK})


def migration_unlock(conn: Connection, dialect: str) -> None:
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _PG_LOCK})


def fingerprint(metadata: MetaData = T.metadata) -> str:
    """A hash of every table's columns (name and type) and indexes: it changes when the layout does."""
    parts: list[str] = []
    for table in sorted(metadata.tables.values(), key=lambda t: t.name):
        parts.append(f"table {table.name}")
        parts += [f"  {c.name} {c.type!r} pk={c.primary_key} null={c.nullable}" for c in table.columns]
        parts += sorted(f"  index {ix.name} {[c.name for c in ix.columns]} u={ix.unique}" for ix in table.indexes)
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
