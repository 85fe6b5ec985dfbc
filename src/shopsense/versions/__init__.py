"""Model versions: one place for publishing, listing and choosing the served version.

- :mod:`~shopsense.versions.publish`: a training's :class:`Draft`, published atomically;
- :mod:`~shopsense.versions.served`: list versions, which are served, activate, roll back;
- :mod:`~shopsense.versions.contents`: a version folder's manifest (format checked) and models;
- :mod:`~shopsense.versions.folders`: where a version's folder is;
- :mod:`~shopsense.versions.trainers`: who trains a version, and reaping dead trainings.
"""

from shopsense.versions.contents import (
    FORMAT_VERSION,
    Manifest,
    encoder_folder,
    encoder_settings,
    has_model,
    items,
    load_model,
    read_manifest,
    write_manifest,
)
from shopsense.versions.folders import MANIFEST, MODELS, TMP_PREFIX, recorded_path, tmp_folder, version_folder
from shopsense.versions.publish import Draft
from shopsense.versions.served import (
    Version,
    activate,
    list_versions,
    previous_version,
    rollback,
    served_folder,
    served_version,
    served_versions,
)
from shopsense.versions.trainers import (
    HEARTBEAT_S,
    STALE_AFTER_S,
    TRAINER,
    Heartbeat,
    reap_abandoned,
    trainer_info,
)

__all__ = [
    "encoder_folder",
    "encoder_settings",
    "FORMAT_VERSION",
    "HEARTBEAT_S",
    "MANIFEST",
    "MODELS",
    "STALE_AFTER_S",
    "TMP_PREFIX",
    "TRAINER",
    "Draft",
    "Heartbeat",
    "Manifest",
    "Version",
    "activate",
    "has_model",
    "items",
    "list_versions",
    "load_model",
    "previous_version",
    "read_manifest",
    "reap_abandoned",
    "recorded_path",
    "rollback",
    "served_folder",
    "served_version",
    "served_versions",
    "tmp_folder",
    "trainer_info",
    "version_folder",
    "write_manifest",
]
