"""The knowledge store over SQLAlchemy Core, one implementation for every backend, chosen by URL.

``sqlite:///path/to.db`` is the embedded default (no server); ``postgresql://user@host/db`` is for
scale. Both run the same SQL: ``INSERT ... ON CONFLICT`` is understood by SQLite >= 3.24 and
PostgreSQL alike, so de-duplication and upserts behave identically.

Why SQLite and not DuckDB as the embedded default: measured in ``benchmarks/ingest.py`` (see
``docs/benchmarks.md``), and SQLite in WAL mode lets a serving process read while a training or
ingest process writes; DuckDB allows a single read-write process per file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from shopsense import columns as C
from shopsense.exceptions import StoreError
from shopsense.store import schema
from shopsense.store import tables as T
from shopsense.store.api_keys import KeyRows
from shopsense.store.embeddings import EmbeddingRows
from shopsense.store.engine import DEFAULT_TIMEOUT_S, SCHEMES, PoolLimits, make_engine
from shopsense.store.errors import guarded
from shopsense.store.evaluations import EvaluationRows
from shopsense.store.events import EventRows
from shopsense.store.experiments import ExperimentRows
from shopsense.store.impressions import ImpressionRows
from shopsense.store.links import LinkRows
from shopsense.store.model_versions import VersionRows
from shopsense.store.products import ProductRows
from shopsense.store.rows import event_keys
from shopsense.store.statements import Statements
from shopsense.store.users import UserRows

if TYPE_CHECKING:
    from shopsense.store import roles as R


def open_store(
    url: str,
    *,
    create: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    migrate: bool = True,
    pool: PoolLimits | None = None,
) -> KnowledgeStore:
    """Open the knowledge store at ``url`` (``sqlite:///file.db`` or ``postgresql://...``); a lock
    held by another process is waited for up to ``timeout_s`` (setting ``store_timeout_s``). A store
    made by an earlier release is brought up to date, or with ``migrate=False`` refused with
    :class:`~shopsense.store.schema.SchemaVersionError` (see :mod:`shopsense.store.schema`)."""
    return KnowledgeStore(url, create=create, timeout_s=timeout_s, migrate=migrate, pool=pool)


@guarded  # driver errors leave every public method as StoreError / StoreBusyError (store/errors.py)
class KnowledgeStore(
    ProductRows,
    EventRows,
    ImpressionRows,
    VersionRows,
    KeyRows,
    EmbeddingRows,
    UserRows,
    LinkRows,
    ExperimentRows,
    EvaluationRows,
):
    """The knowledge store: one class made of one mixin per role (see :mod:`shopsense.store.roles`
    for the interfaces a caller that needs only one role can type against).

    Writes that must be all-or-nothing take a ``conn`` from :meth:`transaction`; without one,
    each call is its own transaction.
    """

    def __init__(
        self,
        url: str,
        *,
        create: bool = True,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        migrate: bool = True,
        pool: PoolLimits | None = None,
    ) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.engine = make_engine(url, create=create, timeout_s=timeout_s, pool=pool)
        self.dialect = self.engine.dialect.name
        self.statements = Statements(self.engine.dialect)
        found = schema.stored_version(self.engine)  # a driver error here is mapped like any other (@guarded)
        refusal = None
        if found is not None and found > schema.SCHEMA_VERSION:
            refusal = schema.newer_message(found, self.safe_url)
        elif found is not None and found < schema.SCHEMA_VERSION and not migrate:
            refusal = schema.outdated_message(found, self.safe_url)
        if refusal:
            self.engine.dispose()
            raise schema.SchemaVersionError(refusal)
        if create:
            T.metadata.create_all(self.engine)
        if found is None and create:  # a new store: made at this release's layout
            with self.engine.begin() as c:
                schema.record_version(c)
        #: the version this open migrated from (None: nothing to migrate)
        self.migrated_from: int | None = None
        if found is not None and found < schema.SCHEMA_VERSION:
            self.migrated_from = self.migrate()[0]
        if found is not None or create:
            self.query_salt()  # made now, not first inside a caller's write transaction (SQLite would deadlock)

    def schema_version(self) -> int | None:
        """The schema version the store records (None: not initialised)."""
        return schema.stored_version(self.engine)

    def migrate(self) -> tuple[int, int]:
        """Bring the tables up to this release's layout: (version before, version after). Safe to run
        from several processes at once, and when the store is already current (nothing changes)."""
        with self.engine.connect() as lock:
            schema.migration_lock(lock, self.dialect)
            try:
                found = schema.stored_version(self.engine)
                if found is None:
                    raise StoreError(f"no knowledge base at {self.safe_url} yet: run `shopsense init` first")
                before = found
                if before > schema.SCHEMA_VERSION:
                    raise schema.SchemaVersionError(schema.newer_message(before, self.safe_url))
                if before < schema.SCHEMA_VERSION:
                    T.metadata.create_all(self.engine)  # tables added since (none of them held rows before)
                    self._migrate()
                    with self.engine.begin() as c:
                        schema.record_version(c)
            finally:
                schema.migration_unlock(lock, self.dialect)
                lock.commit()
        return before, schema.SCHEMA_VERSION

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


if TYPE_CHECKING:  # mypy holds the store to every role's interface

    def _implements_every_role(store: KnowledgeStore) -> None:
        roles: tuple[
            R.Transactions,
            R.Catalog,
            R.EventLog,
            R.ImpressionLog,
            R.VersionRecords,
            R.KeyRing,
            R.EmbeddingCache,
            R.Shoppers,
            R.ExperimentRecords,
            R.EvaluationRecords,
        ] = (store, store, store, store, store, store, store, store, store, store)
        del roles
