"""What was shown: impressions are queued on the request path and written to the store in batches.

Writing each response's rows synchronously would put a database write on every recommend/search
call; a background flush every ``interval_s`` keeps the hot path in memory while the log stays
complete (:meth:`ImpressionLog.flush` drains it, e.g. on shutdown or in tests). The events a
response itself makes (the ``search`` event of ``GET /search``) take the same queue and are written
first, so a user's search reaches the store, and their recommendations, within one flush; with a
journal (:mod:`shopsense.service.journal`) they are also on disk before the response goes, so a
killed process loses none of them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from shopsense.ranking.ranked import RankedItem
from shopsense.service.journal import EventJournal, recover
from shopsense.service.periodic import Periodic
from shopsense.store import KnowledgeStore

log = logging.getLogger("shopsense.service")


class ImpressionLog:
    """Buffers impression rows and writes them to ``store.log_impressions`` in batches."""

    def __init__(
        self,
        store: KnowledgeStore,
        interval_s: float = 0.2,
        max_buffer: int = 200_000,
        journal: str | Path | None = None,
    ) -> None:
        """``journal``: the folder of the acknowledged events' journal (None: memory only)."""
        self.store = store
        self.journal_root = Path(journal) if journal is not None else None
        self._journal: EventJournal | None = None
        self.max_buffer = max_buffer
        self._rows: list[tuple] = []
        self._events: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._flusher = Periodic(self.flush, interval_s, "shopsense-impressions")
        self._events_written = True
        self.dropped = 0

    def record(
        self,
        request_id: str,
        user_id: str | None,
        items: Sequence[RankedItem],
        surface: str,
        model_version: str | None | Sequence[str | None],
        query: str | None = None,
        experiment: str | None = None,
        arm: str | None | Sequence[str | None] = None,
        ranked_positions: Sequence[int] | None = None,
    ) -> None:
        """Queue one response's list (position = list order). ``model_version`` and ``arm`` are one
        value for the whole list or, for an interleaved list, one per item (the team that drafted it);
        ``ranked_positions`` only for a list in the position-bias slice (each item's ranked position)."""
        now = time.time()
        n = len(items)
        versions = [model_version] * n if model_version is None or isinstance(model_version, str) else model_version
        arms = [arm] * n if arm is None or isinstance(arm, str) else arm
        rows = [
            (
                request_id,
                user_id,
                it.item_id,
                pos,
                it.score,
                it.source,
                surface,
                versions[pos],
                query,
                now,
                experiment,
                arms[pos],
                None if ranked_positions is None else ranked_positions[pos],
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
            if self._journal is not None:
                self._journal.append(event)
            self._events.append(event)

    def _flush_events(self) -> bool:
        with self._lock:
            rows, self._events = self._events, []
            if rows and self._journal is not None:
                self._journal.rotate()
        if not rows:
            return True
        try:
            self.store.add_events(pd.DataFrame(rows))
        except Exception as e:
            log.error("could not write %d events: %s", len(rows), e)
            with self._lock:  # retry next time (event ids make a repeat harmless)
                self._events[:0] = rows
            return False
        if self._journal is not None:
            self._journal.written()
        return True

    def flush(self) -> int:
        """Write everything queued (events, then impressions); returns impression rows written."""
        with self._flush_lock:
            self._events_written = self._flush_events()
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
        """Recover the journals of processes that died before writing their events, open this
        process's journal, start the background flush."""
        if self.journal_root is not None and self._journal is None:
            try:
                recover(self.journal_root, lambda rows: self.store.add_events(pd.DataFrame(rows)))
                self._journal = EventJournal(self.journal_root)
            except OSError as e:  # serving matters more: the events then live in memory until flushed
                log.error(
                    "no event journal in %s (%s): a killed server loses up to 0.2 s of search events",
                    self.journal_root,
                    e,
                )
        self._flusher.start()

    def stop(self) -> None:
        self._flusher.stop()
        self.flush()
        with self._lock:
            journal, self._journal = self._journal, None
        if journal is not None:  # a failed last write leaves the journal for the next start
            journal.close(flushed=self._events_written and not self._events)
