"""Shared by every route that answers with a ranked list: engine errors to HTTP, product details,
impression logging."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from fastapi import HTTPException, Request

from shopsense.exceptions import NoModelError, NotFittedError, UnknownItemError, UnknownUserError
from shopsense.service.deps import AppState
from shopsense.service.engines import Unavailable
from shopsense.service.routes.products import product_record
from shopsense.service.schemas import Hit

T = TypeVar("T")


async def in_engine_lane(state: AppState, work: Callable[[], T]) -> T:
    """Run ``work`` (engine computation, CPU-bound) off the event loop, at most
    ``service.engine_threads`` at a time per process; later requests wait their turn in order.

    With FastAPI's default pool of 40 threads, 16 concurrent requests in one process took turns on
    the GIL: each took 16 times longer, with a long tail. One lane per process (one worker per core)
    finishes each request at full speed, while the event loop keeps accepting and parsing requests."""
    return await anyio.to_thread.run_sync(work, limiter=state.engine_lane())


def call_engine(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an engine call; library errors become 404/503 with the library's message."""
    try:
        return fn(*args, **kwargs)
    except (Unavailable, NoModelError, NotFittedError) as e:
        raise HTTPException(503, str(e) or "no trained model") from None
    except UnknownItemError as e:
        raise HTTPException(404, str(e)) from None
    except UnknownUserError as e:
        raise HTTPException(404, str(e)) from None


def hits(state: AppState, items: list[dict[str, Any]], details: bool) -> list[Hit]:
    """Engine dicts as API hits, with the catalog rows when ``details`` is asked for."""
    prods: dict[str, Any] = {}
    if details and items:
        df = state.store.products([it["item_id"] for it in items])
        prods = {r["item_id"]: product_record(r) for r in df.to_dict("records")}
    return [
        Hit(
            item_id=str(it["item_id"]),
            score=float(it.get("score") or 0.0),
            rank=i + 1,
            source=it.get("source"),
            explanation=it.get("explanation"),
            product=prods.get(it["item_id"]),
        )
        for i, it in enumerate(items)
    ]


def log_shown(
    state: AppState,
    request: Request,
    user_id: str | None,
    items: list[dict[str, Any]],
    surface: str,
    version: str | None,
    query: str | None = None,
) -> str:
    """Queue the impressions of this response; returns its request_id."""
    request_id = request.state.request_id
    if state.settings.service.log_impressions and items:
        state.impressions.record(request_id, user_id, items, surface, version, query)
    return request_id
