"""Online experiments' records, and the impressions' experiment and arm columns. A mixin of the
knowledge store (role :class:`~shopsense.store.roles.ExperimentRecords`); what an experiment is and
how users are assigned is :mod:`shopsense.experiments`'s."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from sqlalchemy import inspect, select
from sqlalchemy.exc import SQLAlchemyError

from shopsense import columns as C
from shopsense.exceptions import ExperimentError, StoreError
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded

RUNNING = "running"
STOPPED = "stopped"
#: impression columns added after the table was first made, with their SQL types
_NEW_IMPRESSION_COLUMNS = {C.EXPERIMENT: "TEXT", C.ARM: "TEXT", C.RANKED_POSITION: "INTEGER"}


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class ExperimentRows(StoreBase):
    """Mixin of the knowledge store: experiments."""

    def _migrate(self) -> None:
        """A store made before experiments gets the ``experiments`` table and the impressions'
        ``experiment``, ``arm`` and ``ranked_position`` columns (idempotent; another process may be doing the same)."""
        super()._migrate()
        try:
            tables = set(inspect(self.engine).get_table_names())
            if "impressions" not in tables:  # not initialised (opened with create=False): nothing to upgrade
                return
            if "experiments" not in tables:
                with self.engine.begin() as c:
                    T.experiments.create(c, checkfirst=True)
            for col, sql_type in _NEW_IMPRESSION_COLUMNS.items():
                if col not in self._impression_columns():
                    self._add_impression_column(col, sql_type)
        except SQLAlchemyError as e:
            raise StoreError(f"cannot upgrade the store's schema: {e}") from e

    def _impression_columns(self) -> set[str]:
        return {c["name"] for c in inspect(self.engine).get_columns("impressions")}

    def _add_impression_column(self, col: str, sql_type: str) -> None:
        try:
            with self.engine.begin() as c:
                c.exec_driver_sql(f"ALTER TABLE impressions ADD COLUMN {col} {sql_type}")
        except SQLAlchemyError:  # another process added it meanwhile
            if col not in self._impression_columns():
                raise

    # ------------------------------------------------------------------ records
    def add_experiment(self, record: dict[str, Any]) -> None:
        """Record a new experiment (``record``: the table's columns, ``arms`` as a list of dicts).
        ExperimentError when one of that name exists (running or stopped: names are never reused,
        so a report always reads one experiment's impressions)."""
        ex = T.experiments
        row = {**record, "arms": json.dumps(record["arms"])}
        with self.engine.begin() as c:
            if c.execute(select(ex.c.name).where(ex.c.name == record["name"])).first() is not None:
                raise ExperimentError(f"an experiment named {record['name']!r} exists already: choose another name")
            c.execute(ex.insert().values(**row))

    def experiment_records(self, status: str | None = None) -> list[dict[str, Any]]:
        """Every experiment's record (``arms`` decoded), oldest first; only those in ``status`` when given."""
        ex = T.experiments
        q = select(ex).order_by(ex.c.started_at, ex.c.name)
        if status is not None:
            q = q.where(ex.c.status == status)
        with self.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(q)]
        for r in rows:
            r["arms"] = json.loads(r["arms"])
        return rows

    def stop_experiment(self, name: str, at: float) -> bool:
        """Mark a running experiment stopped at ``at``; False when it was not running."""
        ex = T.experiments
        with self.engine.begin() as c:
            done = c.execute(
                ex.update().where(ex.c.name == name, ex.c.status == RUNNING).values(status=STOPPED, stopped_at=at)
            )
            return bool(done.rowcount)

    def experiment_impressions(self, name: str) -> pd.DataFrame:
        """The impressions logged in experiment ``name``, in the order they were logged."""
        i = T.impressions
        cols = C.IMPRESSION_COLUMNS
        q = select(*[i.c[c] for c in cols]).where(i.c[C.EXPERIMENT] == name).order_by(i.c.seq)
        with self.engine.connect() as c:
            return pd.DataFrame(c.execute(q).fetchall(), columns=list(cols))
