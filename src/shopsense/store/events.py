"""Behaviour: events appended with de-duplication, and read back in three shapes: every event as a
frame (training, indexing, evaluation), a shopper's latest events as plain lists (the per-request
read) and searched queries (autocomplete, the query-vector cache). A mixin of the knowledge store
(role :class:`~shopsense.store.roles.EventLog`)."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, bindparam, exists, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql.elements import ClauseElement

from shopsense import columns as C
from shopsense.exceptions import StoreError
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded
from shopsense.store.rows import event_key, event_keys, to_db_rows

#: what an event insert writes, in this order
_INSERT_COLS = (
    C.EVENT_KEY,
    C.EVENT_ID,
    C.USER,
    C.ITEM,
    C.EVENT_TYPE,
    C.VALUE,
    C.TIMESTAMP,
    C.SESSION,
    C.QUERY,
    C.REQUEST_ID,
    C.ORDER_ID,
)
_NEW_USER_COLS = (C.USER, C.CREATED_AT)
#: the SQLite page cache of a first bulk load of events (KiB; the connections' own is 64 MiB)
BULK_CACHE_KIB = 1024 * 1024


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class EventRows(StoreBase):
    """Mixin of the knowledge store: events."""

    # ------------------------------------------------------------------ schema upkeep
    def _migrate(self) -> None:
        """A store made before ``events.order_id`` gets the column; a SQLite store made before the
        covering per-shopper index gets it (once: a few seconds per million events) in place of the
        narrow one."""
        super()._migrate()
        try:
            if "events" not in inspect(self.engine).get_table_names():
                return
            if C.ORDER_ID not in {c["name"] for c in inspect(self.engine).get_columns("events")}:
                self._add_order_id()
            if self.dialect != "sqlite":
                return
            names = {ix["name"] for ix in inspect(self.engine).get_indexes("events")}
            if T.EVENTS_BY_USER in names:
                return
            ix = next(i for i in T.events.indexes if i.name == T.EVENTS_BY_USER)
            with self.engine.begin() as c:
                ix.create(c, checkfirst=True)  # another process may be doing the same
                c.exec_driver_sql(f"DROP INDEX IF EXISTS {T.EVENTS_BY_USER_NARROW}")
        except SQLAlchemyError as e:
            raise StoreError(f"cannot upgrade the store's schema: {e}") from e

    def _add_order_id(self) -> None:
        try:
            with self.engine.begin() as c:
                c.exec_driver_sql(f"ALTER TABLE events ADD COLUMN {C.ORDER_ID} TEXT")
        except SQLAlchemyError:  # another process added it meanwhile
            if C.ORDER_ID not in {c["name"] for c in inspect(self.engine).get_columns("events")}:
                raise

    # ------------------------------------------------------------------ writing
    @contextmanager
    def bulk_events(self, conn: Connection) -> Iterator[None]:
        """Within ``conn``'s transaction, for a first bulk load: while the events table is empty,
        its secondary indexes are dropped and built once at the end (a sort instead of millions of
        random index inserts; measured about 1.2x faster ingest) and the page cache is raised to
        ``BULK_CACHE_KIB``. The unique ``event_key`` stays, so de-duplication is unchanged; on error
        the rollback restores the indexes.

        SQLite only: under WAL, readers keep their snapshot while the indexes are rebuilt; on
        PostgreSQL ``DROP INDEX`` would lock readers out, so there this does nothing.
        """
        empty = conn.execute(select(T.events.c.seq).limit(1)).first() is None
        if self.dialect != "sqlite" or not empty:
            yield
            return
        # Python's sqlite3 only opens a transaction before INSERT/UPDATE/DELETE: a DROP INDEX first
        # in the transaction would be committed at once, and a rollback could not bring it back.
        dbapi = conn.connection.driver_connection
        if not dbapi.in_transaction:  # type: ignore[union-attr]
            dbapi.execute("BEGIN")  # type: ignore[union-attr]
        indexes = [ix for ix in T.events.indexes if not ix.unique]
        for ix in indexes:
            ix.drop(conn)
        # Every batch (sorted by user) writes all over the unique event_key index and the users
        # table; once they outgrow the connection's 64 MiB page cache, each batch reads them back
        # page by page: 10M events took 132 s, 104 s with this cache (docs/deploy.md, measured
        # growth). For the load only, given back afterwards; SQLite takes pages as it needs them.
        cache = dbapi.execute("PRAGMA cache_size").fetchone()[0]  # type: ignore[union-attr]
        dbapi.execute(f"PRAGMA cache_size=-{BULK_CACHE_KIB}")  # type: ignore[union-attr]
        try:
            yield
            for ix in indexes:
                ix.create(conn)
        finally:
            dbapi.execute(f"PRAGMA cache_size={int(cache)}")  # type: ignore[union-attr]

    def add_events(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Append validated events; an event already stored (same ``event_key``) is skipped.

        Returns the number of new events. Unknown users are created on the way.
        """
        if df.empty:
            return 0
        if C.EVENT_KEY not in df.columns:
            df = df.assign(**{C.EVENT_KEY: event_keys(df)})
        out = pd.DataFrame({c: df[c] if c in df.columns else None for c in _INSERT_COLS})
        return self._insert_events(to_db_rows(out), pd.unique(out[C.USER]).tolist(), conn)

    def add_event_rows(self, records: Sequence[Mapping[str, Any]], conn: Connection | None = None) -> int:
        """:meth:`add_events` for a few validated records (one HTTP request's events): the same
        rows and keys without pandas' fixed cost per call (~7 ms a request, most of an event's cost)."""
        rows = [(event_key(r), *(r.get(c) for c in _INSERT_COLS[1:])) for r in records]
        return self._insert_events(rows, list(dict.fromkeys(r[C.USER] for r in records)), conn)

    def _insert_events(self, rows: Sequence[tuple], users: list[str], conn: Connection | None) -> int:
        """Rows in ``_INSERT_COLS`` order; unknown users are created on the way."""
        if not rows:
            return 0
        st = self.statements
        with self._conn(conn) as c:
            now = time.time()
            st.insert_many(c, "new_users", self._new_users, _NEW_USER_COLS, [(u, now) for u in users])
            return st.insert_many(c, "add_events", self._add_events, _INSERT_COLS, rows)

    def _new_users(self) -> ClauseElement:
        return self.statements.insert("users", _NEW_USER_COLS).on_conflict_do_nothing(index_elements=[C.USER])

    def _add_events(self) -> ClauseElement:
        return self.statements.insert("events", _INSERT_COLS).on_conflict_do_nothing(index_elements=[C.EVENT_KEY])

    # ------------------------------------------------------------------ reading
    def events(
        self,
        *,
        user_id: str | None = None,
        event_types: Sequence[str] | None = None,
        since: float | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        include_opted_out: bool = True,
    ) -> pd.DataFrame:
        """Events in chronological order (ties keep arrival order), optionally filtered; with
        ``newest_first`` and ``limit``, a shopper's latest events. What trains or indexes lists passes
        ``include_opted_out=False``: opted-out shoppers' events shape nothing."""
        cols = self._event_columns(
            user_id=user_id,
            event_types=event_types,
            since=since,
            limit=limit,
            newest_first=newest_first,
            shaping=not include_opted_out,
        )
        return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in cols.items()}).infer_objects()

    def event_batches(self, batch_size: int = 100_000, *, include_opted_out: bool = False) -> Iterator[pd.DataFrame]:
        """Every event in chronological order (ties in arrival order) as frames of at most ``batch_size``
        rows, with the arrival number ``seq`` that breaks timestamp ties: an export of any size holds
        one batch at a time (a server-side cursor on PostgreSQL, SQLite's lazy cursor)."""
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        columns = (*C.EVENT_COLUMNS, "seq")
        q = _events_statement(columns, False, False, False, False, False, not include_opted_out)
        with self.engine.connect() as conn:
            result = conn.execution_options(stream_results=True, yield_per=batch_size).execute(q)
            for rows in result.partitions(batch_size):
                data = list(zip(*rows, strict=True))
                yield pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in zip(columns, data, strict=True)})

    def count_events(self, *, include_opted_out: bool = False) -> int:
        """How many events :meth:`event_batches` yields (a progress bar's total)."""
        t, u = T.events, T.users
        q = select(func.count()).select_from(t)
        if not include_opted_out:
            q = q.where(t.c[C.USER].not_in(select(u.c[C.USER]).where(u.c[C.OPTED_OUT] == 1)))
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def recent_event_columns(
        self, user_id: str, limit: int = 50, columns: Sequence[str] = (C.ITEM, C.EVENT_TYPE, C.QUERY)
    ) -> dict[str, list[Any]]:
        """The user's latest ``limit`` events, oldest first, as plain lists per column: the per-request
        read of the recommender and of search personalisation (a DataFrame costs about a millisecond
        more than the query itself). Empty for a shopper who opted out: their lists are not personal."""
        cols = self._event_columns(user_id=user_id, limit=limit, newest_first=True, columns=columns, shaping=True)
        return {c: v[::-1] for c, v in cols.items()}

    def recent_queries(self, limit: int) -> list[str]:
        """The ``limit`` most recently searched distinct queries, oldest first (a server loads their
        vectors into memory at start)."""
        t = T.events
        last = func.max(t.c[C.TIMESTAMP])
        q = (
            select(t.c[C.QUERY])
            .where(t.c[C.EVENT_TYPE] == C.SEARCH, t.c[C.QUERY].is_not(None), t.c[C.QUERY] != "")
            .group_by(t.c[C.QUERY])
            .order_by(last.desc(), t.c[C.QUERY])
            .limit(max(int(limit), 0))
        )
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(q).fetchall()][::-1]

    def search_queries(self) -> list[str]:
        """The queries of every stored search that may shape lists (not opted-out shoppers'), with
        repeats: what autocomplete's past searches are counted from."""
        e, u = T.events, T.users
        q = select(e.c[C.QUERY]).where(
            e.c[C.EVENT_TYPE] == C.SEARCH,
            e.c[C.QUERY].is_not(None),
            e.c[C.USER].not_in(select(u.c[C.USER]).where(u.c[C.OPTED_OUT] == 1)),
        )
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q)]

    def _event_columns(
        self,
        *,
        user_id: str | None = None,
        event_types: Sequence[str] | None = None,
        since: float | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        columns: Sequence[str] = C.EVENT_COLUMNS,
        shaping: bool = False,
    ) -> dict[str, list[Any]]:
        """Events as plain lists per column (one statement per combination of filters, built and
        compiled once); ``shaping``: without the events of shoppers who opted out."""
        shape = (tuple(columns), user_id is not None, event_types is not None, since is not None, limit is not None)
        key = (*shape, newest_first, shaping)
        params = {"user": user_id, "types": list(event_types or []), "since": since, "n": limit}
        params = {k: v for k, v in params.items() if v is not None}
        rows: Sequence[Sequence[Any]]
        with self.engine.connect() as conn:
            if event_types is None:  # no expanding IN: the driver runs the compiled text directly
                rows = self.statements.fetch(conn, ("events", *key), lambda: _events_statement(*key), params)
            else:
                rows = conn.execute(_events_statement(*key), params).fetchall()
        data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
        return {c: list(v) for c, v in zip(columns, data, strict=True)}


@functools.cache
def _events_statement(
    columns: tuple[str, ...],
    by_user: bool,
    by_types: bool,
    by_since: bool,
    limited: bool,
    newest_first: bool,
    shaping: bool,
) -> Select:
    """The events query for one combination of filters, values bound at execution (built once:
    constructing a statement costs ~0.3 ms, a real share of a recommendation request)."""
    t = T.events
    q = select(*[t.c[c] for c in columns])
    if by_user:
        q = q.where(t.c[C.USER] == bindparam("user"))
    if shaping:  # without the events of shoppers who opted out
        u = T.users
        if by_user:  # one primary-key lookup (a NOT IN list would be rebuilt per request: ~0.1 ms)
            flag = select(u.c[C.USER]).where(u.c[C.USER] == bindparam("user"), u.c[C.OPTED_OUT] == 1)
            q = q.where(~exists(flag))
        else:  # a scan: the few opted-out ids are read once, through their index
            q = q.where(t.c[C.USER].not_in(select(u.c[C.USER]).where(u.c[C.OPTED_OUT] == 1)))
    if by_types:
        q = q.where(t.c[C.EVENT_TYPE].in_(bindparam("types", expanding=True)))
    if by_since:
        q = q.where(t.c[C.TIMESTAMP] >= bindparam("since"))
    order = [t.c[C.TIMESTAMP], t.c.seq]
    q = q.order_by(*[o.desc() for o in order] if newest_first else order)
    return q.limit(bindparam("n")) if limited else q
