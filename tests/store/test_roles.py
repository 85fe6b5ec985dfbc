"""The store by role: the one store implements every role's interface, each public method belongs
to a role, and every public method maps driver errors to StoreError."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from sqlalchemy.dialects.postgresql import psycopg
from sqlalchemy.dialects.sqlite import pysqlite

from shopsense import columns as C
from shopsense.exceptions import StoreBusyError, StoreError
from shopsense.store import KnowledgeStore, open_store
from shopsense.store import roles as R
from shopsense.store.errors import is_guarded
from shopsense.store.statements import Statements

#: public methods that belong to the store as a whole rather than to one role
STORE_WIDE = {"close", "stats", "query_salt", "migrate", "schema_version"}


def _public_methods() -> dict[str, Any]:
    """Every public method of the store, from whichever mixin defines it."""
    return {
        name: inspect.getattr_static(KnowledgeStore, name)
        for name in dir(KnowledgeStore)
        if not name.startswith("_") and inspect.isfunction(inspect.getattr_static(KnowledgeStore, name))
    }


def _role_members(role: type) -> list[str]:
    return [n for n, v in vars(role).items() if not n.startswith("_") and inspect.isfunction(v)]


@pytest.mark.parametrize("role", R.ROLES, ids=lambda r: r.__name__)
def test_the_store_implements_each_role_with_its_signatures(sqlite_store: KnowledgeStore, role: type) -> None:
    assert isinstance(sqlite_store, role)
    for name in _role_members(role):
        want = inspect.signature(getattr(role, name))
        got = inspect.signature(getattr(KnowledgeStore, name))
        assert list(got.parameters) == list(want.parameters), name
        for p, q in zip(got.parameters.values(), want.parameters.values(), strict=True):
            assert p.kind == q.kind, f"{name}({p.name})"
            assert (p.default is inspect.Parameter.empty) == (q.default is inspect.Parameter.empty), f"{name}({p.name})"


def test_every_public_method_belongs_to_one_role() -> None:
    owners: dict[str, list[str]] = {}
    for role in R.ROLES:
        for name in _role_members(role):
            owners.setdefault(name, []).append(role.__name__)
    assert {n: o for n, o in owners.items() if len(o) > 1} == {}
    assert set(_public_methods()) - STORE_WIDE == set(owners)


def test_every_public_method_is_guarded() -> None:
    methods = _public_methods()
    assert len(methods) > 30
    assert [n for n, fn in methods.items() if not is_guarded(fn)] == []
    assert is_guarded(KnowledgeStore.__init__)


EVENTS = pd.DataFrame({C.USER: ["u1"], C.ITEM: ["A"], C.EVENT_TYPE: ["view"], C.TIMESTAMP: [1.0]})
IMPRESSION = ("r1", "u1", "A", 0, 1.0, "als", "recommend", "v1", None, 1.0)


def _enter(cm: Any) -> None:
    with cm:
        pass


def _failing_conn() -> mock.Mock:
    conn = mock.Mock()
    conn.execute.side_effect = sqlite3.OperationalError("disk I/O error")
    return conn


#: one call of every public method that reaches the database
CALLS: dict[str, Callable[[KnowledgeStore], Any]] = {
    "transaction": lambda s: _enter(s.transaction()),
    "bulk_events": lambda s: _enter(s.bulk_events(_failing_conn())),
    "upsert_products": lambda s: s.upsert_products(pd.DataFrame({C.ITEM: ["A"], C.TITLE: ["Apple"]})),
    "delete_products": lambda s: s.delete_products(["A"]),
    "products": lambda s: s.products(),
    "get_product": lambda s: s.get_product("A"),
    "known_items": lambda s: s.known_items(["A"]),
    "add_events": lambda s: s.add_events(EVENTS),
    "add_event_rows": lambda s: s.add_event_rows(EVENTS.to_dict("records")),
    "events": lambda s: s.events(event_types=["view"]),
    "recent_event_columns": lambda s: s.recent_event_columns("u1"),
    "event_batches": lambda s: list(s.event_batches(10)),
    "count_events": lambda s: s.count_events(),
    "recent_queries": lambda s: s.recent_queries(5),
    "search_queries": lambda s: s.search_queries(),
    "log_impressions": lambda s: s.log_impressions(
        pd.DataFrame([IMPRESSION], columns=list(C.IMPRESSION_COLUMNS)[: len(IMPRESSION)])
    ),
    "log_impression_rows": lambda s: s.log_impression_rows([IMPRESSION]),
    "impressions": lambda s: s.impressions(),
    "recent_impressions": lambda s: s.recent_impressions("u1", 0.0, 10),
    "register_version": lambda s: s.register_version("v1", status="training"),
    "activate_version": lambda s: s.activate_version("v1"),
    "versions": lambda s: s.versions(),
    "active_version": lambda s: s.active_version(),
    "add_api_key": lambda s: s.add_api_key("k1", "hash", ["read"]),
    "find_api_key": lambda s: s.find_api_key("hash"),
    "api_keys": lambda s: s.api_keys(),
    "revoke_api_key": lambda s: s.revoke_api_key("k1"),
    "get_embeddings": lambda s: s.get_embeddings("m", ["h"]),
    "put_embeddings": lambda s: s.put_embeddings("m", ["h"], np.ones((1, 2), np.float32)),
    "query_salt": lambda s: s.query_salt(),
    "query_keys": lambda s: s.query_keys(["q"]),
    "upsert_users": lambda s: s.upsert_users(pd.DataFrame({C.USER: ["u1"]})),
    "set_opted_out": lambda s: s.set_opted_out("u1"),
    "opted_out": lambda s: s.opted_out(),
    "export_user": lambda s: s.export_user("u1"),
    "deletion_mark": lambda s: s.deletion_mark(),
    "delete_users": lambda s: s.delete_users(["u1"]),
    "delete_user": lambda s: s.delete_user("u1"),
    "link_user": lambda s: s.link_user("u1", "anon-1"),
    "linked_ids": lambda s: s.linked_ids("u1"),
    "add_experiment": lambda s: s.add_experiment(
        {
            "name": "e",
            "arms": [],
            "surface": "search",
            "mode": "ab",
            "status": "running",
            "started_at": 1.0,
            "salt": "00",
        }
    ),
    "experiment_records": lambda s: s.experiment_records(),
    "stop_experiment": lambda s: s.stop_experiment("e", 2.0),
    "experiment_impressions": lambda s: s.experiment_impressions("e"),
    "stats": lambda s: s.stats(),
    "migrate": lambda s: s.migrate(),
    "add_evaluation": lambda s: s.add_evaluation("recommend", {"a": 1}),
    "latest_evaluation": lambda s: s.latest_evaluation(),
    "schema_version": lambda s: s.schema_version(),
}
NO_DATABASE = {"close"}


def test_the_calls_below_cover_every_public_method() -> None:
    assert set(CALLS) | NO_DATABASE == set(_public_methods())


@pytest.mark.parametrize("name", sorted(CALLS))
def test_a_broken_database_is_a_store_error_from_every_method(tmp_path: Path, name: str) -> None:
    path = tmp_path / "kb.db"
    store = open_store(f"sqlite:///{path}")
    store.close()
    for f in tmp_path.iterdir():
        f.unlink()
    path.write_bytes(b"not a database" * 100)
    store._salt = None  # read again, from the (now broken) file
    with pytest.raises(StoreError) as info:
        CALLS[name](store)
    assert not isinstance(info.value, StoreBusyError)
    store.close()


def test_statements_are_cached_by_their_key() -> None:
    st = Statements(pysqlite.dialect())
    built: list[str] = []

    def build() -> Any:
        built.append("x")
        return st.insert("users", (C.USER, C.CREATED_AT))

    first = st.get(("users", (C.USER,)), build)
    assert st.get(("users", (C.USER,)), build) is first  # an equal key, another tuple object
    assert len(built) == 1
    st.get(("other",), build)
    assert len(built) == 2


@pytest.mark.parametrize("dialect", [pysqlite.dialect(), psycopg.dialect()], ids=["sqlite", "postgresql"])
def test_bulk_inserts_bind_exactly_the_columns_given(sqlite_store: KnowledgeStore, dialect: Any) -> None:
    """The driver gets one value per column and row: a column default SQLAlchemy would fill in
    (``products.available``, ``users.opted_out``) must not appear in the compiled text."""
    sqlite_store.statements = Statements(dialect)
    builders = {
        "products": sqlite_store._upsert_products,
        "users": sqlite_store._upsert_users,
        "new users": sqlite_store._new_users,
        "events": sqlite_store._add_events,
        "impressions": sqlite_store._log_impressions,
        "embeddings": sqlite_store._put_embeddings,
    }
    for what, build in builders.items():
        compiled = build().compile(dialect=dialect)
        cols = [c.name for c in build().table.c]
        bound = list(compiled.positiontup) if compiled.positiontup else list(compiled.binds)
        assert bound == cols, what


def test_values_with_percent_signs_and_question_marks(store: KnowledgeStore) -> None:
    """Placeholders come from SQLAlchemy, so a value that looks like one is just a value (both backends)."""
    store.upsert_products(pd.DataFrame({C.ITEM: ["50%?"], C.TITLE: ["100% cotton?"]}))
    ev = EVENTS.assign(**{C.ITEM: ["50%?"], C.QUERY: ["%s ? %(x)s"]})
    assert store.add_event_rows(ev.to_dict("records")) == 1
    assert store.known_items(["50%?", "%", "?"]) == {"50%?"}
    assert store.recent_event_columns("u1")[C.QUERY] == ["%s ? %(x)s"]
    assert store.get_product("50%?")[C.TITLE] == "100% cotton?"
