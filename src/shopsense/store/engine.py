"""Opening a database engine from a store URL: the backend is chosen by the URL's scheme."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from shopsense.exceptions import StoreError, UnknownStoreError

SCHEMES = ("sqlite", "postgresql")

#: how long a statement waits for another process's lock before the store reports itself busy
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class PoolLimits:
    """A PostgreSQL connection pool's limits per process (settings ``store_pool_size`` and
    ``store_pool_overflow``): a server's threads share ``size`` connections and may open ``overflow``
    more under a burst; a connection older than ``recycle_s`` is replaced (servers and poolers drop
    idle ones). Every process (each worker, each CLI command) has its own pool, so a database serves
    at most processes x (size + overflow) connections: keep that under its ``max_connections``."""

    size: int = 5
    overflow: int = 10
    recycle_s: float = 1800.0


def make_engine(
    url: str, *, create: bool, timeout_s: float = DEFAULT_TIMEOUT_S, pool: PoolLimits | None = None
) -> Engine:
    """An engine for ``url``; a lock held by another process is waited for up to ``timeout_s``, and a
    free pooled connection (PostgreSQL) as long."""
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    if scheme not in SCHEMES:
        raise UnknownStoreError(f"Unknown store: {url.split(':', 1)[0]!r}; valid schemes: {', '.join(SCHEMES)}")
    try:
        if scheme == "sqlite":
            path = make_url(url).database
            if path and path != ":memory:":
                if create:
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                elif not Path(path).exists():
                    raise StoreError(f"no knowledge base at {path}: run `shopsense init` first")
            engine = create_engine(url, connect_args={"timeout": timeout_s})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        limits = pool or PoolLimits()
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=limits.size,
            max_overflow=limits.overflow,
            pool_recycle=limits.recycle_s,
            pool_timeout=timeout_s,
            connect_args=_pg_timeouts(url, timeout_s),
        )
    except (ArgumentError, SQLAlchemyError) as e:
        raise StoreError(f"cannot open store {url!r}: {e}") from e


def _pg_timeouts(url: str, timeout_s: float) -> dict[str, Any]:
    """libpq settings: give up connecting, and waiting for a lock, after ``timeout_s`` (options
    already in the URL win)."""
    query = make_url(url).query
    out: dict[str, Any] = {}
    if "connect_timeout" not in query:
        out["connect_timeout"] = max(1, round(timeout_s))
    if "options" not in query:
        out["options"] = f"-c lock_timeout={max(1, round(timeout_s * 1000))}"
    return out


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the server read while a training or ingest process writes.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    # a 64 MiB page cache (default 2 MiB) keeps the event indexes in memory during bulk ingest
    cur.execute("PRAGMA cache_size=-65536")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
