"""What was shown: one row per listed item and position, the outcome side of feedback and
evaluation. A mixin of the knowledge store (role :class:`~shopsense.store.roles.ImpressionLog`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from sqlalchemy import Connection, bindparam, exists, select
from sqlalchemy.sql.elements import ClauseElement

from shopsense import columns as C
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded
from shopsense.store.rows import to_db_rows

_COLS = tuple(C.IMPRESSION_COLUMNS)
_N_BASE = len(_COLS) - 3  # rows without experiment, arm and ranked position


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class ImpressionRows(StoreBase):
    """Mixin of the knowledge store: impressions."""

    def log_impressions(self, df: pd.DataFrame, conn: Connection | None = None) -> int:
        """Record what was shown (one row per item and position)."""
        if df.empty:
            return 0
        out = pd.DataFrame({c: df[c] if c in df.columns else None for c in _COLS})
        return self.log_impression_rows(to_db_rows(out), conn)

    def log_impression_rows(self, rows: Sequence[tuple], conn: Connection | None = None) -> int:
        """:meth:`log_impressions` for rows already in ``IMPRESSION_COLUMNS`` order holding plain
        Python values (the service's background writer: no DataFrame round trip per flush). The
        last values (experiment, arm, ranked position) may be left off: None."""
        if any(not _N_BASE <= len(r) <= len(_COLS) for r in rows):
            raise ValueError(f"impression rows need {len(_COLS)} values: {', '.join(_COLS)}")
        n = len(_COLS)
        full = [r if len(r) == n else (*r, *[None] * (n - len(r))) for r in rows]
        with self._conn(conn) as c:
            return self.statements.insert_many(c, "log_impressions", self._log_impressions, _COLS, full)

    def _log_impressions(self) -> ClauseElement:
        return self.statements.insert("impressions", _COLS)

    def impressions(self, request_id: str | None = None, latest: int | None = None) -> pd.DataFrame:
        """Impressions in the order they were logged (one request's when ``request_id`` is given;
        only the ``latest`` rows logged when given)."""
        seq = T.impressions.c.seq
        q = select(*[T.impressions.c[c] for c in _COLS])
        if request_id is not None:
            q = q.where(T.impressions.c[C.REQUEST_ID] == request_id)
        q = q.order_by(seq) if latest is None else q.order_by(seq.desc()).limit(latest)
        with self.engine.connect() as conn:
            rows = conn.execute(q).fetchall()
        return pd.DataFrame(rows if latest is None else rows[::-1], columns=list(_COLS))

    def recent_impressions(self, user_id: str, since: float, limit: int) -> dict[str, list[Any]]:
        """The user's latest ``limit`` impressions shown at or after ``since`` (item, position, time;
        newest first, plain lists per column): what the outcome ranker's exposure features read per
        request (:mod:`shopsense.ranking.exposure`). Empty for a shopper who opted out."""
        with self.engine.connect() as conn:
            rows = self.statements.fetch(
                conn, ("recent_impressions",), _recent_statement, {"user": user_id, "since": since, "n": limit}
            )
        data = list(zip(*rows, strict=True)) if rows else [()] * len(_RECENT)
        return {c: list(v) for c, v in zip(_RECENT, data, strict=True)}


_RECENT = (C.ITEM, C.POSITION, C.TIMESTAMP)


def _recent_statement() -> ClauseElement:
    t, u = T.impressions, T.users
    opted_out = select(u.c[C.USER]).where(u.c[C.USER] == bindparam("user"), u.c[C.OPTED_OUT] == 1)
    return (
        select(*[t.c[c] for c in _RECENT])
        .where(t.c[C.USER] == bindparam("user"), t.c[C.TIMESTAMP] >= bindparam("since"), ~exists(opted_out))
        .order_by(t.c.seq.desc())
        .limit(bindparam("n"))
    )
