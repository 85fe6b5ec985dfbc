"""What every part of the knowledge store shares: the engine, transactions and compiled statements.

Each role of the store (products, events, impressions, model versions, API keys, embeddings, users)
is a mixin over :class:`StoreBase` in its own module; :class:`~shopsense.store.sql.KnowledgeStore`
composes them into the one store the rest of the code opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.engine import make_url

from shopsense.store.errors import guarded
from shopsense.store.statements import Statements


@guarded  # driver errors leave every public method as StoreError / StoreBusyError (store/errors.py)
class StoreBase:
    """The engine and transactions every role of the store runs on."""

    url: str
    timeout_s: float
    engine: Engine
    dialect: str  # "sqlite" or "postgresql"
    statements: Statements

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
        """The caller's transaction when given, else a new one for this call."""
        if conn is not None:
            yield conn
        else:
            with self.engine.begin() as c:
                yield c

    def _migrate(self) -> None:
        """Bring a store made by an earlier release up to date; each role mixin with a schema change
        extends this (calling ``super()._migrate()`` first)."""

    def close(self) -> None:
        self.engine.dispose()
