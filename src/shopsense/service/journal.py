"""The events a response made (the ``search`` event of ``GET /search``), kept in a local file until
the store has them, so a worker killed between a response and the next flush loses none.

The impression log queues these events in memory and writes them to the store every 0.2 s; before
this journal a ``kill -9`` lost what was queued (2 of 47 searches in issue 13's soak). Now each
event is also appended to a file of this process (one ``write`` of one JSON line, microseconds;
the operating system keeps it through the process's death) before the response is sent. A flush
closes the current file and opens the next; once the store has a file's events the file goes.
Each process keeps its files in a folder of its own, locked (``flock``) while it lives: the next
server process to start writes a dead process's files to the store (the events' ids make a second
write of an event a no-op) and removes them.

Not covered: the machine losing power before the operating system wrote the file out (no fsync
per search: that would cost milliseconds).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("shopsense.service")

try:  # pragma: no cover - fcntl is POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows: no liveness lock, recovery at stop only
    fcntl = None  # type: ignore[assignment]


class EventJournal:
    """Append-only files of this process's acknowledged events, under ``root / <pid>-<random>``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.folder = self.root / f"{os.getpid()}-{secrets.token_hex(4)}"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(self.folder / "lock", os.O_CREAT | os.O_RDWR, 0o600)
        if fcntl is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._seq = 0
        self._fd = self._open(0)
        self._closed: list[Path] = []  # files whose events are not known to be in the store yet

    def _path(self, seq: int) -> Path:
        return self.folder / f"events-{seq:08d}.jsonl"

    def _open(self, seq: int) -> int:
        return os.open(self._path(seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, event: dict[str, Any]) -> None:
        """Write one event (called with the impression log's lock held, so lines never interleave)."""
        os.write(self._fd, (json.dumps(event, default=str) + "\n").encode())

    def rotate(self) -> None:
        """Close the current file and open the next (with the queue's lock held, at the moment the
        queued events are taken: the closed files hold exactly the events taken so far)."""
        os.close(self._fd)
        self._closed.append(self._path(self._seq))
        self._seq += 1
        self._fd = self._open(self._seq)

    def written(self) -> None:
        """The store has every event of the closed files: remove them."""
        for p in self._closed:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self._closed = []

    def close(self, *, flushed: bool) -> None:
        """Stop journaling; with ``flushed`` (the store has everything) the folder goes, otherwise it
        stays for the next server start to recover."""
        os.close(self._fd)
        os.close(self._lock_fd)  # releases the lock
        if flushed:
            shutil.rmtree(self.folder, ignore_errors=True)


def recover(root: str | Path, write: Callable[[list[dict[str, Any]]], object]) -> int:
    """Write the events of dead processes' journals under ``root`` with ``write`` and remove them;
    returns how many events were written. A folder whose lock is held belongs to a live process and
    is left alone; one whose write fails stays for the next try."""
    root = Path(root)
    if not root.is_dir():
        return 0
    total = 0
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        lock = folder / "lock"
        try:
            fd = os.open(lock, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its process is alive
            events = _read(folder)
            if events:
                try:
                    write(events)
                except Exception as e:
                    log.error("could not recover %d events from %s: %s", len(events), folder, e)
                    continue
            total += len(events)
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
    if total:
        log.warning("recovered %d events acknowledged by a server process that stopped before writing them", total)
    return total


def _read(folder: Path) -> list[dict[str, Any]]:
    events = []
    for p in sorted(folder.glob("events-*.jsonl")):
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                log.warning("skipping a torn line in %s", p)  # the machine stopped mid-write
    return events
