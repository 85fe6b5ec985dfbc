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

Running experiments (:mod:`shopsense.experiments`) are polled with the versions: their arms'
versions are loaded beside the default one (the default's loaded objects are shared when an arm
serves it) and swapped in with the experiments' :class:`~shopsense.experiments.Assigner` as one
:class:`LiveExperiments`, so a request sees the experiments and the versions they need together. An
experiment whose versions cannot load is left out (its requests get the default, unrecorded) rather
than half-served.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shopsense.config import DEFAULT_HOME
from shopsense.experiments import Assigner, Assignment, Experiment
from shopsense.experiments import running as running_experiments
from shopsense.service.periodic import Periodic
from shopsense.store import KnowledgeStore
from shopsense.versions import served_versions

log = logging.getLogger("shopsense.service")

#: the loader's version name before any training completed (served as model_version null)
UNVERSIONED = ""

#: builds what a version serves from (version, folder); the default is :func:`shopsense.service.engines.load`
Loader = Callable[[str, Path | None], Any]


@dataclass(frozen=True)
class LiveExperiments:
    """The running experiments this process serves and what their arms' versions loaded."""

    assigner: Assigner = field(default_factory=Assigner)
    loaded: dict[str, Any] = field(default_factory=dict)  # version -> its loaded objects

    def assign(self, surface: str, user_id: str | None) -> Assignment | None:
        """The request's experiment and arm (None outside any): a dict lookup and one keyed hash."""
        return self.assigner.assign(surface, user_id) if self.assigner else None

    def served(self, version: str) -> Any:
        """What ``version`` (an arm's) loaded."""
        return self.loaded[version]


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
        self._experiments = LiveExperiments()
        self._left_out: set[str] = set()  # experiments not served (a version did not load), logged once
        self._load_lock = threading.Lock()
        self._retired = Retired()
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

    @property
    def experiments(self) -> LiveExperiments:
        """The running experiments and their arms' loaded versions (one attribute read)."""
        return self._experiments

    def every_served(self) -> list[Any]:
        """What every served version loaded, the default first, each once: what a catalog change,
        a deleted shopper or a refresh must reach, not only the default."""
        out = [] if self._current is None else [self._current]
        for served in self._experiments.loaded.values():
            if all(served is not o for o in out):
                out.append(served)
        return out

    # ------------------------------------------------------------------ swapping
    def refresh(self) -> bool:
        """Load and swap in the target version if it changed, then the running experiments' versions;
        returns True on a swap of the default version."""
        with self._load_lock:
            try:
                # the default version first (shopsense.versions.served_versions), then the arms'
                served = served_versions(self.store, self.home)
                experiments = running_experiments(self.store)
            except Exception as e:  # the store is briefly unavailable: keep serving
                log.warning("cannot read model versions: %s", e)
                return False
            swapped = self._swap_default((served[0].version, served[0].folder) if served else None)
            self._swap_experiments(experiments, {v.version: v.folder for v in served})
            self._retired.trim_when_freed()
            return swapped

    def _swap_default(self, tgt: tuple[str, Path | None] | None) -> bool:
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
        self._retired.add(self._current)
        self._current = loaded
        self._version = None if version == UNVERSIONED else version
        _freeze_heap()
        log.info("now serving model version %s", version)
        return True

    def _swap_experiments(self, experiments: list[Experiment], folders: dict[str, Path | None]) -> None:
        """Load the running experiments' versions that are not loaded yet (from ``folders``, the
        served versions' folders) and swap in the new set; unchanged versions keep their loaded objects."""
        old = self._experiments
        if not experiments and not old.loaded and not old.assigner:
            return
        loaded: dict[str, Any] = {}
        live: list[Experiment] = []
        for e in experiments:
            ok = True
            for version in {a.version for a in e.arms}:
                got = self._arm_version(version, folders, old, loaded)
                if got is None:
                    ok = False
                else:
                    loaded[version] = got
            if ok:
                live.append(e)
            elif e.name not in self._left_out:
                self._left_out.add(e.name)
                log.error("experiment %s is not served: a version of its arms did not load", e.name)
        same = [e.name for e in live] == [e.name for e in old.assigner.experiments]
        if same and loaded.keys() == old.loaded.keys() and all(loaded[v] is old.loaded[v] for v in loaded):
            return  # nothing changed: keep the assigner (and its keyed hashes)
        fresh = any(all(got is not o for o in (*old.loaded.values(), self._current)) for got in loaded.values())
        self._experiments = LiveExperiments(Assigner(live), loaded)
        for gone in old.loaded.values():
            if all(gone is not o for o in (*loaded.values(), self._current)):
                self._retired.add(gone)
        if fresh:  # a newly loaded arm version: out of the collector's full passes too
            _freeze_heap()

    def _arm_version(
        self, version: str, folders: dict[str, Path | None], old: LiveExperiments, loaded: dict[str, Any]
    ) -> Any | None:
        if version in loaded:
            return loaded[version]
        if version == self._version and self._current is not None:
            return self._current  # the default: shared, not loaded twice
        if version in old.loaded:
            return old.loaded[version]
        if version in self._failed or version not in folders:
            return None
        try:
            got = self.loader(version, folders[version])
        except Exception as e:
            log.error("model version %s (an experiment's arm) failed to load: %s", version, e)
            self._failed[version] = f"{type(e).__name__}: {e}"
            return None
        log.info("now serving model version %s to an experiment's arm", version)
        return got

    # ------------------------------------------------------------------ background polling
    def start(self) -> None:
        """Poll the store for a new version: at once, then every ``interval_s``."""
        self._poller.start()

    def stop(self) -> None:
        self._poller.stop()


class Retired:
    """Versions swapped out, and the parts that outlive them, until they are freed; then a collection
    and a trim.

    A swapped-out version is not freed at the swap: requests in flight still hold it, and the new
    version serves its similar-products index until its own is built. The collection at the swap then
    freezes what is still held (:func:`_freeze_heap`), and frozen reference cycles are never
    collected: in the soak, a worker stayed at +26% RSS (2,082 -> 2,625 MB) after a hot swap with no
    version object left, and in process the same swap under traffic kept +380-430 MB in three runs of
    four (the fourth had no request in flight at the swap). So each poll checks (weak references)
    whether everything retired is gone, and then collects once more and trims; if something is still
    held after ``collect_after_polls`` polls, that collection runs anyway (a retired version that is
    itself in a cycle is only freed by it).
    """

    def __init__(self, collect_after_polls: int = 15) -> None:
        self._refs: list[weakref.ref[Any]] = []
        self._polls = 0
        self.collect_after_polls = collect_after_polls

    def add(self, served: Any | None) -> None:
        """Track ``served`` (a loaded version) and its similar-products index, which a newer version borrows."""
        for part in (served, getattr(served, "catalog", None)):
            if part is not None:
                with contextlib.suppress(TypeError):  # not weakly referenceable (a stand-in): nothing to wait for
                    self._refs.append(weakref.ref(part))
        self._polls = 0

    @property
    def pending(self) -> int:
        """How many retired objects are still alive."""
        return sum(r() is not None for r in self._refs)

    def trim_when_freed(self) -> bool:
        """Collect and hand the freed memory back once every retired object is gone (or after
        ``collect_after_polls`` polls); True when it did."""
        if not self._refs:
            return False
        self._polls += 1
        if self.pending and self._polls != self.collect_after_polls:
            return False
        _freeze_heap()  # unfreezes, collects, freezes what lives, trims
        if not self.pending:
            self._refs.clear()
        return True


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
    release_freed_memory()


def release_freed_memory() -> bool:
    """Hand the heap pages freed by the previous version back to the OS (glibc's ``malloc_trim``);
    False where there is no glibc. Freed small allocations otherwise stay in the heap: loading the
    50k-product version twice and freeing one left 1,911 MB resident, 1,771 MB after the trim (1,668
    MB with one version). The soak's +26% after a hot swap was frozen cycles instead (:class:`Retired`)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not Linux with glibc (musl, macOS, Windows)
        return False
    return True
