"""A daemon thread that calls one function every few seconds until stopped (impression flushes,
model-version polling)."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Periodic:
    """Calls ``fn`` every ``interval_s`` seconds in a daemon thread (first at once if ``run_first``)."""

    def __init__(self, fn: Callable[[], object], interval_s: float, name: str, *, run_first: bool = False) -> None:
        self.fn = fn
        self.interval_s = interval_s
        self.name = name
        self.run_first = run_first
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self) -> None:
        if self.run_first:
            self.fn()
        while not self._stop.wait(self.interval_s):
            self.fn()
