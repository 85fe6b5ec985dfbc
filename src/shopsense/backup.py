"""Backup and restore of a knowledge base with its model versions.

A backup is a folder: ``shopsense.db`` (SQLite stores), ``models/<version>/`` for every complete
version, ``search/`` (the search index the CLI and server keep under the home) when there is one,
and ``backup.json``, the manifest, written last: a folder without it is an unfinished backup.

On SQLite the database is copied with SQLite's online backup API in one step: a read snapshot, so a
server or ingest may keep writing meanwhile (WAL mode) and the copy is consistent. The model folders
are copied after the snapshot, for the versions complete in it (a version is never changed once
complete). In the copy, version paths are made relative to the home and trainings still running
are marked failed, so the backup restores into any folder. PostgreSQL is dumped with its own tools
(``pg_dump``): :func:`backup` copies the model folders and says how.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from shopsense.exceptions import BackupError
from shopsense.store import KnowledgeStore
from shopsense.versions import MANIFEST as VERSION_MANIFEST
from shopsense.versions import MODELS, version_folder

FORMAT = 1
MANIFEST = "backup.json"
DATABASE = "shopsense.db"
SEARCH = "search"
_SQLITE_TIMEOUT_S = 30.0


# ---------------------------------------------------------------------------- backup
def backup(store: KnowledgeStore, home: Path, dest: Path) -> dict[str, Any]:
    """Write a backup of ``store`` and the model versions under ``home`` into ``dest`` (new or empty).
    Returns the manifest; on PostgreSQL its ``guidance`` says how to dump the database."""
    home, dest = Path(home), Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise BackupError(f"{dest} is not an empty folder: back up into a new or empty one")
    dest.mkdir(parents=True, exist_ok=True)
    if store.dialect == "sqlite":
        records = _sqlite_snapshot(_sqlite_file(store.url), dest / DATABASE)
        database: str | None = DATABASE
        guidance = None
    else:
        records = store.versions()[["version", "status", "path", "active"]].to_dict("records")
        database = None
        guidance = pg_guidance(store, dest)
    versions, missing = [], []
    for rec in records:
        if rec["status"] != "complete":
            continue
        version = str(rec["version"])
        src = version_folder(home, version, rec["path"])
        if not (src / VERSION_MANIFEST).exists():
            missing.append(version)
            continue
        shutil.copytree(src, dest / MODELS / version)
        versions.append(version)
    folders = [MODELS] if versions else []
    if (home / SEARCH / "params.json").exists():
        shutil.copytree(home / SEARCH, dest / SEARCH)
        folders.append(SEARCH)
    manifest = {
        "format_version": FORMAT,
        "created_at": time.time(),
        "created_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "store": store.dialect,
        "database": database,
        "versions": versions,
        "active_version": next((str(r["version"]) for r in records if r["active"]), None),
        "missing_versions": missing,
        "folders": folders,
        "guidance": guidance,
    }
    _write_atomically(dest / MANIFEST, json.dumps(manifest, indent=1))
    return manifest


def pg_guidance(store: KnowledgeStore, dest: Path) -> str:
    """How to dump and restore a PostgreSQL knowledge base alongside a backup folder."""
    url = make_url(store.url).set(drivername="postgresql").render_as_string(hide_password=True)
    dump = dest / "shopsense.pgdump"
    return (
        "the PostgreSQL database is not in this folder: dump it with PostgreSQL's own tool (a consistent "
        f"snapshot while the server writes):\n  pg_dump --format=custom --file '{dump}' '{url}'\n"
        f"and restore it with\n  pg_restore --clean --if-exists --no-owner --dbname '{url}' '{dump}'\n"
        "(the model versions of the store are copied here; `shopsense restore` puts them back)"
    )


def _sqlite_file(url: str) -> Path:
    path = make_url(url).database
    if not path or path == ":memory:":
        raise BackupError(f"store {url!r} is not a SQLite file")
    return Path(path)


def _sqlite_snapshot(db: Path, out: Path) -> list[dict[str, Any]]:
    """Copy ``db`` to ``out`` with the online backup API, make the copy self-contained and home-
    independent, and return its version records."""
    try:
        src = sqlite3.connect(db, timeout=_SQLITE_TIMEOUT_S)
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)  # all pages in one step: one read snapshot, writers go on (WAL)
        finally:
            src.close()
        with dst:
            dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
            rows = dst.execute("SELECT version, status, path, active FROM model_versions ORDER BY created_at")
            records = [dict(zip(("version", "status", "path", "active"), r, strict=True)) for r in rows]
            dst.execute("UPDATE model_versions SET path = ? || '/' || version WHERE status = 'complete'", (MODELS,))
            # a training running during the backup will not finish in the restored copy
            failure = json.dumps({"failure": "was training when the backup was taken"})
            dst.execute(
                "UPDATE model_versions SET status = 'failed', path = NULL, metrics = ? WHERE status = 'training'",
                (failure,),
            )
        dst.close()
    except sqlite3.Error as e:
        raise BackupError(f"cannot back up {db}: {e}") from e
    return records


# ---------------------------------------------------------------------------- restore
def read_manifest(folder: Path) -> dict[str, Any]:
    """The validated manifest of the backup in ``folder``."""
    folder = Path(folder)
    file = folder / MANIFEST
    if not file.is_file():
        raise BackupError(f"no {MANIFEST} in {folder}: not a shopsense backup, or an unfinished one")
    try:
        m = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise BackupError(f"{file}: not a readable manifest: {e}") from e
    if not isinstance(m, dict) or m.get("format_version") != FORMAT:
        got = m.get("format_version") if isinstance(m, dict) else None
        raise BackupError(f"{file}: backup format {got!r}, this shopsense reads format {FORMAT}")
    if m.get("store") not in ("sqlite", "postgresql"):
        raise BackupError(f"{file}: unknown store kind {m.get('store')!r}")
    versions = m.get("versions")
    if not isinstance(versions, list) or not all(_plain_name(v) for v in versions):
        raise BackupError(f"{file}: 'versions' must be a list of version names")
    for v in versions:
        if not (folder / MODELS / v / VERSION_MANIFEST).is_file():
            raise BackupError(f"{file} lists version {v} but {folder / MODELS / v} has no {VERSION_MANIFEST}")
    if m["store"] == "sqlite":
        if m.get("database") != DATABASE or not (folder / DATABASE).is_file():
            raise BackupError(f"{file}: the SQLite database {folder / DATABASE} is missing")
        _check_database(folder / DATABASE)
    return m


def _plain_name(v: object) -> bool:
    return isinstance(v, str) and bool(v) and v not in (".", "..") and Path(v).name == v and "\\" not in v


def _check_database(db: Path) -> None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        try:
            ok = con.execute("PRAGMA quick_check").fetchone()
            con.execute("SELECT version FROM model_versions LIMIT 1").fetchall()
        finally:
            con.close()
    except sqlite3.Error as e:
        raise BackupError(f"{db} is not a shopsense database: {e}") from e
    if not ok or ok[0] != "ok":
        raise BackupError(f"{db} is damaged: {ok[0] if ok else 'no answer from quick_check'}")


def restore(src: Path, store_url: str, home: Path, *, force: bool = False) -> dict[str, Any]:
    """Put the backup in ``src`` into ``home`` and the store at ``store_url``. Refuses a home or
    database that holds anything unless ``force`` (then its model versions, search index and
    database are replaced). Stop the server and trainings of that home first. Returns the manifest
    (on PostgreSQL its ``guidance`` says how to restore the database)."""
    src, home = Path(src), Path(home)
    m = read_manifest(src)
    target_sqlite = store_url.split(":", 1)[0].split("+", 1)[0] == "sqlite"
    if (m["store"] == "sqlite") != target_sqlite:
        kind = "a SQLite database" if m["store"] == "sqlite" else "no database (a PostgreSQL store's backup)"
        raise BackupError(f"the backup in {src} holds {kind}; restore it into a {m['store']} store")
    db = _sqlite_file(store_url) if target_sqlite else None
    in_use = sorted(p.name for p in home.iterdir()) if home.is_dir() else []
    if db is not None and db.exists() and db.name not in in_use:
        in_use.append(db.name)
    if in_use and not force:
        raise BackupError(
            f"{home} is not empty ({', '.join(in_use[:5])}): restore into a new or empty "
            "folder, or pass --force to replace its knowledge base and model versions"
        )
    home.mkdir(parents=True, exist_ok=True)
    # model folders first: a server that sees the restored records finds their folders there
    for name in (MODELS, SEARCH):
        _replace_folder(src / name if name in m.get("folders", []) else None, home / name)
    if db is not None:
        _restore_sqlite(src / DATABASE, db)
    return m


def _replace_folder(src: Path | None, dest: Path) -> None:
    """``dest`` becomes a copy of ``src`` (removed when ``src`` is None), swapped in by renames."""
    staging = dest.with_name(f".restore-{dest.name}")
    shutil.rmtree(staging, ignore_errors=True)
    if src is not None:
        shutil.copytree(src, staging)
    old = dest.with_name(f".replaced-{dest.name}")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        os.replace(dest, old)
    if src is not None:
        os.replace(staging, dest)
    shutil.rmtree(old, ignore_errors=True)


def _restore_sqlite(backup_db: Path, db: Path) -> None:
    """Write the backup into ``db`` with the backup API: other connections to ``db`` see the old or
    the new content, never a torn file (and stale -wal/-shm files cannot outlive a copy)."""
    db.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = sqlite3.connect(f"file:{backup_db}?mode=ro", uri=True)
        dst = sqlite3.connect(db, timeout=_SQLITE_TIMEOUT_S)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=WAL")
        finally:
            src.close()
            dst.close()
    except sqlite3.Error as e:
        raise BackupError(f"cannot restore into {db}: {e}") from e


def _write_atomically(file: Path, text: str) -> None:
    tmp = file.with_name(f".{file.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, file)
