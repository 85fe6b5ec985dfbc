"""Precomputed "for you" rankings: every shopper's discovery candidates, ranked when a version is trained.

A request of a shopper whose latest events are exactly the ones their list was ranked from (the same
fingerprint, :func:`~shopsense.recommend.history.history_key`) reads the list instead of asking every
source to propose and fusing the proposals, the largest part of a ``/recommend``'s CPU. What depends
on the moment is still done per request: the shopper's own return items (scored by the time since each
event), the rules (stock, price, category filters), diversity, explanations and the new-product slot.
Any newer event changes the fingerprint, so that shopper is ranked live: a list is never staler than
the shopper's own behaviour. ``[online] precomputed = false`` turns both the lists and their use off.

Only for a version ranked by the fusion (the default without logged outcomes): a learned ranker that
reads what the shopper was already shown ranks differently after every request, so that version ranks
every request live. A list is used only under the online settings it was made with (history length,
event weights, pool, the default exclusions): a server started with others ranks live.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shopsense.config import Settings
from shopsense.data.idmap import IdMap
from shopsense.engine_config import OnlineConfig
from shopsense.models.base import Histories
from shopsense.ranking.pipeline import Engine
from shopsense.ranking.rules import Filters
from shopsense.recommend.fallbacks import Ranked
from shopsense.recommend.history import HistoryReader, ShopperHistory, query_encoder
from shopsense.store import KnowledgeStore

log = logging.getLogger(__name__)

FOLDER = "lists"  # inside a version's folder
BATCH = 256  # shoppers ranked in one call of the engine
DEFAULT_K = 10  # a request's default list length: lists hold its pool
#: the exclusions lists are ranked under (a request's default): built once, not per request
DEFAULT_EXCLUSIONS: tuple[str, ...] = tuple(Filters().exclude_seen)


def list_pool(config: OnlineConfig) -> int:
    """Candidates a request of the default length ranks (``pool``, at least 5 x k): what a list holds."""
    return max(config.pool, 5 * DEFAULT_K)


def signature(config: OnlineConfig, weights: dict[str, float], exclude_seen: Sequence[str]) -> str:
    """The online settings a list depends on, as text: a list made under others is not used."""
    return json.dumps(
        {
            "history": config.history,
            "pool": list_pool(config),
            "weights": dict(sorted(weights.items())),
            "exclude_seen": sorted(exclude_seen),
        },
        sort_keys=True,
    )


def seen_rows(history: ShopperHistory, exclude_seen: Sequence[str]) -> set[int]:
    """The shopper's items that the exclusions keep out of a list (the request's own rule)."""
    types = set(exclude_seen)
    return {int(i) for i, t in zip(history.rows, history.types, strict=True) if t in types}


class PrecomputedLists:
    """The lists of one version: per shopper the history fingerprint, and items, scores and sources."""

    def __init__(
        self,
        users: IdMap,
        keys: np.ndarray,
        items: np.ndarray,
        scores: np.ndarray,
        sources: np.ndarray,
        source_names: list[str],
        made_under: str,
    ):
        self.users = users
        self.keys = keys  # uint64 per shopper
        self.items = items  # (shoppers, pool) int32, -1 after the last candidate
        self.scores = scores  # (shoppers, pool) float32
        self.sources = sources  # (shoppers, pool) uint8 indices into source_names
        self.source_names = source_names
        self.made_under = made_under  # signature(...) of the settings the lists were ranked under

    @property
    def pool(self) -> int:
        return int(self.items.shape[1])

    def get(self, history: ShopperHistory, pool: int) -> Ranked | None:
        """The shopper's precomputed ranking, or None: not listed, a newer event, another pool."""
        if pool != self.pool:
            return None
        row = int(self.users.to_internal([history.user_id], strict=False)[0])
        if row < 0 or int(self.keys[row]) != history.key:
            return None
        items = np.asarray(self.items[row])
        n = int((items >= 0).sum())
        names = self.source_names
        return Ranked(
            items[:n].astype(np.int64),
            np.asarray(self.scores[row, :n], np.float32),
            [names[s] for s in np.asarray(self.sources[row, :n])],
        )

    def save(self, folder: Path) -> None:
        """Write into ``folder`` (created; inside a version's folder before it is published)."""
        folder.mkdir(parents=True, exist_ok=True)
        self.users.save(folder / "users.json")
        for name in ("keys", "items", "scores", "sources"):
            np.save(folder / f"{name}.npy", getattr(self, name))
        meta = {"source_names": self.source_names, "made_under": self.made_under, "shoppers": len(self.users)}
        (folder / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> PrecomputedLists | None:
        """The lists in ``folder`` (memory-mapped: the workers of one server share the pages), or None
        when there are none or they cannot be read (logged: the requests then rank live, as they would
        without lists; a version is not refused for an optimisation)."""
        if not (folder / "meta.json").exists():
            return None
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("keys", "items", "scores", "sources")}
            lists = cls(
                IdMap.load(folder / "users.json"), **arrays, **{k: meta[k] for k in ("source_names", "made_under")}
            )
            n = len(lists.users)
            shapes = [a.shape for a in (lists.items, lists.scores, lists.sources)]
            if lists.keys.shape != (n,) or any(s != shapes[0] or s[0] != n for s in shapes):
                raise ValueError(f"{n} shoppers but arrays of shapes {lists.keys.shape}, {shapes}")
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("precomputed lists in %s not used (every request ranks live): %s", folder, e)
            return None
        return lists


def precompute(
    engine: Engine,
    reader: HistoryReader,
    user_ids: Sequence[str],
    *,
    now: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> PrecomputedLists | None:
    """Rank the discovery candidates of every shopper in ``user_ids`` with item history, as a request
    of the default length with the default exclusions would (None for a version that ranks with
    exposure, which cannot be ranked in advance)."""
    if engine.wants_exposure:
        return None
    say = progress or (lambda _m: None)
    exclude = DEFAULT_EXCLUSIONS
    pool = list_pool(reader.config)
    now = time.time() if now is None else now
    names = list(engine.models)
    code = {n: i for i, n in enumerate(names)}
    n_users = len(user_ids)
    # one row per shopper, trimmed to the listed ones at the end (no per-shopper arrays: 1M shoppers)
    listed: list[str] = []
    keys = np.zeros(n_users, np.uint64)
    items = np.full((n_users, pool), -1, np.int32)
    scores = np.zeros((n_users, pool), np.float32)
    sources = np.zeros((n_users, pool), np.uint8)
    t0 = time.monotonic()
    for start in range(0, n_users, BATCH):
        batch = [reader.read(u, None, now) for u in user_ids[start : start + BATCH]]
        batch = [h for h in batch if h.has_items]  # the others get a fallback, cheap to serve live
        if batch:
            hs = Histories([h.rows for h in batch], [h.weights for h in batch], None, [h.query_vectors for h in batch])
            seen = [np.array(sorted(seen_rows(h, exclude)), np.int64) for h in batch]
            top, sc, src = engine.rank(hs, pool, seen, None, now)
            for h, row_items, row_scores, row_sources in zip(batch, top, sc, src, strict=True):
                r = len(listed)
                listed.append(h.user_id)
                keys[r] = h.key
                ok = row_items >= 0
                items[r] = row_items
                scores[r, ok] = row_scores[ok]
                sources[r, : len(row_sources)] = [code[s] for s in row_sources]
        done = min(start + BATCH, n_users)
        if done == n_users or time.monotonic() - t0 > 30:
            say(f"precomputed lists: {done:,} of {n_users:,} shoppers")
            t0 = time.monotonic()
    n = len(listed)
    return PrecomputedLists(
        IdMap(listed),
        keys[:n],
        items[:n],
        scores[:n],
        sources[:n],
        names,
        signature(reader.config, reader.weights, exclude),
    )


def build(
    engine: Engine,
    store: KnowledgeStore,
    settings: Settings,
    items: IdMap,
    user_ids: Sequence[str],
    folder: Path,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """A training's step: rank ``user_ids`` for the version being written in ``folder`` (its engine
    and item ids) under ``settings``, write the lists into ``folder / FOLDER``; returns metrics."""
    if not settings.online.precomputed:
        return {"precomputed_lists": "off"}
    if engine.wants_exposure:
        return {"precomputed_lists": "none: the ranker reads what each shopper was shown"}
    t0 = time.perf_counter()
    content = engine.models.get("content")
    vectors = getattr(content, "vectors", None)
    from shopsense.features.text import TextEncoder  # as the recommender: only a version with text loads it

    # loaded on the first shopper with searches, once
    encoder = functools.cache(lambda: TextEncoder(settings.encoder).use_store(store))
    reader = HistoryReader(
        store, items, settings.event_weights.as_dict(), settings.online, query_encoder(encoder, vectors)
    )
    lists = precompute(engine, reader, user_ids, progress=progress)
    assert lists is not None  # exposure was ruled out above
    lists.save(folder / FOLDER)
    return {"precomputed_lists": len(lists.users), "precompute_seconds": round(time.perf_counter() - t0, 2)}
