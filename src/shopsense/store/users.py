"""What the store holds about one shopper: the opt-out flag, export, and deletion that erases.

A part of :class:`~shopsense.store.sql.KnowledgeStore` (a mixin over its engine); the shopper's
events and impressions are written and read by :mod:`~shopsense.store.events` and
:mod:`~shopsense.store.impressions`. Ids here are stored
ids: the entry points map raw ids first (:class:`~shopsense.data.pseudonyms.Pseudonymizer`).

Deletion removes the shopper's events, impressions and users row, and the cached vectors of queries
nobody else searched, in one transaction; the rows of the anonymous ids merged into the shopper
(:mod:`~shopsense.store.links`) go with them, and the links. On SQLite that transaction runs with
``secure_delete`` (the freed bytes are overwritten with zeros) and is followed by a
``wal_checkpoint(TRUNCATE)``, so neither the database file nor its write-ahead log keeps the deleted
rows. PostgreSQL marks deleted rows dead
and keeps their bytes until VACUUM reuses the space (VACUUM FULL rewrites the tables); see
``privacy.postgres_vacuum`` and docs/service.md.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Index, delete, inspect, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ClauseElement

from shopsense import columns as C
from shopsense.data.pseudonyms import keyed_hash
from shopsense.exceptions import StoreError
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded
from shopsense.store.links import merged_ids
from shopsense.store.rows import json_or_none

log = logging.getLogger("shopsense.store")

#: model ids of query vectors end with this (``TextEncoder.query_model_id``)
QUERY_MODEL_SUFFIX = "#query"
_SALT_KEY = "query_salt"
_DELETION_KEY = "users_deleted"  # a new random token at every deletion
_CHUNK = 500  # ids per IN (...) list
_ERASED_TABLES = ("events", "impressions", "users", "embeddings", "user_links")
_UPSERT_COLS = (C.USER, C.ATTRIBUTES, C.CREATED_AT)


@dataclass
class UserDeletion:
    """What a deletion removed: row counts per table, the deleted search queries (with repeats: what
    in-memory autocomplete counted) and the queries whose cached vectors went with them."""

    counts: dict[str, int]
    searches: list[str] = field(default_factory=list)
    forgotten_queries: list[str] = field(default_factory=list)
    mark: str | None = None  # the store's deletion mark after this one (see :meth:`UserRows.deletion_mark`)


@guarded  # driver errors leave these methods as StoreError / StoreBusyError too (store/errors.py)
class UserRows(StoreBase):
    """Mixin of the knowledge store: shoppers' rows, opt-out, export and deletion (roles
    :class:`~shopsense.store.roles.Shoppers` and, for :meth:`query_keys`,
    :class:`~shopsense.store.roles.EmbeddingCache`)."""

    _salt: bytes | None = None

    # ------------------------------------------------------------------ schema upkeep
    def _migrate(self) -> None:
        """Bring a store made by an earlier version up to date (idempotent, cheap when nothing to do):
        add ``users.opted_out`` and the metadata table, and make the query-cache salt."""
        super()._migrate()
        try:
            names = set(inspect(self.engine).get_table_names())
            if "users" in names:
                cols = {c["name"] for c in inspect(self.engine).get_columns("users")}
                if C.OPTED_OUT not in cols:
                    self._add_opted_out()
            if "store_meta" not in names:
                T.meta.create(self.engine, checkfirst=True)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot upgrade the store's schema: {e}") from e
        self.query_salt()

    def _add_opted_out(self) -> None:
        try:
            with self.engine.begin() as c:
                c.exec_driver_sql(f"ALTER TABLE users ADD COLUMN {C.OPTED_OUT} INTEGER NOT NULL DEFAULT 0")
        except SQLAlchemyError:  # another process added it meanwhile
            cols = {c["name"] for c in inspect(self.engine).get_columns("users")}
            if C.OPTED_OUT not in cols:
                raise
        ix: Index = next(i for i in T.users.indexes if i.name == "ix_users_opted_out")
        ix.create(self.engine, checkfirst=True)

    # ------------------------------------------------------------------ query-cache keys
    def query_salt(self) -> bytes:
        """This store's secret salt for query-vector keys, made once (when the store is created or
        first opened by this version)."""
        if self._salt is None:
            m = T.meta
            with self.engine.begin() as c:
                row = c.execute(select(m.c.value).where(m.c.key == _SALT_KEY)).first()
                if row is None:
                    c.execute(
                        text("INSERT INTO store_meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO NOTHING"),
                        {"k": _SALT_KEY, "v": secrets.token_hex(32)},
                    )
                    # vectors cached before under unsalted keys would tell which queries were searched
                    e = T.embeddings
                    c.execute(delete(e).where(e.c.model_id.like(f"%{QUERY_MODEL_SUFFIX}")))
                    row = c.execute(select(m.c.value).where(m.c.key == _SALT_KEY)).first()
            assert row is not None
            self._salt = bytes.fromhex(row[0])
        return self._salt

    def query_keys(self, queries: Sequence[str]) -> list[str]:
        """The embedding-cache keys of search queries: a keyed hash under this store's salt, so the
        cache cannot be used to test whether some text was ever searched."""
        salt = self.query_salt()
        return [keyed_hash(salt, q, 32) for q in queries]

    # ------------------------------------------------------------------ shoppers' rows
    def upsert_users(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Insert users; attributes of known users are replaced when given."""
        if df.empty:
            return 0
        attrs = df[C.ATTRIBUTES] if C.ATTRIBUTES in df.columns else pd.Series([None] * len(df))
        rows = [(u, json_or_none(a), time.time()) for u, a in zip(df[C.USER], attrs, strict=True)]
        with self._conn(conn) as c:
            return self.statements.insert_many(c, "upsert_users", self._upsert_users, _UPSERT_COLS, rows)

    def _upsert_users(self) -> ClauseElement:
        ins = self.statements.insert("users", _UPSERT_COLS)
        return ins.on_conflict_do_update(
            index_elements=[C.USER],
            set_={C.ATTRIBUTES: ins.excluded[C.ATTRIBUTES]},
            where=ins.excluded[C.ATTRIBUTES].is_not(None),
        )

    # ------------------------------------------------------------------ opt-out
    def set_opted_out(self, user_id: str, opted_out: bool = True) -> None:
        """Record that a shopper opted out of personalisation (or back in); an unknown shopper is added,
        so the flag holds for the events they send later."""
        sql = (
            f"INSERT INTO users ({C.USER}, {C.CREATED_AT}, {C.OPTED_OUT}) VALUES (:u, :t, :o) "
            f"ON CONFLICT ({C.USER}) DO UPDATE SET {C.OPTED_OUT} = excluded.{C.OPTED_OUT}"
        )
        with self.engine.begin() as c:
            c.execute(text(sql), {"u": user_id, "t": time.time(), "o": int(opted_out)})

    def opted_out(self, user_ids: Sequence[str] | None = None) -> set[str]:
        """The shoppers who opted out (among ``user_ids`` when given)."""
        u = T.users
        q = select(u.c[C.USER]).where(u.c[C.OPTED_OUT] == 1)
        if user_ids is None:
            with self.engine.connect() as c:
                return {r[0] for r in c.execute(q)}
        ids = list(dict.fromkeys(user_ids))
        out: set[str] = set()
        with self.engine.connect() as c:
            for i in range(0, len(ids), _CHUNK):
                out.update(r[0] for r in c.execute(q.where(u.c[C.USER].in_(ids[i : i + _CHUNK]))))
        return out

    # ------------------------------------------------------------------ export
    def export_user(self, user_id: str) -> dict[str, Any]:
        """Everything stored about a shopper, as JSON-ready data: the users row (attributes, opt-out),
        events, impressions, and the ids linked to them (sessions, requests, anonymous ids merged into
        them, whose rows stored since the merge are included)."""
        u, e, i = T.users, T.events, T.impressions
        ev_cols = list(C.EVENT_COLUMNS)
        with self.engine.connect() as c:
            anonymous = sorted(merged_ids(c, [user_id]))
            ids = [user_id, *anonymous]
            row = c.execute(select(u).where(u.c[C.USER] == user_id)).mappings().first()
            events = [
                dict(zip(ev_cols, r, strict=True))
                for r in c.execute(
                    select(*[e.c[x] for x in ev_cols]).where(e.c[C.USER].in_(ids)).order_by(e.c[C.TIMESTAMP], e.c.seq)
                )
            ]
            shown = [
                dict(zip(C.IMPRESSION_COLUMNS, r, strict=True))
                for r in c.execute(
                    select(*[i.c[x] for x in C.IMPRESSION_COLUMNS]).where(i.c[C.USER].in_(ids)).order_by(i.c.seq)
                )
            ]
        attrs = json.loads(row[C.ATTRIBUTES]) if row is not None and row[C.ATTRIBUTES] else None
        return _json_ready(
            {
                C.USER: user_id,
                "known": row is not None or bool(events) or bool(shown) or bool(anonymous),
                C.OPTED_OUT: bool(row[C.OPTED_OUT]) if row is not None else False,
                C.CREATED_AT: row[C.CREATED_AT] if row is not None else None,
                C.ATTRIBUTES: attrs,
                "linked_ids": {
                    "sessions": sorted({x[C.SESSION] for x in events if x[C.SESSION]}),
                    "requests": sorted({x[C.REQUEST_ID] for x in [*events, *shown] if x[C.REQUEST_ID]}),
                    "event_ids": [x[C.EVENT_ID] for x in events if x[C.EVENT_ID]],
                    "anonymous_ids": anonymous,
                },
                "events": events,
                "impressions": shown,
            }
        )

    # ------------------------------------------------------------------ deletion
    def deletion_mark(self) -> str | None:
        """Changes at every deletion (None before the first): a server process that sees it change
        knows another process deleted shoppers, and drops what it holds about past searches."""
        m = T.meta
        with self.engine.connect() as c:
            row = c.execute(select(m.c.value).where(m.c.key == _DELETION_KEY)).first()
        return None if row is None else str(row[0])

    def delete_users(self, user_ids: Sequence[str], *, vacuum: str = "off") -> UserDeletion:
        """Forget shoppers: their events, impressions and users rows, and the cached vectors of queries
        only they searched, in one transaction that overwrites the freed bytes (see the module doc).
        ``vacuum`` (PostgreSQL: ``off``, ``vacuum``, ``full``) runs afterwards on the tables touched."""
        ids = list(dict.fromkeys(user_ids))
        e, i, u, emb, lk = T.events, T.impressions, T.users, T.embeddings, T.user_links
        # Which of their queries nobody else searched takes a scan of events and impressions (no index
        # on query): done before the write lock, so writers wait only for the indexed deletes.
        with self.engine.connect() as c:
            ids += sorted(merged_ids(c, ids))  # the anonymous ids merged into them are theirs too
            queries, _ = self._queries_of(c, ids)
            forgotten = set(self._unsearched(c, sorted(queries), ids))
        counts = {"events": 0, "impressions": 0, "users": 0, "links": 0, "query_vectors": 0}
        with self._erasing() as c:
            ids += sorted(merged_ids(c, ids))  # linked meanwhile: rarely any
            now, searches = self._queries_of(c, ids)
            late = sorted(now - queries)  # searched meanwhile: checked here, rarely any
            forgotten.update(self._unsearched(c, late, ids))
            for s in range(0, len(ids), _CHUNK):
                chunk = ids[s : s + _CHUNK]
                counts["events"] += c.execute(delete(e).where(e.c[C.USER].in_(chunk))).rowcount
                counts["impressions"] += c.execute(delete(i).where(i.c[C.USER].in_(chunk))).rowcount
                counts["users"] += c.execute(delete(u).where(u.c[C.USER].in_(chunk))).rowcount
                counts["links"] += c.execute(
                    delete(lk).where(lk.c[C.USER].in_(chunk) | lk.c[C.ANONYMOUS_ID].in_(chunk))
                ).rowcount
            keys = self.query_keys(sorted(forgotten))
            for s in range(0, len(keys), _CHUNK):
                counts["query_vectors"] += c.execute(
                    delete(emb).where(
                        emb.c.model_id.like(f"%{QUERY_MODEL_SUFFIX}"), emb.c.text_hash.in_(keys[s : s + _CHUNK])
                    )
                ).rowcount
            mark = secrets.token_hex(8)
            c.execute(
                text("INSERT INTO store_meta (key, value) VALUES (:k, :v) ON CONFLICT (key) DO UPDATE SET value = :v"),
                {"k": _DELETION_KEY, "v": mark},
            )
        if vacuum != "off" and self.dialect == "postgresql":
            self._vacuum(full=vacuum == "full")
        return UserDeletion(counts, searches, sorted(forgotten), mark)

    def delete_user(self, user_id: str) -> dict[str, int]:
        """:meth:`delete_users` for one shopper; returns the row counts."""
        return self.delete_users([user_id]).counts

    def _queries_of(self, c: Connection, ids: list[str]) -> tuple[set[str], list[str]]:
        """The queries in these users' events and impressions, and their search events' queries
        (with repeats); both reads follow the user indexes."""
        e, i = T.events, T.impressions
        queries: set[str] = set()
        searches: list[str] = []
        for s in range(0, len(ids), _CHUNK):
            chunk = ids[s : s + _CHUNK]
            for etype, q in c.execute(
                select(e.c[C.EVENT_TYPE], e.c[C.QUERY]).where(e.c[C.USER].in_(chunk), e.c[C.QUERY].is_not(None))
            ):
                queries.add(q)
                if etype == C.SEARCH:
                    searches.append(q)
            queries.update(
                r[0]
                for r in c.execute(
                    select(i.c[C.QUERY]).where(i.c[C.USER].in_(chunk), i.c[C.QUERY].is_not(None)).distinct()
                )
            )
        return queries, searches

    def _unsearched(self, c: Connection, queries: list[str], ids: list[str]) -> list[str]:
        """Of ``queries``, those no event or impression of another user holds (their vectors may go)."""
        gone = set(ids)
        still: set[str] = set()
        for s in range(0, len(queries), _CHUNK):
            chunk = queries[s : s + _CHUNK]
            for t in (T.events, T.impressions):
                q = select(t.c[C.QUERY], t.c[C.USER]).where(t.c[C.QUERY].in_(chunk)).distinct()
                still.update(query for query, user in c.execute(q) if user not in gone)
        return [q for q in queries if q not in still]

    @contextmanager
    def _erasing(self) -> Iterator[Connection]:
        """One transaction whose deletions leave no readable bytes behind (SQLite: ``secure_delete``
        for this connection, then a WAL checkpoint that truncates the log)."""
        sqlite = self.dialect == "sqlite"
        with self.engine.connect() as c:
            if sqlite:
                c.exec_driver_sql("PRAGMA secure_delete = ON")
                c.commit()
            try:
                with c.begin():
                    if sqlite:  # the reads and deletes in one snapshot (pysqlite begins only at the first write)
                        c.exec_driver_sql("BEGIN IMMEDIATE")
                    yield c
            finally:
                if sqlite:
                    c.exec_driver_sql("PRAGMA secure_delete = OFF")
                    c.commit()
        if sqlite:
            with self.engine.connect() as c:
                busy, _, _ = c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)").one()
                c.commit()
            if busy:
                log.warning("the WAL checkpoint after a deletion was blocked by a reader; the next one completes it")

    def _vacuum(self, *, full: bool) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            for t in _ERASED_TABLES:
                c.exec_driver_sql(f"VACUUM {'FULL ' if full else ''}{t}")


def _json_ready(x: Any) -> Any:
    """NaN -> None, recursively (JSON has no NaN)."""
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, dict):
        return {k: _json_ready(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_json_ready(v) for v in x]
    return x
