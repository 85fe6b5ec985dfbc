"""Which versions exist, which are served, and choosing the one to serve (activate, roll back).

This is the one answer to "which version is served": the trainer's warm start, the CLI, search's
collaborative links and the server's model swap all ask :func:`served_versions`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopsense.exceptions import NoModelError, UnknownVersionError, VersionError
from shopsense.store import KnowledgeStore
from shopsense.versions.contents import read_manifest
from shopsense.versions.folders import MANIFEST, MODELS, version_folder

COMPLETE = "complete"


@dataclass(frozen=True)
class Version:
    """One model version's record, its folder resolved against the home."""

    version: str
    status: str  # training | complete | failed
    created_at: float
    active: bool
    activated_at: float | None  # when it was last made active (None: never, or before this was recorded)
    folder: Path | None  # None when the record names no folder and none is under <home>/models
    metrics: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "status": self.status,
            "created_at": self.created_at,
            "active": self.active,
            "activated_at": self.activated_at,
            "metrics": self.metrics,
        }


def list_versions(store: KnowledgeStore, home: Path) -> list[Version]:
    """Every version (training, complete, failed), oldest first."""
    out = []
    for r in store.versions().to_dict("records"):
        name = str(r["version"])
        out.append(
            Version(
                version=name,
                status=str(r["status"]),
                created_at=float(r["created_at"]),
                active=bool(r["active"]),
                activated_at=_float_or_none(r.get("activated_at")),
                folder=_folder(Path(home), name, r["path"]),
                metrics=r.get("metrics") or {},
            )
        )
    return out


def served_versions(store: KnowledgeStore, home: Path) -> list[Version]:
    """The versions to serve, the default first; empty when no version is complete.

    The default is the active complete version, else the newest complete one (a training that
    completed but died before activating, a store from before activation). After it come the
    versions the arms of running experiments serve (complete ones, each once, in the experiments'
    order): the arms pin them, so activating another version (a training's, a rollback) changes
    the default and leaves an experiment's users on their arm's version.
    """
    done = [v for v in list_versions(store, home) if v.status == COMPLETE]
    active = [v for v in done if v.active]
    pick = (active or done)[-1:]
    by_name = {v.version: v for v in done}
    for record in store.experiment_records(status="running"):
        for arm in record["arms"]:
            v = by_name.get(str(arm["version"]))
            if v is not None and v not in pick:
                pick.append(v)
    return pick


def served_version(store: KnowledgeStore, home: Path) -> Version | None:
    """The default served version (:func:`served_versions`), or None before any training completed."""
    served = served_versions(store, home)
    return served[0] if served else None


def served_folder(store: KnowledgeStore, home: Path) -> Path:
    """The folder of the default served version, its manifest checked: NoModelError when nothing
    is trained or its files are gone, IncompatibleFormatError when it was written in another format."""
    v = served_version(store, home)
    if v is None:
        raise NoModelError("no trained model yet: run `shopsense train`")
    folder = v.folder or version_folder(home, v.version, None)
    if not (folder / MANIFEST).exists():
        raise NoModelError(f"model version {v.version} has no artifacts at {folder}: run `shopsense train`")
    read_manifest(folder)
    return folder


def activate(store: KnowledgeStore, version: str) -> None:
    """Make ``version`` (a complete one) the one to serve; servers switch to it at their next poll.
    UnknownVersionError when there is no such version, VersionError when it is not complete."""
    records = store.versions().set_index("version")
    if version not in records.index:
        raise UnknownVersionError(f"unknown model version {version!r}")
    status = records.loc[version, "status"]
    if status != COMPLETE:
        raise VersionError(f"model version {version!r} is {status}, not complete: only a complete version is served")
    store.activate_version(version)


def previous_version(store: KnowledgeStore) -> str | None:
    """The version that was active before the current one: of the other complete versions, the one
    activated last. Stores from before activations were recorded know no such time: there, the
    newest complete version created before the current one. None when there is none."""
    records = store.versions()
    done = records[records["status"] == COMPLETE]
    if done.empty:
        return None
    current = (done[done["active"]] if done["active"].any() else done).iloc[-1]  # as served_versions
    others = done[done["version"] != current["version"]]
    known = others[others["activated_at"].notna()]
    if len(known):
        return str(known.sort_values("activated_at", kind="stable")["version"].iloc[-1])
    older = others[others["created_at"] < float(current["created_at"])]
    return str(older["version"].iloc[-1]) if len(older) else None


def rollback(store: KnowledgeStore) -> str:
    """Activate the version that was active before the current one (:func:`previous_version`) and
    return its name. A second rollback returns to the version rolled back from, like
    ``kubectl rollout undo``. VersionError when there is no earlier version."""
    previous = previous_version(store)
    if previous is None:
        any_done = bool((store.versions()["status"] == COMPLETE).any())
        why = "no other version was served before this one" if any_done else "no version is complete"
        raise VersionError(f"no earlier model version to roll back to: {why}")
    store.activate_version(previous)
    return previous


def _folder(home: Path, version: str, recorded: object) -> Path | None:
    if isinstance(recorded, str) and recorded:
        return version_folder(home, version, recorded)
    default = home / MODELS / version
    return default.resolve() if (default / MANIFEST).exists() else None


def _float_or_none(x: object) -> float | None:
    if x is None:
        return None
    f = float(x)  # type: ignore[arg-type]
    return None if math.isnan(f) else f
