"""Publishing a version atomically: a training writes into a temporary folder, and only a complete,
synced folder is renamed to the version's name, recorded ``complete`` and activated.

>>> draft = Draft.start(store, home, version)      # record `training`, heartbeat, temporary folder
>>> engine.save(draft.folder / "engine")            # ... the trainer writes its files
>>> draft.publish(last_event_ts=ts, metrics=m)      # manifest, fsync, rename, `complete`, active

A crash anywhere before the rename leaves the served version untouched and a temporary folder that
:func:`shopsense.versions.reap_abandoned` removes; :meth:`Draft.fail` does it at once when the
trainer sees its own error.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shopsense.store import KnowledgeStore
from shopsense.versions.contents import write_manifest
from shopsense.versions.folders import MODELS, recorded_path, tmp_folder
from shopsense.versions.trainers import TRAINER, Heartbeat, trainer_info


class Draft:
    """A version being trained: its ``training`` record (with a heartbeat) and temporary folder."""

    def __init__(self, store: KnowledgeStore, home: Path, version: str) -> None:
        self.store, self.home, self.version = store, Path(home), version
        self.folder = tmp_folder(self.home, version)  # what the trainer writes into
        self.final = self.home / MODELS / version
        self.path = recorded_path(self.home, self.final)  # relative to the home: works from any folder
        self.heartbeat = Heartbeat(store, version, self.path, trainer_info())

    @classmethod
    def start(cls, store: KnowledgeStore, home: Path, version: str) -> Draft:
        """Record ``version`` as training by this process, start its heartbeat, make its folder."""
        draft = cls(store, home, version)
        store.register_version(version, status="training", path=draft.path, metrics={TRAINER: draft.heartbeat.info})
        draft.heartbeat.start()
        draft.folder.mkdir(parents=True, exist_ok=True)  # after the record: a reaper leaves it to a live trainer
        return draft

    def publish(self, *, last_event_ts: float, metrics: dict[str, Any], activate: bool = True) -> Path:
        """Write the manifest, sync the folder, rename it to the version's name, record the version
        ``complete`` and (``activate``) make it the one to serve. Returns the version's folder."""
        write_manifest(self.folder, self.version, last_event_ts=last_event_ts, metrics=metrics)
        _fsync_tree(self.folder)
        os.replace(self.folder, self.final)
        _fsync_dir(self.final.parent)
        self.heartbeat.stop()  # before the record leaves `training`: a late beat must not turn it back
        self.store.register_version(self.version, status="complete", path=self.path, metrics=metrics)
        if activate:
            self.store.activate_version(self.version)
        return self.final.resolve()

    def fail(self, error: BaseException) -> None:
        """Record the version ``failed`` with ``error`` and remove its temporary folder."""
        self.heartbeat.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
        failure = {"failure": f"{type(error).__name__}: {error}"}
        self.store.register_version(self.version, status="failed", path=None, metrics=failure)


def _fsync_tree(folder: Path) -> None:
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    for p in sorted([folder, *[q for q in folder.rglob("*") if q.is_dir()]]):
        _fsync_dir(p)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
