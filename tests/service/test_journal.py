"""Acknowledged search events survive a killed server process (the event journal)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from shopsense import columns as C
from shopsense.search.personal import search_event
from shopsense.service.impressions import ImpressionLog
from shopsense.service.journal import EventJournal, recover
from shopsense.store import KnowledgeStore, open_store


def _searches(store: KnowledgeStore) -> set[str]:
    ev = store.events()
    return set(ev.loc[ev[C.EVENT_TYPE] == C.SEARCH, C.QUERY])


def test_events_of_a_killed_process_reach_the_store_at_the_next_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    open_store(url).close()
    journal = tmp_path / "spool"
    child = textwrap.dedent(
        f"""
        import sys, time
        from shopsense.search.personal import search_event
        from shopsense.service.impressions import ImpressionLog
        from shopsense.store import open_store
        log = ImpressionLog(open_store({url!r}), interval_s=3600, journal={str(journal)!r})
        log.start()
        for i in range(5):
            log.record_event(search_event(f"query {{i}}", f"r{{i}}", "u1"))
        print("acknowledged", flush=True)
        time.sleep(60)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=os.environ.copy())
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "acknowledged"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    store = open_store(url)
    assert _searches(store) == set()  # nothing was flushed before the kill
    log = ImpressionLog(store, journal=journal)
    log.start()  # recovers the dead process's journal
    try:
        assert _searches(store) == {f"query {i}" for i in range(5)}
        assert [p.name for p in journal.iterdir()] == [log._journal.folder.name]  # type: ignore[union-attr]
    finally:
        log.stop()
    assert list(journal.iterdir()) == []  # a clean stop leaves nothing behind


def test_flushed_files_go_and_a_live_process_is_left_alone(tmp_path: Path, sqlite_store: KnowledgeStore) -> None:
    log = ImpressionLog(sqlite_store, interval_s=3600, journal=tmp_path / "spool")
    log.start()
    try:
        log.record_event(search_event("red kettle", "r1", "u1"))
        folder = log._journal.folder  # type: ignore[union-attr]
        assert sum(1 for _ in folder.glob("events-*.jsonl")) == 1
        # another process starting meanwhile does not take a live process's events
        assert recover(tmp_path / "spool", lambda rows: (_ for _ in ()).throw(AssertionError(rows))) == 0
        log.flush()
        assert _searches(sqlite_store) == {"red kettle"}
        assert [p.name for p in folder.glob("events-*.jsonl")] == ["events-00000001.jsonl"]  # the next, empty
    finally:
        log.stop()


def test_a_journal_whose_write_failed_is_kept_for_the_next_try(tmp_path: Path) -> None:
    journal = EventJournal(tmp_path)
    journal.append(search_event("blue mug", "r2", "u2"))
    journal.close(flushed=False)

    def failing(rows: list) -> None:
        raise OSError("database is locked")

    assert recover(tmp_path, failing) == 0 and len(list(tmp_path.iterdir())) == 1
    got: list = []
    assert recover(tmp_path, got.extend) == 1 and got[0][C.QUERY] == "blue mug"
    assert list(tmp_path.iterdir()) == []
