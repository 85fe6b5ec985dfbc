"""``create_app(settings) -> FastAPI``: the HTTP service, one router per resource."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from shopsense.config import Settings, load_settings
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.exceptions import SchemaError, ShopsenseError, StoreBusyError, StoreError
from shopsense.service import engines
from shopsense.service.deps import AppState
from shopsense.service.impressions import ImpressionLog
from shopsense.service.keys import READ, WRITE, KeyRing
from shopsense.service.metrics import Metrics
from shopsense.service.middleware import BodyLimit, RequestMetrics
from shopsense.service.models_state import ModelState
from shopsense.service.periodic import Periodic
from shopsense.service.routes import events, health, keys, models, pages, products, recommend, search, users
from shopsense.service.training_jobs import TrainingJobs
from shopsense.store import open_store

log = logging.getLogger("shopsense.service")

#: set by `shopsense serve --workers N` so that every worker process serves the same settings and page key
SETTINGS_ENV = "SHOPSENSE_SERVE_SETTINGS_JSON"
PAGE_KEY_ENV = "SHOPSENSE_SERVE_PAGE_KEY"

__version__ = "0.1.0"

#: seconds a client is asked to wait after a 503 from a busy or unreachable store
STORE_RETRY_AFTER_S = 5


def create_app(
    settings: Settings | None = None,
    *,
    loader: Callable[[str, Path | None], Any] | None = None,
    train_command: list[str] | None = None,
    block_on_load: bool = False,
) -> FastAPI:
    """Build the app over ``settings`` (default: environment). ``loader`` and ``train_command``
    replace how a model version is loaded and how training runs (tests, custom deployments).
    The served version loads in the background (``/ready`` names it once loaded) unless
    ``block_on_load``, where start-up waits for it."""
    settings = settings or load_settings()
    svc = settings.service
    store = open_store(settings.store_url, timeout_s=settings.store_timeout_s)
    metrics = Metrics()
    load = loader or (lambda version, path: engines.load(version, path, store, settings))
    state = AppState(
        settings=settings,
        store=store,
        keys=KeyRing(store),
        models=ModelState(store, load, interval_s=svc.reload_interval_s, home=settings.home),
        jobs=TrainingJobs(store, settings.store_url, settings.home, command=train_command),
        metrics=metrics,
        impressions=ImpressionLog(store),
        pseudonyms=Pseudonymizer.from_settings(settings),
    )
    if svc.pages:
        # The pages' own key: read + write, lives only in this process's memory (see routes/pages.py).
        state.page_key = state.keys.add_ephemeral([READ, WRITE], "pages", os.environ.get(PAGE_KEY_ENV))

    # shoppers deleted by another process (a worker, the CLI) leave this process's memory too
    deletions = Periodic(lambda: _catch_up_on_deletions(state), svc.reload_interval_s, "shopsense-deletions")

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.jobs.reap()  # trainings killed while no server watched them (a CLI train under kill -9)
        if block_on_load:
            state.models.refresh()
        state.models.start()
        state.impressions.start()
        deletions.start()
        try:
            yield
        finally:
            deletions.stop()
            state.models.stop()
            state.impressions.stop()
            state.jobs.stop_all()

    app = FastAPI(
        title="shopsense",
        version=__version__,
        summary="E-commerce search and recommendation on one shared knowledge base.",
        description=(
            "Send an API key as `X-API-Key` or `Authorization: Bearer`. Scopes: **read** (recommend, search, "
            "similar, autocomplete, catalog and model reads), **write** (events), **admin** (catalog changes, "
            "training, deletion, keys; implies the others). Every list response carries `request_id` and "
            "`model_version`: quote the request_id in the events that follow."
        ),
        lifespan=lifespan,
    )
    app.state.shopsense = state
    for r in (health, events, products, recommend, search, users, models, keys, pages):
        app.include_router(r.router)
    _errors(app)
    app.add_middleware(BodyLimit, max_bytes=svc.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: times everything, 413s included
    return app


def _catch_up_on_deletions(state: AppState) -> None:
    fn = getattr(state.models.current, "catch_up_on_deletions", None)
    if callable(fn):
        try:
            fn()
        except Exception as e:  # a store hiccup: the next round tries again
            log.warning("could not catch up on deleted shoppers: %s", e)


def _errors(app: FastAPI) -> None:
    """Library errors become clear HTTP answers; only the HTTP layer chooses status codes."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:50]
        ]
        return JSONResponse({"detail": errs}, status_code=422)

    @app.exception_handler(SchemaError)
    async def _schema(_: Request, exc: SchemaError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> JSONResponse:
        # the message names the store's file or host: logged, not answered
        log.error("store error: %s", exc)
        detail = (
            "knowledge store busy: another process holds a write lock; retry shortly"
            if isinstance(exc, StoreBusyError)
            else "knowledge store unavailable"
        )
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": str(STORE_RETRY_AFTER_S)})

    @app.exception_handler(ShopsenseError)
    async def _other(_: Request, exc: ShopsenseError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)


def app_from_env() -> FastAPI:
    """The app of one worker process (uvicorn factory): settings from the parent, else the environment."""
    raw = os.environ.get(SETTINGS_ENV)
    return create_app(Settings.model_validate_json(raw) if raw else None)
