"""Schema versions: a new store records this release's, an older one is migrated (by `shopsense migrate`,
or by a command that may) and refused by the server until then, a newer one is refused everywhere."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from shopsense import columns as C
from shopsense.cli.main import app
from shopsense.store import KnowledgeStore, open_store
from shopsense.store.engine import PoolLimits
from shopsense.store.schema import SCHEMA_VERSION, SchemaVersionError, fingerprint

#: the layout of store/tables.py at SCHEMA_VERSION. When this test fails you changed the tables: bump
#: SCHEMA_VERSION, add the migration to the role's `_migrate`, then put the new fingerprint here.
FINGERPRINTS = {1: "ec35e37bd3184dba", 2: "1c52f8ad2935ab1d"}


def test_the_tables_change_only_with_the_schema_version() -> None:
    assert fingerprint() == FINGERPRINTS[SCHEMA_VERSION], "store/tables.py changed: see this test's FINGERPRINTS"


def _make_old(store: KnowledgeStore) -> None:
    """Back to a store from before schema versions and before ``users.opted_out``."""
    with store.engine.begin() as c:
        c.execute(text("DELETE FROM store_meta WHERE key = 'schema_version'"))
        c.execute(text("DROP INDEX IF EXISTS ix_users_opted_out"))
        c.execute(text(f"ALTER TABLE users DROP COLUMN {C.OPTED_OUT}"))


def _set_version(store: KnowledgeStore, version: int) -> None:
    with store.engine.begin() as c:
        c.execute(text("UPDATE store_meta SET value = :v WHERE key = 'schema_version'"), {"v": str(version)})


def test_a_new_store_records_this_releases_version(store: KnowledgeStore) -> None:
    assert store.schema_version() == SCHEMA_VERSION
    assert open_store(store.url, migrate=False).schema_version() == SCHEMA_VERSION  # the server's way opens it
    assert store.migrate() == (SCHEMA_VERSION, SCHEMA_VERSION)  # nothing to do


def test_an_old_store_is_refused_without_migrating_then_migrated(store: KnowledgeStore) -> None:
    _make_old(store)
    with pytest.raises(SchemaVersionError, match="schema version 0.*run `shopsense migrate`"):
        open_store(store.url, migrate=False)
    assert store.schema_version() == 0  # the refusal changed nothing
    assert store.migrate() == (0, SCHEMA_VERSION)
    again = open_store(store.url, migrate=False)
    assert again.schema_version() == SCHEMA_VERSION
    again.set_opted_out("u1")  # the column is back
    assert again.opted_out(["u1", "u2"]) == {"u1"}
    again.close()


def test_a_version_1_store_gets_the_evaluations_table(store: KnowledgeStore) -> None:
    with store.engine.begin() as c:
        c.execute(text("DROP TABLE evaluations"))
    _set_version(store, 1)
    with pytest.raises(SchemaVersionError, match="schema version 1"):
        open_store(store.url, migrate=False)
    assert store.migrate() == (1, SCHEMA_VERSION)
    store.add_evaluation("recommend", {"recommendation": {}})
    assert store.latest_evaluation()["result"] == {"recommendation": {}}  # type: ignore[index]


def test_a_command_that_may_migrate_does(store: KnowledgeStore) -> None:
    _make_old(store)
    opened = open_store(store.url)  # ingest, train...: migrate on open, as before versions
    assert opened.schema_version() == SCHEMA_VERSION
    opened.close()


def test_a_store_from_a_newer_release_is_refused_everywhere(store: KnowledgeStore) -> None:
    _set_version(store, SCHEMA_VERSION + 1)
    for migrate in (True, False):
        with pytest.raises(SchemaVersionError, match="newer shopsense"):
            open_store(store.url, migrate=migrate)
    with pytest.raises(SchemaVersionError, match="newer shopsense"):
        store.migrate()


@pytest.mark.postgres
def test_two_processes_migrating_at_once_both_succeed(pg_store: KnowledgeStore) -> None:
    """The advisory lock: the second waits for the first and finds nothing left to do."""
    _make_old(pg_store)
    results: list[tuple[int, int] | BaseException] = []

    def run() -> None:
        try:
            s = open_store(pg_store.url, create=False, migrate=True)  # migrates on open
            results.append((0, s.schema_version() or 0))
            s.close()
        except BaseException as e:  # noqa: BLE001 - reported below
            results.append(e)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert results == [(0, SCHEMA_VERSION)] * 3
    with pg_store.engine.connect() as c:
        cols = c.execute(text("SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"))
        assert C.OPTED_OUT in {r[0] for r in cols}


@pytest.mark.postgres
def test_the_connection_pool_has_the_settings_limits(pg_store: KnowledgeStore) -> None:
    s = open_store(pg_store.url, pool=PoolLimits(size=3, overflow=2))
    assert (s.engine.pool.size(), s.engine.pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]
    s.close()


def test_the_cli_migrates_and_serve_refuses_an_old_store(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path)]
    assert runner.invoke(app, [*home, "init"]).exit_code == 0
    store = open_store(f"sqlite:///{tmp_path / 'shopsense.db'}")
    _make_old(store)
    store.close()
    r = runner.invoke(app, [*home, "serve", "--port", "1"])
    assert r.exit_code == 2 and "run `shopsense migrate`" in r.stderr and "Traceback" not in r.output
    r = runner.invoke(app, [*home, "migrate"])
    assert r.exit_code == 0 and f"schema version 0 -> {SCHEMA_VERSION}" in r.stdout, r.output
    r = runner.invoke(app, [*home, "migrate"])
    assert r.exit_code == 0 and "up to date" in r.stdout


@pytest.mark.postgres
def test_migrating_an_empty_database_says_to_init_first(pg_url: str) -> None:
    runner = CliRunner()
    r = runner.invoke(app, ["--store", pg_url, "migrate"])
    assert r.exit_code == 2 and "run `shopsense init` first" in r.stderr
    assert runner.invoke(app, ["--store", pg_url, "init"]).exit_code == 0
    assert "up to date" in runner.invoke(app, ["--store", pg_url, "migrate"]).stdout
