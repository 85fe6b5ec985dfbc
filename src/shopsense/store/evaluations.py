"""The shop's own offline evaluations, kept in the knowledge base so every server's dashboard shows
the latest (a mixin of the knowledge store, role :class:`~shopsense.store.roles.EvaluationRecords`).
What is evaluated and how is :mod:`shopsense.evaluation`'s."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import insert, select

from shopsense import columns as C
from shopsense.store import tables as T
from shopsense.store.base import StoreBase
from shopsense.store.errors import guarded


@guarded  # driver errors leave these methods as StoreError / StoreBusyError (store/errors.py)
class EvaluationRows(StoreBase):
    """Mixin of the knowledge store: evaluation results."""

    def add_evaluation(self, kind: str, result: dict[str, Any], created_at: float | None = None) -> int:
        """Keep one evaluation's result (JSON-ready); returns its id."""
        e = T.evaluations
        with self.engine.begin() as c:
            row = c.execute(
                insert(e)
                .values(kind=kind, **{C.CREATED_AT: created_at or time.time()}, result=json.dumps(result))
                .returning(e.c.evaluation_id)
            ).one()
        return int(row[0])

    def latest_evaluation(self, kind: str | None = None) -> dict[str, Any] | None:
        """The newest evaluation (of ``kind``) as ``{"evaluation_id", "kind", "created_at", "result"}``."""
        e = T.evaluations
        q = select(e.c.evaluation_id, e.c.kind, e.c[C.CREATED_AT], e.c.result)
        if kind is not None:
            q = q.where(e.c.kind == kind)
        with self.engine.connect() as c:
            row = c.execute(q.order_by(e.c[C.CREATED_AT].desc(), e.c.evaluation_id.desc()).limit(1)).first()
        if row is None:
            return None
        return {"evaluation_id": int(row[0]), "kind": row[1], "created_at": float(row[2]), "result": json.loads(row[3])}
