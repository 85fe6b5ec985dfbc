"""Where a version's folder is.

A version's folder is recorded relative to the home (``models/<version>``) and resolved against the
home on read, so commands work from any working directory and a moved or restored home keeps
serving. Records written before that (absolute paths, or paths relative to the folder a command
ran in) still load: see :func:`version_folder`.
"""

from __future__ import annotations

from pathlib import Path

MODELS = "models"
#: prefix of the folder a training writes into before it is renamed to the version's name
TMP_PREFIX = ".tmp-"
#: the file a complete version folder holds (written last, see :mod:`shopsense.versions.contents`)
MANIFEST = "manifest.json"


def recorded_path(home: Path, folder: Path) -> str:
    """What to store for ``folder``: its path relative to the home when it lies inside it (the
    normal case), else its absolute path."""
    folder, home = Path(folder).resolve(), Path(home).resolve()
    try:
        return folder.relative_to(home).as_posix()
    except ValueError:
        return str(folder)


def version_folder(home: Path, version: str, recorded: object) -> Path:
    """The folder of ``version``, absolute, from the path its record holds (``recorded``).

    Tried in order, the first that holds the version wins: the recorded path relative to the home
    (or as it is, when absolute); relative to the working folder (records written before paths were
    home-relative); ``<home>/models/<version>`` (no path recorded, or a home that was moved or
    restored elsewhere). When none exists, the first candidate is returned (its error names it).
    """
    home = Path(home)
    candidates: list[Path] = []
    if isinstance(recorded, str) and recorded:
        p = Path(recorded)
        candidates.append(p if p.is_absolute() else home / p)
        if not p.is_absolute():
            candidates.append(p)
    candidates.append(home / MODELS / version)
    for c in candidates:
        if (c / MANIFEST).exists() or (c / "params.json").exists():
            return c.resolve()
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    return candidates[0].absolute()


def tmp_folder(home: Path, version: str) -> Path:
    """Where a training of ``version`` writes before publishing."""
    return Path(home) / MODELS / f"{TMP_PREFIX}{version}"
