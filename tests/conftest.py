"""Shared fixtures: a fresh knowledge store per test, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

from shopsense.process import process_environment

# the suite runs the library as the CLI does: hub offline, OpenMP threads passive (shopsense.process)
os.environ.update(process_environment())
# lists exactly as ranked: the randomised position swap (2% of responses by default) would make
# tests that compare a served list with the engine's fail now and then; its own tests turn it on
os.environ.setdefault("SHOPSENSE_SERVICE__POSITION_SWAP_SHARE", "0")

import pytest
from sqlalchemy import create_engine, text

from shopsense.config import data_dir
from shopsense.store import KnowledgeStore, open_store

#: e.g. postgresql://postgres@127.0.0.1:5432/postgres ; .ci/run starts a server and sets it
PG_URL = os.environ.get("SHOPSENSE_TEST_PG_URL")


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[KnowledgeStore]:
    s = open_store(f"sqlite:///{tmp_path / 'kb.db'}")
    yield s
    s.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL database, dropped afterwards."""
    if not PG_URL:
        pytest.skip("SHOPSENSE_TEST_PG_URL not set (no PostgreSQL server)")
    name = f"shopsense_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield f"{PG_URL.rsplit('/', 1)[0]}/{name}"
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def pg_store(pg_url: str) -> Iterator[KnowledgeStore]:
    """A store in a fresh PostgreSQL database, dropped afterwards."""
    s = open_store(pg_url)
    yield s
    s.close()


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest) -> KnowledgeStore:
    """The same test on every store backend."""
    return request.getfixturevalue(f"{request.param}_store")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The public datasets folder; tests using it are skipped when it is absent."""
    d = data_dir()
    if not d.exists():
        pytest.skip(f"data folder {d} not found (set SHOPSENSE_DATA_DIR)")
    return d
