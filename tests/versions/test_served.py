"""Which versions exist and which is served (one answer for every caller), activate and roll back."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from shopsense import versions
from shopsense.exceptions import NoModelError, UnknownVersionError, VersionError
from shopsense.store import KnowledgeStore, open_store
from shopsense.versions import write_manifest


def _complete(store: KnowledgeStore, home: Path, version: str, *, activate: bool = True) -> Path:
    folder = home / "models" / version
    folder.mkdir(parents=True)
    write_manifest(folder, version, last_event_ts=0.0, metrics={"n_items": 3})
    store.register_version(version, status="complete", path=f"models/{version}", metrics={"n_items": 3})
    if activate:
        store.activate_version(version)
    return folder


def test_list_and_served(store: KnowledgeStore, tmp_path: Path) -> None:
    assert versions.list_versions(store, tmp_path) == [] and versions.served_versions(store, tmp_path) == []
    with pytest.raises(NoModelError, match="shopsense train"):
        versions.served_folder(store, tmp_path)
    v1 = _complete(store, tmp_path, "v1")
    _complete(store, tmp_path, "v2", activate=False)
    store.register_version("v3", status="training", path="models/v3")
    listed = versions.list_versions(store, tmp_path)
    assert [(v.version, v.status, v.active) for v in listed] == [
        ("v1", "complete", True),
        ("v2", "complete", False),
        ("v3", "training", False),
    ]
    assert listed[0].folder == v1.resolve() and listed[0].metrics == {"n_items": 3} and listed[0].activated_at
    assert listed[2].folder is not None and listed[1].activated_at is None
    # the active version is served, though v2 is newer
    assert [v.version for v in versions.served_versions(store, tmp_path)] == ["v1"]
    assert versions.served_folder(store, tmp_path) == v1.resolve()


def test_without_an_active_version_the_newest_complete_one_is_served(sqlite_store: KnowledgeStore, tmp_path: Path):
    """A training that completed but died before activating: the server always served it; the CLI,
    the trainer and search now agree (they used to say "no model")."""
    _complete(sqlite_store, tmp_path, "v1", activate=False)
    v2 = _complete(sqlite_store, tmp_path, "v2", activate=False)
    sqlite_store.register_version("v3", status="failed")
    assert versions.served_version(sqlite_store, tmp_path).version == "v2"
    assert versions.served_folder(sqlite_store, tmp_path) == v2.resolve()


def test_a_record_without_a_path_has_a_folder_only_when_one_is_there(sqlite_store: KnowledgeStore, tmp_path: Path):
    sqlite_store.register_version("v1", status="complete", path=None)
    assert versions.list_versions(sqlite_store, tmp_path)[0].folder is None
    folder = tmp_path / "models" / "v1"
    folder.mkdir(parents=True)
    write_manifest(folder, "v1", last_event_ts=0.0, metrics={})
    assert versions.list_versions(sqlite_store, tmp_path)[0].folder == (tmp_path / "models" / "v1").resolve()


def test_activate_refuses_unknown_and_incomplete_versions(store: KnowledgeStore, tmp_path: Path) -> None:
    _complete(store, tmp_path, "v1")
    store.register_version("v2", status="training")
    with pytest.raises(UnknownVersionError, match="unknown model version 'nope'"):
        versions.activate(store, "nope")
    with pytest.raises(VersionError, match="is training, not complete"):
        versions.activate(store, "v2")
    assert store.active_version() == "v1"


def test_rollback_returns_to_the_version_active_before(store: KnowledgeStore, tmp_path: Path) -> None:
    _complete(store, tmp_path, "v1")
    with pytest.raises(VersionError, match="no earlier model version to roll back to: no other version was served"):
        versions.rollback(store)
    _complete(store, tmp_path, "v2")
    _complete(store, tmp_path, "v3")
    versions.activate(store, "v1")  # roll back by hand: v3 was active before v1
    assert versions.previous_version(store) == "v3"
    assert versions.rollback(store) == "v3" and store.active_version() == "v3"
    assert versions.rollback(store) == "v1" and store.active_version() == "v1"  # undoes the rollback


def test_rollback_with_nothing_complete(sqlite_store: KnowledgeStore) -> None:
    sqlite_store.register_version("v1", status="failed")
    with pytest.raises(VersionError, match="no version is complete"):
        versions.rollback(sqlite_store)


def test_a_store_from_before_activation_times_is_upgraded_and_rolls_back(tmp_path: Path) -> None:
    """An existing home: its versions table has no activated_at. Opening adds the column; rollback
    then goes to the newest complete version created before the active one."""
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    old = open_store(url)
    with old.engine.begin() as c:
        c.execute(text("ALTER TABLE model_versions DROP COLUMN activated_at"))
        c.execute(text("DELETE FROM store_meta WHERE key = 'schema_version'"))  # made before schema versions
        for n, v in enumerate(["v1", "v2", "v3"]):
            c.execute(
                text(
                    "INSERT INTO model_versions (version, created_at, status, path, metrics, active) "
                    "VALUES (:v, :t, 'complete', NULL, '{}', :a)"
                ),
                {"v": v, "t": float(n), "a": int(v == "v2")},
            )
    old.close()
    store = open_store(url)
    assert "activated_at" in store.versions().columns
    assert versions.previous_version(store) == "v1"
    assert versions.rollback(store) == "v1"
    assert versions.rollback(store) == "v2"  # now the activation is recorded
    store.close()
