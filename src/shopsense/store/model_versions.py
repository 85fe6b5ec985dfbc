"""Model versions' records: status (training, complete, failed), folder, metrics, and which one is
active. A mixin of the knowledge store (role :class:`~shopsense.store.roles.VersionRecords`); what a
version is and how one is published is :mod:`shopsense.versions`'s."""

from __future__ import annotations

import json
import time

import pandas as pd
from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from shopsense.exceptions import StoreError
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded

_COLS = ("version", "created_at", "status", "path", "metrics", "active")


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class VersionRows(StoreBase):
    """Mixin of the knowledge store: model versions."""

    def _migrate(self) -> None:
        """Bring a store made by an earlier release up to date (idempotent): the other roles'
        changes, then ``model_versions.activated_at`` (what rollback reads)."""
        super()._migrate()
        try:
            if "model_versions" in inspect(self.engine).get_table_names():
                cols = {c["name"] for c in inspect(self.engine).get_columns("model_versions")}
                if "activated_at" not in cols:
                    with self.engine.begin() as c:
                        c.exec_driver_sql("ALTER TABLE model_versions ADD COLUMN activated_at FLOAT")
                        # the active one was activated at some point after it was made: a rollback
                        # from a later version returns to it
                        c.exec_driver_sql("UPDATE model_versions SET activated_at = created_at WHERE active = 1")
        except SQLAlchemyError as e:  # another process may have added it meanwhile
            cols = {c["name"] for c in inspect(self.engine).get_columns("model_versions")}
            if "activated_at" not in cols:
                raise StoreError(f"cannot upgrade the store's schema: {e}") from e

    def register_version(
        self, version: str, *, status: str, path: str | None = None, metrics: dict | None = None
    ) -> None:
        """Create or update a model version's record."""
        ins = self.statements.insert("model_versions", _COLS)
        stmt = ins.on_conflict_do_update(
            index_elements=["version"],
            set_={c: ins.excluded[c] for c in ("status", "path", "metrics")},
        )
        row = {
            "version": version,
            "created_at": time.time(),
            "status": status,
            "path": path,
            "metrics": json.dumps(metrics or {}),
            "active": 0,
        }
        with self.engine.begin() as c:
            c.execute(stmt, row)

    def activate_version(self, version: str) -> None:
        """Mark one complete version as the one to serve (atomically unmarks the rest)."""
        mv = T.model_versions
        with self.engine.begin() as c:
            row = c.execute(select(mv.c.status).where(mv.c.version == version)).first()
            if row is None:
                raise StoreError(f"unknown model version {version!r}")
            if row[0] != "complete":
                raise StoreError(f"model version {version!r} is {row[0]}, not complete")
            c.execute(mv.update().values(active=0))
            c.execute(mv.update().where(mv.c.version == version).values(active=1, activated_at=time.time()))

    def versions(self) -> pd.DataFrame:
        """Every version's record, oldest first (``metrics`` decoded, ``active`` as a bool)."""
        mv = T.model_versions
        with self.engine.connect() as c:
            rows = c.execute(select(mv).order_by(mv.c.created_at)).fetchall()
        df = pd.DataFrame(rows, columns=[col.name for col in mv.columns])
        df["metrics"] = [json.loads(m) if isinstance(m, str) and m else {} for m in df["metrics"]]
        df["active"] = df["active"].astype(bool)
        return df

    def active_version(self) -> str | None:
        """The version marked active, or None before the first activation."""
        mv = T.model_versions
        with self.engine.connect() as c:
            row = c.execute(select(mv.c.version).where(mv.c.active == 1)).first()
        return None if row is None else str(row[0])
