"""``/health`` (liveness), ``/ready`` (store reachable, model state) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

import time

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from shopsense.service.deps import State

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "the store cannot be reached, or the engines are loading"}})
def ready(state: State) -> JSONResponse:
    """Ready to serve: the store answers and the engines are loaded. Reports the served model version
    (null before any training completed: search and similar work, recommend answers 503)."""
    try:
        state.store.active_version()
    except Exception as e:
        return JSONResponse({"status": "unavailable", "reason": f"store: {type(e).__name__}"}, status_code=503)
    if state.models.current is None:
        return JSONResponse({"status": "loading", "model_version": None}, status_code=503)
    return JSONResponse({"status": "ready", "model_version": state.models.version})


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(state: State) -> PlainTextResponse:
    """Prometheus text exposition: request counts and latency per route, events, served version."""
    gauges: dict[str, tuple[float, dict[str, str]]] = {
        "shopsense_up": (1.0, {}),
        "shopsense_model_loaded": (
            1.0 if state.models.current is not None else 0.0,
            {"version": state.models.version or ""},
        ),
        "shopsense_impressions_dropped": (float(state.impressions.dropped), {}),
        "shopsense_time_seconds": (time.time(), {}),
    }
    text = state.metrics.render(gauges)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
