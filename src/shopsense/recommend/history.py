"""Stage 1 of a recommendation: what the shopper did, read from the store in the model's terms.

:class:`HistoryReader` reads a shopper's latest events once per request (and, at training, once per
shopper for the precomputed lists: :mod:`shopsense.recommend.precomputed`), so both see the same
rows, weights and queries. The query vectors are encoded on first use only: a list served from the
precomputed ones needs them for the new-product slot at most.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shopsense import columns as C
from shopsense.data.history import History, history_of
from shopsense.data.idmap import IdMap
from shopsense.engine_config import OnlineConfig
from shopsense.models.content import in_item_space
from shopsense.ranking.return_features import ShopperEvents
from shopsense.store import KnowledgeStore

MAX_QUERIES = 5  # the shopper's latest searches encoded per request (each new one costs an encoder call)


@dataclass
class ShopperHistory:
    """What the shopper did, in the model's terms."""

    rows: np.ndarray  # model item indices, oldest first
    types: list[str]
    weights: np.ndarray
    queries: list[str]  # latest searches (and the request's query last)
    events: ShopperEvents  # every item event and cart removal read, with its time (the return items')
    now: float
    user_id: str  # whose: the ranked stage reads what they were shown lately, when its ranker asks
    key: int  # fingerprint of the events the ranking reads: equal keys, equal discovery ranking
    encode: Any = field(default=None, repr=False)  # list[str] -> vectors in item space, or None
    _vectors: np.ndarray | None = field(default=None, init=False, repr=False)
    _encoded: bool = field(default=False, init=False, repr=False)

    @property
    def has_items(self) -> bool:
        return bool(len(self.rows))

    @property
    def query_vectors(self) -> np.ndarray | None:
        """The queries' vectors in item space (encoded on first use; None without queries or vectors)."""
        if not self._encoded:
            self._vectors = self.encode(self.queries) if self.encode is not None and self.queries else None
            self._encoded = True
        return self._vectors


def history_key(items: list[Any], types: list[Any], queries: list[Any]) -> int:
    """A 64-bit fingerprint of the events a discovery ranking reads (item, type and query, in order)."""
    h = hashlib.blake2b(digest_size=8)
    for column in (items, types, queries):
        h.update("\x1f".join("" if v is None else str(v) for v in column).encode("utf-8", "surrogatepass"))
        h.update(b"\x1e")
    return int.from_bytes(h.digest(), "little")


class HistoryReader:
    """Reads shoppers' histories for one model version's item ids and one online configuration."""

    def __init__(
        self,
        store: KnowledgeStore,
        items: IdMap,
        weights: Mapping[str, float],
        config: OnlineConfig,
        encode: Any = None,
    ):
        self.store = store
        self.items = items
        self.weights = dict(weights)
        self.config = config
        self.encode = encode  # list[str] -> query vectors in item space (None: no content vectors)

    def read(self, user_id: str, query: str | None, now: float) -> ShopperHistory:
        """The shopper's latest events as model item rows, event weights and search queries (the
        latest ``history`` events), and every event read with its time (``return_history``)."""
        cfg = self.config
        events = self.store.recent_event_columns(
            user_id, max(cfg.history, cfg.return_history), (C.ITEM, C.EVENT_TYPE, C.QUERY, C.TIMESTAMP)
        )
        latest = {c: v[-cfg.history :] for c, v in events.items()}
        h: History = history_of(latest, self.weights)
        rows = self.items.to_internal(h.items, strict=False) if len(h.items) else np.zeros(0, np.int64)
        known = rows >= 0
        queries = [*h.queries, query] if query else list(h.queries)
        all_items = events[C.ITEM]
        idx = (
            self.items.to_internal([i if i is not None else "" for i in all_items], strict=False)
            if all_items
            else np.zeros(0, np.int64)
        )
        return ShopperHistory(
            rows[known],
            [str(t) for t in h.types[known]],
            h.weights[known],
            queries[-MAX_QUERIES:],
            ShopperEvents.of(idx, events[C.EVENT_TYPE], events[C.TIMESTAMP]),
            now,
            user_id,
            history_key(latest[C.ITEM], latest[C.EVENT_TYPE], latest[C.QUERY]),
            self.encode,
        )


def query_encoder(encoder: Any, vectors: np.ndarray | None) -> Any:
    """``encoder``'s queries as vectors in the item space of ``vectors`` (which may carry product
    pictures after their text part), or None when the version has no item vectors."""
    if vectors is None:
        return None
    width = vectors.shape[1]
    return lambda queries: in_item_space(encoder().encode_queries(queries), width)
