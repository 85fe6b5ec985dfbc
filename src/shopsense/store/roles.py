"""The knowledge store by role: one small interface per kind of data, for callers that need one.

:class:`~shopsense.store.sql.KnowledgeStore` implements all of them (one mixin per role, one module
each); a caller that reads only the catalog types its argument as :class:`Catalog` and a test can
hand it anything with those methods. Every role's methods raise :class:`~shopsense.exceptions.StoreError`
(or :class:`~shopsense.exceptions.StoreBusyError`) for the database's failures, never a driver's error.

Methods that write take an optional ``conn`` from :meth:`Transactions.transaction`, so writes of
several roles can commit together.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from shopsense.store.links import Link
from shopsense.store.users import UserDeletion


@runtime_checkable
class Transactions(Protocol):
    """Writes of several roles in one transaction."""

    def transaction(self) -> AbstractContextManager[Connection]: ...


@runtime_checkable
class Catalog(Protocol):
    """Products by ``item_id`` (:mod:`shopsense.store.products`)."""

    def upsert_products(self, df: pd.DataFrame, conn: Connection | None = None) -> int: ...

    def delete_products(self, item_ids: Sequence[str], conn: Connection | None = None) -> int: ...

    def products(self, item_ids: Sequence[str] | None = None) -> pd.DataFrame: ...

    def get_product(self, item_id: str) -> dict[str, Any] | None: ...

    def known_items(self, item_ids: Sequence[str], conn: Connection | None = None) -> set[str]: ...


@runtime_checkable
class EventLog(Protocol):
    """Behaviour, appended and read back (:mod:`shopsense.store.events`)."""

    def bulk_events(self, conn: Connection) -> AbstractContextManager[None]: ...

    def add_events(self, df: pd.DataFrame, conn: Connection | None = None) -> int: ...

    def add_event_rows(self, records: Sequence[Mapping[str, Any]], conn: Connection | None = None) -> int: ...

    def events(
        self,
        *,
        user_id: str | None = None,
        event_types: Sequence[str] | None = None,
        since: float | None = None,
        limit: int | None = None,
        newest_first: bool = False,
        include_opted_out: bool = True,
    ) -> pd.DataFrame: ...

    def event_batches(self, batch_size: int = ..., *, include_opted_out: bool = ...) -> Iterator[pd.DataFrame]: ...

    def count_events(self, *, include_opted_out: bool = ...) -> int: ...

    def recent_event_columns(
        self, user_id: str, limit: int = 50, columns: Sequence[str] = ...
    ) -> dict[str, list[Any]]: ...

    def recent_queries(self, limit: int) -> list[str]: ...

    def search_queries(self) -> list[str]: ...


@runtime_checkable
class ImpressionLog(Protocol):
    """What was shown, per request and position (:mod:`shopsense.store.impressions`)."""

    def log_impressions(self, df: pd.DataFrame, conn: Connection | None = None) -> int: ...

    def log_impression_rows(self, rows: Sequence[tuple], conn: Connection | None = None) -> int: ...

    def impressions(self, request_id: str | None = None, latest: int | None = None) -> pd.DataFrame: ...

    def recent_impressions(self, user_id: str, since: float, limit: int) -> dict[str, list[Any]]: ...


@runtime_checkable
class ExperimentRecords(Protocol):
    """Online experiments' records and their impressions (:mod:`shopsense.store.experiments`)."""

    def add_experiment(self, record: dict[str, Any]) -> None: ...

    def experiment_records(self, status: str | None = None) -> list[dict[str, Any]]: ...

    def stop_experiment(self, name: str, at: float) -> bool: ...

    def experiment_impressions(self, name: str) -> pd.DataFrame: ...


@runtime_checkable
class EvaluationRecords(Protocol):
    """The shop's own offline evaluations (:mod:`shopsense.store.evaluations`)."""

    def add_evaluation(self, kind: str, result: dict[str, Any], created_at: float | None = None) -> int: ...

    def latest_evaluation(self, kind: str | None = None) -> dict[str, Any] | None: ...


@runtime_checkable
class VersionRecords(Protocol):
    """Model versions' records and the active one (:mod:`shopsense.store.model_versions`)."""

    def register_version(
        self, version: str, *, status: str, path: str | None = None, metrics: dict | None = None
    ) -> None: ...

    def activate_version(self, version: str) -> None: ...

    def versions(self) -> pd.DataFrame: ...

    def active_version(self) -> str | None: ...


@runtime_checkable
class KeyRing(Protocol):
    """API keys by hash (:mod:`shopsense.store.api_keys`)."""

    def add_api_key(self, key_id: str, key_hash: str, scopes: Sequence[str], name: str | None = None) -> None: ...

    def find_api_key(self, key_hash: str) -> dict[str, Any] | None: ...

    def api_keys(self) -> pd.DataFrame: ...

    def revoke_api_key(self, key_id: str) -> bool: ...


@runtime_checkable
class EmbeddingCache(Protocol):
    """Vectors of texts per encoder model, and the salted keys of query texts
    (:mod:`shopsense.store.embeddings`)."""

    def get_embeddings(self, model_id: str, text_hashes: Sequence[str]) -> dict[str, np.ndarray]: ...

    def put_embeddings(self, model_id: str, text_hashes: Sequence[str], vectors: np.ndarray) -> int: ...

    def query_keys(self, queries: Sequence[str]) -> list[str]: ...


@runtime_checkable
class Shoppers(Protocol):
    """Shoppers' rows and their privacy: opt-out, export, deletion (:mod:`shopsense.store.users`), and
    anonymous ids merged into users (:mod:`shopsense.store.links`)."""

    def upsert_users(self, df: pd.DataFrame, conn: Connection | None = None) -> int: ...

    def set_opted_out(self, user_id: str, opted_out: bool = True) -> None: ...

    def opted_out(self, user_ids: Sequence[str] | None = None) -> set[str]: ...

    def export_user(self, user_id: str) -> dict[str, Any]: ...

    def deletion_mark(self) -> str | None: ...

    def delete_users(self, user_ids: Sequence[str], *, vacuum: str = "off") -> UserDeletion: ...

    def delete_user(self, user_id: str) -> dict[str, int]: ...

    def link_user(self, user_id: str, anonymous_id: str) -> Link: ...

    def linked_ids(self, user_id: str) -> list[str]: ...


#: every role, for tests and documentation
ROLES: tuple[type, ...] = (
    Transactions,
    Catalog,
    EventLog,
    ImpressionLog,
    VersionRecords,
    KeyRing,
    EmbeddingCache,
    Shoppers,
    ExperimentRecords,
    EvaluationRecords,
)

__all__ = [
    "ROLES",
    "Catalog",
    "EmbeddingCache",
    "EvaluationRecords",
    "EventLog",
    "ExperimentRecords",
    "ImpressionLog",
    "KeyRing",
    "Shoppers",
    "Transactions",
    "VersionRecords",
]
