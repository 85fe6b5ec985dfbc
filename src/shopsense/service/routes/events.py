"""``POST /events``: one event or a batch (a JSON array), appended to the knowledge store at once.

The store is what requests read, so an accepted event shapes the user's next recommend/search call
without any retraining.
"""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Body, HTTPException

from shopsense import columns as C
from shopsense.service.deps import EventCaller, State
from shopsense.service.schemas import EventIn, EventsAccepted
from shopsense.service.validate import clean_events, events_frame

router = APIRouter(tags=["events"])


@router.post("/events", response_model=EventsAccepted)
async def post_events(
    state: State,
    caller: EventCaller,
    body: EventIn | list[EventIn] = Body(..., description="one event, or a JSON array of up to 10,000 events"),
) -> EventsAccepted:
    """Record behaviour: views, clicks, add-to-cart, purchases, ratings, searches.

    Quote the ``request_id`` of the recommend/search response an event follows: that joins it to
    what was shown (CTR and conversion per model version, training data for the ranker).
    With the storefront's page key every event is its browser's shopper's (any ``user_id`` is ignored).
    """
    events = body if isinstance(body, list) else [body]
    limit = state.settings.service.max_batch_events
    if len(events) > limit:
        raise HTTPException(413, f"batch of {len(events)} events is over the limit of {limit}; split it")
    if not events:
        return EventsAccepted(received=0, stored=0)
    now = time.time()
    rows = [e.model_dump() for e in events]
    for i, r in enumerate(rows):
        r[C.USER] = caller.acting_user(r[C.USER])
        if r[C.USER] is None:
            raise HTTPException(422, f"event {i}: user_id is required")
    ids = state.pseudonyms.users([r[C.USER] for r in rows])
    for r, uid in zip(rows, ids, strict=True):
        r[C.USER] = uid
        r[C.TIMESTAMP] = now if r[C.TIMESTAMP] is None else float(r[C.TIMESTAMP])
    records = clean_events(rows, state.settings.ingest)  # most requests: a few plainly valid events
    # Async with one hand-over to a thread, for the write only: as a sync route it took two (the
    # route, then its response's validation), each a thread wake-up costing more than the write.
    # The write stays off the event loop, which a lock held by another process would stall; a big
    # batch is validated there too (pandas: tens of milliseconds).
    if records is not None:
        stored = await anyio.to_thread.run_sync(state.store.add_event_rows, records)
    else:
        ingest = state.settings.ingest
        stored = await anyio.to_thread.run_sync(lambda: state.store.add_events(events_frame(rows, ingest)))
    state.metrics.inc("shopsense_events_received_total", len(events))
    return EventsAccepted(received=len(events), stored=stored)
