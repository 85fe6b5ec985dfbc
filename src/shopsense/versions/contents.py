"""What a version folder holds, and reading it: the manifest (format checked), the item ids and one
model through the model's own loader.

A version folder is ``manifest.json`` (written last: a folder without one is not a version),
``engine/`` (one sub-folder per model, :meth:`shopsense.ranking.pipeline.Engine.save`) and
``items.json`` (the external ids of the models' item rows); a training that fine-tuned the text
encoder adds ``encoder/`` (the tuned model, see :func:`encoder_settings`) and ``search/`` (the search
index built with it). ``FORMAT_VERSION`` numbers that layout;
a folder of another format is refused with what to do instead of failing somewhere deep in a load.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shopsense.data.idmap import IdMap
from shopsense.exceptions import IncompatibleFormatError, NoModelError
from shopsense.versions.folders import MANIFEST

if TYPE_CHECKING:
    from shopsense.config import Settings

#: layout of a version folder (manifest.json, engine/, items.json); raise it when that changes
FORMAT_VERSION = 1
ENGINE = "engine"
ITEMS = "items.json"
ENCODER = "encoder"
RETRAIN = "retrain with `shopsense train` (or POST /train), or serve it with the release that trained it"


@dataclass(frozen=True)
class Manifest:
    """A version's ``manifest.json``."""

    version: str
    created_at: float
    last_event_ts: float  # the newest event trained on: an incremental training learns from the ones after
    metrics: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def as_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "version": self.version,
            "created_at": self.created_at,
            "last_event_ts": self.last_event_ts,
            "metrics": self.metrics,
        }


def write_manifest(folder: Path, version: str, *, last_event_ts: float, metrics: dict[str, Any]) -> Manifest:
    """Write the manifest of ``version`` into ``folder`` (the last file a training writes)."""
    m = Manifest(version, time.time(), float(last_event_ts), metrics)
    (Path(folder) / MANIFEST).write_text(json.dumps(m.as_dict(), indent=1, default=str), encoding="utf-8")
    return m


def read_manifest(folder: Path) -> Manifest:
    """The manifest of the version in ``folder``. NoModelError when there is none;
    IncompatibleFormatError, saying to retrain, when it was written in another format."""
    file = Path(folder) / MANIFEST
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NoModelError(f"no model version at {folder} (no {MANIFEST}): run `shopsense train`") from None
    except (OSError, ValueError) as e:
        raise IncompatibleFormatError(f"{file} cannot be read ({e}): {RETRAIN}") from e
    if not isinstance(data, dict):
        raise IncompatibleFormatError(f"{file} is not a manifest: {RETRAIN}")
    got = data.get("format_version")
    if got != FORMAT_VERSION:
        name = data.get("version") or Path(folder).name
        raise IncompatibleFormatError(
            f"model version {name} has format {got}, this release reads format {FORMAT_VERSION}: {RETRAIN}"
        )
    return Manifest(
        version=str(data.get("version") or Path(folder).name),
        created_at=float(data.get("created_at") or 0.0),
        last_event_ts=float(data.get("last_event_ts") or 0.0),
        metrics=data.get("metrics") or {},
        format_version=got,
    )


def has_model(folder: Path, name: str) -> bool:
    """Whether the version in ``folder`` holds model ``name``."""
    return (Path(folder) / ENGINE / name / "params.json").exists()


def load_model(folder: Path, name: str) -> Any:
    """Model ``name`` of the version in ``folder``, read by the model's own loader (which checks the
    model's format). Only that model's module is imported (the sequential model alone needs torch)."""
    from shopsense.models import MODELS

    return MODELS[name].load(Path(folder) / ENGINE / name)


def items(folder: Path) -> IdMap:
    """The id map of the version's item rows (row ``i`` of every model is item ``external_ids[i]``)."""
    return IdMap.load(Path(folder) / ITEMS)


def encoder_folder(folder: Path | None) -> Path | None:
    """The text encoder the version in ``folder`` fine-tuned (None: it serves the settings' encoder);
    a training writes ``encoder/`` only when it tuned one (``shopsense.training.version_encoder``)."""
    if folder is None:
        return None
    f = Path(folder) / ENCODER
    return f if f.is_dir() else None


def encoder_settings(settings: Settings, folder: Path | None) -> Settings:
    """The settings that serve the version in ``folder``: with its own fine-tuned text encoder when it
    has one, so every product and query it serves is encoded by the model its vectors came from."""
    tuned = encoder_folder(folder)
    if tuned is None:
        return settings
    return settings.model_copy(update={"encoder": settings.encoder.model_copy(update={"model": str(tuned)})})
