"""One knowledge-store implementation over SQLAlchemy Core, chosen by URL.

``sqlite:///path/to.db`` is the embedded default (no server); ``postgresql://user@host/db`` is for
scale. Both run the same SQL: ``INSERT ... ON CONFLICT`` is understood by SQLite >= 3.24 and
PostgreSQL alike, so de-duplication and upserts behave identically.

Why SQLite and not DuckDB as the embedded default: measured in ``benchmarks/ingest.py`` (see
``docs/benchmarks.md``), and SQLite in WAL mode lets a serving process read while a training or
ingest process writes; DuckDB allows a single read-write process per file.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd
from sqlalchemy import Connection, Select, bindparam, exists, func, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from shopsense import columns as C
from shopsense.data.products import normalize_products
from shopsense.exceptions import StoreError
from shopsense.store import tables as T
from shopsense.store.api_keys import KeyRows
from shopsense.store.embeddings import EmbeddingRows
from shopsense.store.engine import DEFAULT_TIMEOUT_S, SCHEMES, make_engine
from shopsense.store.errors import guarded
from shopsense.store.rows import event_key, event_keys, json_or_none, to_db_rows
from shopsense.store.users import UserRows

_EVENT_INSERT_COLS = (
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
)
_PRODUCT_CONTENT_COLS = tuple(c for c in C.PRODUCT_COLUMNS if c not in (C.CREATED_AT, C.UPDATED_AT))


def open_store(url: str, *, create: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S) -> KnowledgeStore:
    """Open the knowledge store at ``url`` (``sqlite:///file.db`` or ``postgresql://...``); a lock
    held by another process is waited for up to ``timeout_s`` (setting ``store_timeout_s``)."""
    return KnowledgeStore(url, create=create, timeout_s=timeout_s)


@guarded  # driver errors leave every public method as StoreError / StoreBusyError (store/errors.py)
class KnowledgeStore(UserRows, EmbeddingRows, KeyRows):
    """Catalog, users, events, impressions, model versions and the embedding cache; a shopper's
    opt-out, export and deletion come from :class:`~shopsense.store.users.UserRows`.

    Writes that must be all-or-nothing take a ``conn`` from :meth:`transaction`; without one,
    each call is its own transaction.
    """

    def __init__(self, url: str, *, create: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.engine = make_engine(url, create=create, timeout_s=timeout_s)
        self.dialect = self.engine.dialect.name
        self._ph = "?" if self.dialect == "sqlite" else "%s"
        self._compiled: dict[int, tuple[Select, str, tuple[str, ...] | None, dict[str, Any]]] = {}
        if create:
            T.metadata.create_all(self.engine)  # a driver error here is mapped like any other (@guarded)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a store made by an earlier version up to date (idempotent): the users' and metadata
        changes of :meth:`UserRows._migrate`, then ``model_versions.activated_at`` (rollback's record)."""
        super()._migrate()
        try:
            if "model_versions" in inspect(self.engine).get_table_names():
                cols = {c["name"] for c in inspect(self.engine).get_columns("model_versions")}
                if "activated_at" not in cols:
                    with self.engine.begin() as c:
                        c.exec_driver_sql("ALTER TABLE model_versions ADD COLUMN activated_at FLOAT")
                        # the active one was activated at some point after it was made: a rollback
                        # from a later version returns to it
                        c.exec_driver_sql("UPDATE model_versions SET activated_at = created_at WHERE active = 1")
        except SQLAlchemyError as e:  # another process may have added it meanwhile
            cols = {c["name"] for c in inspect(self.engine).get_columns("model_versions")}
            if "activated_at" not in cols:
                raise StoreError(f"cannot upgrade the store's schema: {e}") from e

    # ------------------------------------------------------------------ plumbing
    @property
    def safe_url(self) -> str:
        """The URL without its password, for messages."""
        return make_url(self.url).render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: everything written through the yielded connection commits together or not at all."""
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _conn(self, conn: Connection | None) -> Iterator[Connection]:
        if conn is not None:
            yield conn
        else:
            with self.engine.begin() as c:
                yield c

    def _executemany(self, conn: Connection, sql: str, rows: Sequence[tuple]) -> int:
        """Fast bulk write through the driver; returns the number of rows changed."""
        if not rows:
            return 0
        sql = sql.replace("?", self._ph)
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.executemany(sql, rows)
            return max(cur.rowcount, 0)
        finally:
            cur.close()

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ products
    def upsert_products(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Insert or update products by ``item_id``. Rows whose content did not change are left alone.

        ``df`` must be validated already (see :mod:`shopsense.data.validation`). Returns rows written.
        """
        if df.empty:
            return 0
        now = time.time()
        out = pd.DataFrame({c: df[c] if c in df.columns else None for c in _PRODUCT_CONTENT_COLS})
        for col in (C.TAGS, C.ATTRIBUTES):
            out[col] = [json_or_none(v) for v in out[col]]
        out[C.AVAILABLE] = out[C.AVAILABLE].fillna(True).astype(bool).astype(int)
        out["row_hash"] = pd.util.hash_pandas_object(
            out.astype(object).where(out.notna(), None).astype(str), index=False
        ).astype(str)
        out[C.CREATED_AT] = df[C.CREATED_AT] if C.CREATED_AT in df.columns else now
        out[C.UPDATED_AT] = df[C.UPDATED_AT] if C.UPDATED_AT in df.columns else now
        out[C.CREATED_AT] = out[C.CREATED_AT].fillna(now)
        out[C.UPDATED_AT] = out[C.UPDATED_AT].fillna(now)
        cols = list(out.columns)
        updates = ", ".join(f"{col} = excluded.{col}" for col in cols if col not in (C.ITEM, C.CREATED_AT))
        sql = (
            f"INSERT INTO products ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            f"ON CONFLICT ({C.ITEM}) DO UPDATE SET {updates} WHERE products.row_hash <> excluded.row_hash"
        )
        with self._conn(conn) as c:
            return self._executemany(c, sql, to_db_rows(out))

    def delete_products(self, item_ids: Sequence[str], conn: Connection | None = None) -> int:
        """Remove products (their events stay: they are history)."""
        with self._conn(conn) as c:
            return c.execute(T.products.delete().where(T.products.c[C.ITEM].in_(list(item_ids)))).rowcount

    def products(self, item_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The catalog as a DataFrame (tags and attributes decoded, missing values in one shape: see
        :func:`~shopsense.data.products.normalize_products`), ordered by ``item_id``."""
        q = select(*[T.products.c[c] for c in C.PRODUCT_COLUMNS]).order_by(T.products.c[C.ITEM])
        if item_ids is not None:
            q = q.where(T.products.c[C.ITEM].in_(list(item_ids)))
        with self.engine.connect() as conn:
            df = pd.DataFrame(conn.execute(q).fetchall(), columns=list(C.PRODUCT_COLUMNS))
        df[C.TAGS] = [json.loads(v) if isinstance(v, str) and v else [] for v in df[C.TAGS]]
        df[C.ATTRIBUTES] = [json.loads(v) if isinstance(v, str) and v else {} for v in df[C.ATTRIBUTES]]
        return normalize_products(df)

    def known_items(self, item_ids: Sequence[str], conn: Connection | None = None) -> set[str]:
        """The ones of ``item_ids`` that are in the catalog."""
        ids = list(dict.fromkeys(item_ids))
        found: set[str] = set()
        with self._conn(conn) as c:
            cur = c.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:  # the driver directly: SQLAlchemy's IN expansion cost more than the lookups
                for i in range(0, len(ids), 500):
                    chunk = ids[i : i + 500]
                    cur.execute(
                        f"SELECT {C.ITEM} FROM products WHERE {C.ITEM} IN ({', '.join([self._ph] * len(chunk))})", chunk
                    )
                    found.update(r[0] for r in cur.fetchall())
            finally:
                cur.close()
        return found

    def get_product(self, item_id: str) -> dict[str, Any] | None:
        df = self.products([item_id])
        return None if df.empty else df.iloc[0].to_dict()

    # ------------------------------------------------------------------ users
    def upsert_users(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Insert users; attributes of known users are replaced when given."""
        if df.empty:
            return 0
        attrs = df[C.ATTRIBUTES] if C.ATTRIBUTES in df.columns else pd.Series([None] * len(df))
        rows = [(u, json_or_none(a), time.time()) for u, a in zip(df[C.USER], attrs, strict=True)]
        sql = (
            f"INSERT INTO users ({C.USER}, {C.ATTRIBUTES}, {C.CREATED_AT}) VALUES (?, ?, ?) "
            f"ON CONFLICT ({C.USER}) DO UPDATE SET {C.ATTRIBUTES} = excluded.{C.ATTRIBUTES} "
            f"WHERE excluded.{C.ATTRIBUTES} IS NOT NULL"
        )
        with self._conn(conn) as c:
            return self._executemany(c, sql, rows)

    def _ensure_users(self, c: Connection, user_ids: Sequence[str]) -> None:
        now = time.time()
        sql = f"INSERT INTO users ({C.USER}, {C.CREATED_AT}) VALUES (?, ?) ON CONFLICT ({C.USER}) DO NOTHING"
        self._executemany(c, sql, [(u, now) for u in user_ids])

    # ------------------------------------------------------------------ events
    @contextmanager
    def bulk_events(self, conn: Connection) -> Iterator[None]:
        """Within ``conn``'s transaction, for a first bulk load: while the events table is empty,
        its secondary indexes are dropped and built once at the end (a sort instead of millions of
        random index inserts; measured about 1.2x faster ingest). The unique ``event_key`` stays,
        so de-duplication is unchanged; on error the rollback restores the indexes.

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
        yield
        for ix in indexes:
            ix.create(conn)

    def add_events(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Append validated events; an event already stored (same ``event_key``) is skipped.

        Returns the number of new events. Unknown users are created on the way.
        """
        if df.empty:
            return 0
        if C.EVENT_KEY not in df.columns:
            df = df.assign(**{C.EVENT_KEY: event_keys(df)})
        out = pd.DataFrame({c: df[c] if c in df.columns else None for c in _EVENT_INSERT_COLS})
        return self._insert_events(to_db_rows(out), pd.unique(out[C.USER]).tolist(), conn)

    def add_event_rows(self, records: Sequence[Mapping[str, Any]], conn: Connection | None = None) -> int:
        """:meth:`add_events` for a few validated records (one HTTP request's events): the same
        rows and keys without pandas' fixed cost per call (~7 ms a request, most of an event's cost)."""
        rows = [(event_key(r), *(r.get(c) for c in _EVENT_INSERT_COLS[1:])) for r in records]
        return self._insert_events(rows, list(dict.fromkeys(r[C.USER] for r in records)), conn)

    def _insert_events(self, rows: Sequence[tuple], users: list[str], conn: Connection | None) -> int:
        """Rows in ``_EVENT_INSERT_COLS`` order; unknown users are created on the way."""
        if not rows:
            return 0
        sql = (
            f"INSERT INTO events ({', '.join(_EVENT_INSERT_COLS)}) VALUES ({', '.join('?' * len(_EVENT_INSERT_COLS))}) "
            f"ON CONFLICT ({C.EVENT_KEY}) DO NOTHING"
        )
        with self._conn(conn) as c:
            self._ensure_users(c, users)
            return self._executemany(c, sql, rows)

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
        """Events in chronological order (ties keep arrival order), optionally filtered. What trains
        or indexes lists passes ``include_opted_out=False``: opted-out shoppers' events shape nothing."""
        cols = self._event_columns(
            user_id=user_id,
            event_types=event_types,
            since=since,
            limit=limit,
            newest_first=newest_first,
            shaping=not include_opted_out,
        )
        return pd.DataFrame({c: pd.Series(v, dtype=object) for c, v in cols.items()}).infer_objects()

    def recent_events(self, user_id: str, limit: int = 50) -> pd.DataFrame:
        """The user's latest ``limit`` events, oldest first: what real-time requests read."""
        df = self.events(user_id=user_id, limit=limit, newest_first=True)
        return df.iloc[::-1].reset_index(drop=True)

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

    def recent_event_columns(
        self, user_id: str, limit: int = 50, columns: Sequence[str] = (C.ITEM, C.EVENT_TYPE, C.QUERY)
    ) -> dict[str, list[Any]]:
        """The user's latest ``limit`` events, oldest first, as plain lists per column: the per-request
        read of the recommender and of search personalisation (a DataFrame costs about a millisecond
        more than the query itself). Empty for a shopper who opted out: their lists are not personal."""
        cols = self._event_columns(user_id=user_id, limit=limit, newest_first=True, columns=columns, shaping=True)
        return {c: v[::-1] for c, v in cols.items()}

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
        """Events as plain lists per column (one cached statement per combination of filters);
        ``shaping``: without the events of shoppers who opted out."""
        q = _events_statement(
            tuple(columns),
            user_id is not None,
            event_types is not None,
            since is not None,
            limit is not None,
            newest_first,
            shaping,
        )
        params = {"user": user_id, "types": list(event_types or []), "since": since, "n": limit}
        params = {k: v for k, v in params.items() if v is not None}
        with self.engine.connect() as conn:
            if event_types is None:  # no expanding IN: the driver runs the compiled text directly
                sql, names, defaults = self._driver_statement(q)
                args = {**defaults, **params}  # defaults: parameters SQLAlchemy added (OFFSET 0)
                cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
                try:
                    cur.execute(sql, tuple(args[n] for n in names) if names is not None else args)
                    rows = cur.fetchall()
                finally:
                    cur.close()
            else:
                rows = conn.execute(q, params).fetchall()
        data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
        return {c: list(v) for c, v in zip(columns, data, strict=True)}

    def _driver_statement(self, q: Select) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        """``q`` compiled once for this database's driver: the SQL text and, for positional
        parameter styles, the parameter names in order (None: the driver takes a dict), and the
        values of parameters the statement fixed itself. Skipping
        SQLAlchemy's per-execution work saved about 0.15 ms of a 3 ms recommendation request."""
        key = id(q)
        hit = self._compiled.get(key)
        if hit is None:
            compiled = q.compile(dialect=self.engine.dialect)
            names = tuple(compiled.positiontup) if compiled.positiontup else None
            fixed = {k: v for k, v in compiled.params.items() if v is not None}
            hit = self._compiled[key] = (q, compiled.string, names, fixed)
        return hit[1], hit[2], hit[3]

    # ------------------------------------------------------------------ impressions
    def log_impressions(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Record what was shown (one row per item and position)."""
        if df.empty:
            return 0
        out = pd.DataFrame({c: df[c] if c in df.columns else None for c in C.IMPRESSION_COLUMNS})
        return self.log_impression_rows(to_db_rows(out), conn)

    def log_impression_rows(self, rows: Sequence[tuple], conn: Connection | None = None) -> int:
        """:meth:`log_impressions` for rows already in ``IMPRESSION_COLUMNS`` order holding plain
        Python values (the service's background writer: no DataFrame round trip per flush)."""
        cols = list(C.IMPRESSION_COLUMNS)
        if any(len(r) != len(cols) for r in rows):
            raise ValueError(f"impression rows need {len(cols)} values: {', '.join(cols)}")
        sql = f"INSERT INTO impressions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        with self._conn(conn) as c:
            return self._executemany(c, sql, list(rows))

    def impressions(self, request_id: str | None = None) -> pd.DataFrame:
        q = select(*[T.impressions.c[c] for c in C.IMPRESSION_COLUMNS]).order_by(T.impressions.c.seq)
        if request_id is not None:
            q = q.where(T.impressions.c[C.REQUEST_ID] == request_id)
        with self.engine.connect() as conn:
            return pd.DataFrame(conn.execute(q).fetchall(), columns=list(C.IMPRESSION_COLUMNS))

    # ------------------------------------------------------------------ model versions
    def register_version(
        self, version: str, *, status: str, path: str | None = None, metrics: dict | None = None
    ) -> None:
        """Create or update a model version's record."""
        sql = (
            "INSERT INTO model_versions (version, created_at, status, path, metrics, active) VALUES (?, ?, ?, ?, ?, 0) "
            "ON CONFLICT (version) DO UPDATE SET status = excluded.status, path = excluded.path, metrics = excluded.metrics"
        )
        with self.engine.begin() as c:
            self._executemany(c, sql, [(version, time.time(), status, path, json.dumps(metrics or {}))])

    def activate_version(self, version: str) -> None:
        """Mark one complete version as the one to serve (atomically unmarks the rest)."""
        mv = T.model_versions
        with self.engine.begin() as c:
            row = c.execute(select(mv.c.status).where(mv.c.version == version)).first()
            if row is None:
                raise StoreError(f"unknown model version {version!r}")
            if row[0] != "complete":
                raise StoreError(f"model version {version!r} is {row[0]}, not complete")
            c.execute(mv.update().values(active=0))
            c.execute(mv.update().where(mv.c.version == version).values(active=1, activated_at=time.time()))

    def versions(self) -> pd.DataFrame:
        mv = T.model_versions
        with self.engine.connect() as c:
            rows = c.execute(select(mv).order_by(mv.c.created_at)).fetchall()
        df = pd.DataFrame(rows, columns=[col.name for col in mv.columns])
        df["metrics"] = [json.loads(m) if isinstance(m, str) and m else {} for m in df["metrics"]]
        df["active"] = df["active"].astype(bool)
        return df

    def active_version(self) -> str | None:
        mv = T.model_versions
        with self.engine.connect() as c:
            row = c.execute(select(mv.c.version).where(mv.c.active == 1)).first()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ summary
    def stats(self) -> dict[str, Any]:
        """Counts of products, users and events by type."""
        with self.engine.connect() as c:
            n_products = c.execute(select(func.count()).select_from(T.products)).scalar_one()
            n_users = c.execute(select(func.count()).select_from(T.users)).scalar_one()
            by_type: dict[str, int] = dict(
                c.execute(select(T.events.c[C.EVENT_TYPE], func.count()).group_by(T.events.c[C.EVENT_TYPE])).fetchall()
            )
            n_impr = c.execute(select(func.count()).select_from(T.impressions)).scalar_one()
        return {
            "products": int(n_products),
            "users": int(n_users),
            "events": int(sum(by_type.values())),
            "events_by_type": {t: int(by_type.get(t, 0)) for t in C.EVENT_TYPES},
            "impressions": int(n_impr),
        }


__all__ = ["SCHEMES", "KnowledgeStore", "event_keys", "open_store"]


@functools.cache
def _events_statement(
    columns: tuple[str, ...],
    by_user: bool,
    by_types: bool,
    by_since: bool,
    limited: bool,
    newest_first: bool,
    shaping: bool = False,
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
