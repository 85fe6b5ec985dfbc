"""The model version being served, and the atomic swap to a newer one.

:func:`shopsense.versions.served_version` says which version to serve (the active one, set by a
completed training, ``POST /models/{version}/activate`` or ``POST /models/rollback``). A background
thread polls it; when it changes, the new version is loaded completely off the request path and only
then swapped in by replacing one reference, so every request sees either the old version or the new
one, never a half-loaded mix. Before any version is complete, the loader is called once with version
``""`` (catalog-only engines: search and similar work, recommendations answer 503). A version that is
not ``complete`` is never loaded, so a failed or killed training (which never completes its record)
cannot replace what is served; a version whose files fail to load is skipped and the old one keeps
serving.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from shopsense.config import DEFAULT_HOME
from shopsense.service.periodic import Periodic
from shopsense.store import KnowledgeStore
from shopsense.versions import served_version

log = logging.getLogger("shopsense.service")

#: the loader's version name before any training completed (served as model_version null)
UNVERSIONED = ""

#: builds what a version serves from (version, folder); the default is :func:`shopsense.service.engines.load`
Loader = Callable[[str, Path | None], Any]


class ModelState:
    """Holds the served version's loaded objects and swaps them atomically."""

    def __init__(
        self, store: KnowledgeStore, loader: Loader, interval_s: float = 2.0, home: Path | str = DEFAULT_HOME
    ) -> None:
        self.store = store
        self.loader = loader
        self.home = Path(home)  # recorded version paths are relative to it
        self._current: Any | None = None
        self._version: str | None = None
        self._failed: dict[str, str] = {}  # version -> why it could not be loaded
        self._load_lock = threading.Lock()
        self._poller = Periodic(self.refresh, interval_s, "shopsense-model-reload", run_first=True)

    # ------------------------------------------------------------------ reading (request path)
    @property
    def current(self) -> Any | None:
        """What the served version loaded (one attribute read: atomic under the GIL)."""
        return self._current

    @property
    def version(self) -> str | None:
        return self._version

    @property
    def failed(self) -> dict[str, str]:
        return dict(self._failed)

    # ------------------------------------------------------------------ swapping
    def target(self) -> tuple[str, Path | None] | None:
        """The version that should be served (:func:`shopsense.versions.served_version`) and its folder."""
        v = served_version(self.store, self.home)
        return None if v is None else (v.version, v.folder)

    def refresh(self) -> bool:
        """Load and swap in the target version if it changed; returns True on a swap."""
        with self._load_lock:
            try:
                tgt = self.target()
            except Exception as e:  # the store is briefly unavailable: keep serving
                log.warning("cannot read model versions: %s", e)
                return False
            if tgt is None:
                if self._current is not None or UNVERSIONED in self._failed:
                    return False
                # Nothing trained yet: serve what needs no model (search, similar); recommend says 503.
                tgt = (UNVERSIONED, None)
            elif tgt[0] == self._version or tgt[0] in self._failed:
                return False
            version, path = tgt
            try:
                loaded = self.loader(version, path)
            except Exception as e:
                log.error("model version %s failed to load, keeping %s: %s", version, self._version, e)
                self._failed[version] = f"{type(e).__name__}: {e}"
                return False
            # The swap: one reference each; readers take `current` once per request.
            self._current = loaded
            self._version = None if version == UNVERSIONED else version
            _freeze_heap()
            log.info("now serving model version %s", version)
            return True

    # ------------------------------------------------------------------ background polling
    def start(self) -> None:
        """Poll the store for a new version: at once, then every ``interval_s``."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()


def _freeze_heap() -> None:
    """Keep the loaded engines out of the garbage collector's full passes.

    A served version holds about half a million tracked Python objects (id maps, titles, search
    tokens), and a full collection walked all of them: 0.2 s on an idle core for the 50k-product
    service set, and it stops every request of the process while it runs (the rare slow requests in
    the service benchmark). Frozen objects are skipped; reference counting still frees them. The
    previous version's frozen objects are unfrozen and collected first, so swaps leak no cycles."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
