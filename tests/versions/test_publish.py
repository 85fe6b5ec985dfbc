"""Publishing a version: only a complete, renamed folder is recorded complete and served; a failed
draft leaves the served version and no temporary folder."""

from __future__ import annotations

from pathlib import Path

from shopsense import versions
from shopsense.store import KnowledgeStore
from shopsense.versions import Draft, tmp_folder


def _status(store: KnowledgeStore) -> dict[str, str]:
    return dict(zip(store.versions()["version"], store.versions()["status"], strict=True))


def test_publish_renames_records_and_activates(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    draft = Draft.start(sqlite_store, tmp_path, "v1")
    assert _status(sqlite_store) == {"v1": "training"} and draft.folder == tmp_folder(tmp_path, "v1")
    (draft.folder / "engine").mkdir()
    (draft.folder / "engine" / "engine.json").write_text("{}")
    assert versions.served_version(sqlite_store, tmp_path) is None  # not served while training
    folder = draft.publish(last_event_ts=5.0, metrics={"n_items": 2})
    assert folder == (tmp_path / "models" / "v1").resolve() and not draft.folder.exists()
    assert (folder / "engine" / "engine.json").exists() and versions.read_manifest(folder).last_event_ts == 5.0
    assert _status(sqlite_store) == {"v1": "complete"} and sqlite_store.active_version() == "v1"
    rec = sqlite_store.versions().iloc[0]
    assert rec["path"] == "models/v1" and rec["metrics"] == {"n_items": 2}  # home-relative, trainer gone
    assert versions.served_folder(sqlite_store, tmp_path) == folder


def test_publish_without_activating(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    Draft.start(sqlite_store, tmp_path, "v1").publish(last_event_ts=0.0, metrics={})
    Draft.start(sqlite_store, tmp_path, "v2").publish(last_event_ts=0.0, metrics={}, activate=False)
    assert _status(sqlite_store) == {"v1": "complete", "v2": "complete"} and sqlite_store.active_version() == "v1"


def test_a_failed_draft_leaves_the_served_version(sqlite_store: KnowledgeStore, tmp_path: Path) -> None:
    Draft.start(sqlite_store, tmp_path, "v1").publish(last_event_ts=0.0, metrics={})
    draft = Draft.start(sqlite_store, tmp_path, "v2")
    (draft.folder / "half.npy").write_bytes(b"x")
    draft.fail(RuntimeError("out of memory"))
    assert _status(sqlite_store) == {"v1": "complete", "v2": "failed"} and not draft.folder.exists()
    assert sqlite_store.versions().set_index("version").loc["v2", "metrics"] == {
        "failure": "RuntimeError: out of memory"
    }
    assert versions.served_version(sqlite_store, tmp_path).version == "v1"
