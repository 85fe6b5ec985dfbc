"""``create_app(settings) -> FastAPI``: the HTTP service, one router per resource."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from shopsense.config import Settings, load_settings, settings_json
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.exceptions import SchemaError, ShopsenseError, StoreBusyError, StoreError
from shopsense.process import serving_threads, set_process_defaults
from shopsense.service import engines
from shopsense.service.deps import AppState, authenticate
from shopsense.service.impressions import ImpressionLog
from shopsense.service.keys import SHOPPER, KeyRing, new_key
from shopsense.service.metrics import Metrics
from shopsense.service.middleware import BodyLimit, ConnectionMaxAge, KeyGate, RequestMetrics
from shopsense.service.models_state import ModelState
from shopsense.service.periodic import Periodic
from shopsense.service.redact import without_paths
from shopsense.service.routes import (
    events,
    experiments,
    health,
    keys,
    models,
    pages,
    products,
    recommend,
    search,
    users,
)
from shopsense.service.shoppers import ShopperCookies, new_secret, secret_from
from shopsense.service.training_jobs import TrainingJobs
from shopsense.store import open_store

log = logging.getLogger("shopsense.service")

#: set by `shopsense serve --workers N` so that every worker process serves the same settings, page
#: key and shopper-cookie secret (see :func:`worker_environment`)
SETTINGS_ENV = "SHOPSENSE_SERVE_SETTINGS_JSON"
PAGE_KEY_ENV = "SHOPSENSE_SERVE_PAGE_KEY"
SESSION_SECRET_ENV = "SHOPSENSE_SERVE_SESSION_SECRET"

__version__ = "0.1.0"

#: seconds a client is asked to wait after a 503 from a busy or unreachable store
STORE_RETRY_AFTER_S = 5


def create_app(
    settings: Settings | None = None,
    *,
    loader: Callable[[str, Path | None], Any] | None = None,
    train_command: list[str] | None = None,
    block_on_load: bool = False,
    page_key: str | None = None,
    session_secret: bytes | None = None,
) -> FastAPI:
    """Build the app over ``settings`` (default: environment). ``loader`` and ``train_command``
    replace how a model version is loaded and how training runs (tests, custom deployments).
    The served version loads in the background (``/ready`` names it once loaded) unless
    ``block_on_load``, where start-up waits for it. ``page_key`` and ``session_secret`` are the
    storefront's key and the shopper cookie's signing secret when several processes must share
    them (default: new ones; ``service.session_secret`` takes precedence over both)."""
    settings = settings or load_settings()
    svc = settings.service
    if svc.session_secret:
        session_secret = secret_from(svc.session_secret)
    # never migrates: other servers and commands share the tables (`shopsense migrate` does, on purpose)
    store = open_store(
        settings.store_url, timeout_s=settings.store_timeout_s, migrate=False, pool=settings.store_pool()
    )
    metrics = Metrics()
    # a new version keeps serving the previous one's similar-products index while its own is built
    load = loader or (lambda version, path: engines.load(version, path, store, settings, previous=state.models.current))
    state = AppState(
        settings=settings,
        store=store,
        keys=KeyRing(store),
        models=ModelState(store, load, interval_s=svc.reload_interval_s, home=settings.home),
        jobs=TrainingJobs(store, settings.store_url, settings.home, command=train_command, settings=settings),
        metrics=metrics,
        impressions=ImpressionLog(store, journal=Path(settings.home) / "spool" / "events"),
        pseudonyms=Pseudonymizer.from_settings(settings),
        shoppers=ShopperCookies(session_secret or new_secret()),
    )
    if svc.pages:
        # The storefront's public key: lists and events of the cookie's shopper only (see routes/pages.py).
        state.page_key = state.keys.add_ephemeral([SHOPPER], "pages", page_key)

    # shoppers deleted by another process (a worker, the CLI) leave this process's memory too; then
    # the query vectors encoded since the last round go to the store's cache (off the requests' path)
    deletions = Periodic(lambda: _upkeep(state), svc.reload_interval_s, "shopsense-upkeep")

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
            _each_served(state, "flush_query_vectors", "could not write query vectors")
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
            "training, deletion, keys; implies the others). The storefront's public page key reads lists and "
            "posts events only for the anonymous shopper of its signed session cookie. Every list response "
            "carries `request_id` and `model_version`: quote the request_id in the events that follow."
        ),
        lifespan=lifespan,
    )
    app.state.shopsense = state
    routers = [r.router for r in (health, events, products, recommend, search, users, models, experiments, keys, pages)]
    for router in routers:
        app.include_router(router)
    _errors(app)
    app.add_middleware(BodyLimit, max_bytes=svc.max_body_bytes)
    routes = [*app.routes, *(route for router in routers for route in router.routes)]  # the docs' and ours
    app.add_middleware(KeyGate, keys=state.keys, is_public=public_paths(routes))  # before any body is read
    app.add_middleware(ConnectionMaxAge, max_age_s=svc.connection_max_age_s)  # rebalances workers' connections
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: times everything, 401s and 413s included
    return app


def _upkeep(state: AppState) -> None:
    """The background round: shoppers deleted by another process leave this process's memory, then
    the query vectors encoded since the last round go to the store's cache."""
    _each_served(state, "catch_up_on_deletions", "could not catch up on deleted shoppers")  # retried next round
    _each_served(state, "flush_query_vectors", "could not write query vectors")  # only a cache


def _each_served(state: AppState, method: str, failure: str) -> None:
    """Call ``method`` of every served version that has one; a failure is logged, never raised."""
    for served in state.models.every_served():
        fn = getattr(served, method, None)
        if callable(fn):
            try:
                fn()
            except Exception as e:  # a store hiccup must not stop the round
                log.warning("%s: %s", failure, e)


def public_paths(routes: Iterable[BaseRoute]) -> Callable[[str], bool]:
    """Whether a request path belongs to one of ``routes`` that needs no API key (health, metrics,
    the pages, the API docs), decided from the routes themselves: a route is protected when its
    dependencies authenticate. Anything else, unknown paths included, needs a key."""

    def authenticates(dependant: Any) -> bool:
        return any(d.call is authenticate or authenticates(d) for d in dependant.dependencies)

    exact: set[str] = set()
    patterns: list[re.Pattern[str]] = []
    for route in routes:
        if not isinstance(route, APIRoute | Route) or (isinstance(route, APIRoute) and authenticates(route.dependant)):
            continue
        if "{" in route.path:
            patterns.append(route.path_regex)
        else:
            exact.add(route.path)

    def is_public(path: str) -> bool:
        return path in exact or any(p.match(path) for p in patterns)

    return is_public


def _errors(app: FastAPI) -> None:
    """Library errors become clear HTTP answers; only the HTTP layer chooses status codes."""

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()[:50]
        ]
        return JSONResponse({"detail": errs}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if isinstance(exc.detail, str):  # engine and loader messages may name files: say <path> instead
            exc.detail = without_paths(exc.detail)
        return await http_exception_handler(request, exc)

    @app.exception_handler(SchemaError)
    async def _schema(_: Request, exc: SchemaError) -> JSONResponse:
        return JSONResponse({"detail": without_paths(str(exc))}, status_code=422)

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
        return JSONResponse({"detail": without_paths(str(exc))}, status_code=400)


def flush_when_stopping(server: Any, app: FastAPI) -> None:
    """Make ``server`` (a ``uvicorn.Server`` of ``app``) write the app's queued search events and
    impressions as it stops. The app's lifespan does so on a graceful stop (SIGTERM, Ctrl-C), but
    uvicorn skips the lifespan when a second Ctrl-C forces the exit; this runs either way. (After a
    kill -9 the next start recovers the search events from the journal; impressions of the last
    0.2 s are lost, see docs/service.md.)"""
    stop = server.shutdown

    async def shutdown(sockets: Any = None) -> None:
        try:
            await stop(sockets=sockets)
        finally:
            app.state.shopsense.impressions.flush()

    server.shutdown = shutdown


def worker_environment(settings: Settings) -> dict[str, str]:
    """What the parent of ``serve --workers N`` puts in its workers' environment: its settings (the
    ``--config`` file and options included), one page key and one cookie secret for all of them."""
    return {
        SETTINGS_ENV: settings_json(settings),
        PAGE_KEY_ENV: new_key()[1],
        SESSION_SECRET_ENV: new_secret().hex(),
    }


def app_from_env() -> FastAPI:
    """The app of one worker process (uvicorn factory): settings, page key and cookie secret from the
    parent (:func:`worker_environment`), else settings from the environment."""
    set_process_defaults()  # a worker process may start without the CLI (uvicorn's own workers)
    serving_threads()
    # taken out of the environment: a trainer this worker starts must not inherit the secrets
    raw = os.environ.pop(SETTINGS_ENV, None)
    page_key = os.environ.pop(PAGE_KEY_ENV, None)
    secret = os.environ.pop(SESSION_SECRET_ENV, None)
    return create_app(
        Settings.model_validate_json(raw) if raw else None,
        page_key=page_key,
        session_secret=bytes.fromhex(secret) if secret else None,
    )
