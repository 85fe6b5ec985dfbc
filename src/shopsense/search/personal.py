"""Personalisation and the search side of the shared knowledge: profiles from the store, event logging.

A user's *content profile* is the one the recommendations use
(:func:`~shopsense.models.content.content_profile`): the recency-weighted mean of the vectors of the
products they touched (weighted by event type: a purchase says more than a view) and of the queries
they searched, from their history in the knowledge store (:mod:`shopsense.data.history`), so what
the recommendation engine learns from and what search personalises on are the same events. Their *collaborative links* are the crowd's item -> item links
(the served recommendation version's co-visitation or item-kNN, :mod:`shopsense.search.collaborative`)
from the same recent items. :func:`personalise` adds both to the relevance score. Every search writes a ``search`` event (query and
``request_id``) and its impressions; clicks quote the ``request_id``, which is what
:func:`~shopsense.search.reranker.clicks_to_judgements` trains the re-ranker on.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from shopsense import columns as C
from shopsense.config import EventWeights
from shopsense.data.history import EventColumns, history_of
from shopsense.models.content import ContentConfig, content_profile
from shopsense.search.collaborative import ItemAffinity, Links
from shopsense.store import KnowledgeStore

ANONYMOUS = C.ANONYMOUS_USER  # the store needs a user id on every event
RECENCY_DECAY = 0.9  # collaborative links: each older event counts 10% less
MAX_QUERIES = 3  # past queries encoded per profile (each costs an encoder call)


def new_request_id() -> str:
    return uuid.uuid4().hex


def _recent(store: KnowledgeStore, user_id: str, limit: int) -> EventColumns:
    """The user's latest events as plain columns (a DataFrame per request cost milliseconds)."""
    return store.recent_event_columns(user_id, limit, columns=(C.ITEM, C.EVENT_TYPE, C.QUERY))


@dataclass
class UserSignals:
    """What one search personalises on: the content profile and the collaborative links (either may be missing)."""

    profile: np.ndarray | None = None
    links: Links | None = None  # one sparse row over the model's items, see ItemAffinity.user_links
    items: np.ndarray | None = None  # the item ids of the recent events, oldest first (the joint ranker's history)

    @property
    def empty(self) -> bool:
        return self.profile is None and (self.links is None or self.links.nnz == 0)


def user_signals(
    store: KnowledgeStore,
    user_id: str,
    *,
    row_of: Mapping[str, int],
    vectors: np.ndarray | None,
    encode_queries: Callable[[list[str]], np.ndarray] | None,
    affinity: ItemAffinity | None,
    limit: int = 50,
    weights: EventWeights | None = None,
    profile: ContentConfig | None = None,
) -> UserSignals:
    """Read the user's recent events once and derive both personalisation signals from them: the
    content profile (the recommendations' own formula, :func:`~shopsense.models.content.content_profile`)
    and the crowd's links from the same items."""
    history = history_of(_recent(store, user_id, limit), (weights or EventWeights()).as_dict())
    if history.empty:
        return UserSignals()
    out = UserSignals(items=history.items)
    if vectors is not None:
        rows = np.array([row_of.get(i, -1) for i in history.items], dtype=np.int64)
        known = history.only(rows >= 0)
        queries = history.queries[-MAX_QUERIES:] if encode_queries is not None else []
        qv = encode_queries(queries) if queries and encode_queries is not None else None
        p = content_profile(vectors, rows[rows >= 0], known.weights, qv, profile or ContentConfig())
        out.profile = p if p.any() else None
    if affinity is not None and len(history.items):
        links = affinity.user_links([str(i) for i in history.items], history.weights * history.recency(RECENCY_DECAY))
        out.links = links if links.nnz else None
    return out


def personalise(
    scores: np.ndarray,
    content: np.ndarray,
    collaborative: np.ndarray | None,
    config: Any,
    has_profile: bool,
) -> np.ndarray:
    """Relevance min-max scaled to [0, 1] plus the affinities weighted by ``config.personal_weight``
    and ``config.collaborative_weight``: ``content`` (cosine of the candidate to the profile) and
    ``collaborative`` (crowd links to the user's items, in [0, 1])."""
    if not len(scores):
        return scores
    lo, hi = float(scores.min()), float(scores.max())
    s = (scores - lo) / (hi - lo) if hi > lo else np.zeros_like(scores)
    if has_profile:
        s = s + config.personal_weight * content
    if collaborative is not None:
        s = s + config.collaborative_weight * collaborative
    return s.astype(np.float32)


def search_event(query: str, request_id: str, user_id: str | None, timestamp: float | None = None) -> dict[str, Any]:
    """The ``search`` event of a query as one event row (``event_id`` from the ``request_id``, so
    writing it twice stores it once). A plain dict: the service queues one per search, and a
    one-row DataFrame cost a tenth of a search request's time."""
    return {
        C.EVENT_ID: f"search:{request_id}",
        C.USER: user_id or ANONYMOUS,
        C.ITEM: None,
        C.EVENT_TYPE: C.SEARCH,
        C.VALUE: None,
        C.TIMESTAMP: time.time() if timestamp is None else timestamp,
        C.SESSION: None,
        C.QUERY: query,
        C.REQUEST_ID: request_id,
    }


def log_search(
    store: KnowledgeStore,
    query: str,
    request_id: str,
    user_id: str | None,
    items: list[str],
    scores: list[float],
    *,
    model_version: str | None = None,
) -> None:
    """Write the search event and what it showed (impressions) in one transaction (the library and
    CLI path; the service queues both instead, see :func:`search_event`)."""
    now = time.time()
    uid = user_id or ANONYMOUS
    event = pd.DataFrame([search_event(query, request_id, uid, now)])
    shown = pd.DataFrame(
        {
            C.REQUEST_ID: request_id,
            C.USER: uid,
            C.ITEM: items,
            C.POSITION: np.arange(len(items)),
            C.SCORE: scores,
            C.SOURCE: "search",
            C.SURFACE: "search",
            C.MODEL_VERSION: model_version,
            C.QUERY: query,
            C.TIMESTAMP: now,
        }
    )
    with store.transaction() as conn:
        store.add_events(event, conn)
        if len(shown):
            store.log_impressions(shown, conn)


def log_click(
    store: KnowledgeStore,
    request_id: str,
    item_id: str,
    user_id: str | None = None,
    *,
    query: str | None = None,
    event_type: str = C.CLICK,
) -> int:
    """Record that a search result was clicked (or bought: ``event_type``), joined by ``request_id``."""
    if event_type not in C.EVENT_TYPES or event_type == C.SEARCH:
        raise ValueError(f"event_type must be one of {', '.join(t for t in C.EVENT_TYPES if t != C.SEARCH)}")
    ev = pd.DataFrame(
        {
            C.EVENT_ID: [f"{event_type}:{request_id}:{item_id}"],
            C.USER: [user_id or ANONYMOUS],
            C.ITEM: [item_id],
            C.EVENT_TYPE: [event_type],
            C.VALUE: [None],
            C.TIMESTAMP: [time.time()],
            C.SESSION: [None],
            C.QUERY: [query],
            C.REQUEST_ID: [request_id],
        }
    )
    return store.add_events(ev)
