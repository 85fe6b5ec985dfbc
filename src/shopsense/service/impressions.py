"""What was shown: impressions are queued on the request path and written to the store in batches.

Writing each response's rows synchronously would put a database write on every recommend/search
call; a background flush every ``interval_s`` keeps the hot path in memory while the log stays
complete (:meth:`ImpressionLog.flush` drains it, e.g. on shutdown or in tests). The events a
response itself makes (the ``search`` event of ``GET /search``) take the same queue and are written
first, so a user's search reaches the store, and their recommendations, within one flush.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import pandas as pd

from shopsense.ranking.ranked import RankedItem
from shopsense.service.periodic import Periodic
from shopsense.store import KnowledgeStore

log = logging.getLogger("shopsense.service")


class ImpressionLog:
    """Buffers impression rows and writes them to ``store.log_impressions`` in batches."""

    def __init__(self, store: KnowledgeStore, interval_s: float = 0.2, max_buffer: int = 200_000) -> None:
        self.store = store
        self.max_buffer = max_buffer
        self._rows: list[tuple] = []
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flusher = Periodic(self.flush, interval_s, "shopsense-impressions")
        self.dropped = 0

    def record(
        self,
        request_id: str,
        user_id: str | None,
        items: Sequence[RankedItem],
        surface: str,
        model_version: str | None,
        query: str | None = None,
    ) -> None:
        """Queue one response's list (position = list order)."""
        now = time.time()
        rows = [
            (
                request_id,
                user_id,
                it.item_id,
                pos,
                it.score,
                it.source,
                surface,
                model_version,
                query,
                now,
            )
            for pos, it in enumerate(items)
        ]
        with self._lock:
            if len(self._rows) + len(rows) > self.max_buffer:  # the store is stuck: shed load, keep serving
                self.dropped += len(rows)
                return
            self._rows.extend(rows)

    def record_event(self, event: dict[str, Any]) -> None:
        """Queue an event a response made (e.g. the search event: one row of event columns), written
        before the impressions."""
        with self._lock:
            if len(self._rows) + len(self._events) + 1 > self.max_buffer:
                self.dropped += 1
                return
            self._events.append(event)

    def _flush_events(self) -> None:
        with self._lock:
            rows, self._events = self._events, []
        if not rows:
            return
        try:
            self.store.add_events(pd.DataFrame(rows))
        except Exception as e:
            log.error("could not write %d events: %s", len(rows), e)
            with self._lock:  # retry next time (event ids make a repeat harmless)
                self._events[:0] = rows

    def flush(self) -> int:
        """Write everything queued (events, then impressions); returns impression rows written."""
        with self._flush_lock:
            self._flush_events()
            with self._lock:
                rows, self._rows = self._rows, []
            if not rows:
                return 0
            try:
                return self.store.log_impression_rows(rows)
            except Exception as e:
                log.error("could not write %d impressions: %s", len(rows), e)
                with self._lock:  # retry next time
                    self._rows[:0] = rows
                return 0

    def start(self) -> None:
        self._flusher.start()

    def stop(self) -> None:
        self._flusher.stop()
        self.flush()
