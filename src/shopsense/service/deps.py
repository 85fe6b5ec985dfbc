"""What every route shares: settings, the store, the served model, pseudonyms, and auth by scope."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shopsense.config import Settings
from shopsense.service.impressions import ImpressionLog
from shopsense.service.keys import ADMIN, READ, WRITE, ApiKey, KeyRing
from shopsense.service.metrics import Metrics
from shopsense.service.models_state import ModelState
from shopsense.service.pseudonym import Pseudonymizer
from shopsense.service.training_jobs import TrainingJobs
from shopsense.store import KnowledgeStore


@dataclass
class AppState:
    """Everything the app holds for its lifetime (one per process)."""

    settings: Settings
    store: KnowledgeStore
    keys: KeyRing
    models: ModelState
    jobs: TrainingJobs
    metrics: Metrics
    impressions: ImpressionLog
    pseudonyms: Pseudonymizer
    page_key: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    _catalog_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _catalog_timer: threading.Timer | None = field(default=None, repr=False)
    _engine_lane: Any = field(default=None, repr=False)

    def engine_lane(self) -> Any:
        """The limiter of engine computations in this process (``service.engine_threads`` at a time).
        Created on first use, inside the event loop."""
        if self._engine_lane is None:
            import anyio

            self._engine_lane = anyio.CapacityLimiter(self.settings.service.engine_threads)
        return self._engine_lane

    def catalog_changed(self) -> None:
        """After a catalog write: rebuild the served catalog-based indexes in the background, at most
        one rebuild at a time, coalescing bursts of writes into one."""
        with self._catalog_lock:
            if self._catalog_timer is not None and self._catalog_timer.is_alive():
                return
            self._catalog_timer = threading.Timer(0.5, self._refresh_catalog)
            self._catalog_timer.daemon = True
            self._catalog_timer.start()

    def _refresh_catalog(self) -> None:
        fn = getattr(self.models.current, "refresh_catalog", None)
        if callable(fn):
            fn()

    def served(self) -> Any:
        """The served engines, or 503 while they are still loading at start-up."""
        cur = self.models.current
        if cur is None:
            raise HTTPException(503, "the engines are still loading (see /ready); retry in a moment")
        return cur


async def get_state(request: Request) -> AppState:
    return request.app.state.shopsense


State = Annotated[AppState, Depends(get_state)]
# Dependencies are `async def` on purpose: FastAPI runs sync ones in the thread pool, a thread hop
# per dependency per request. They only read memory (the key cache), except a cache miss.

_api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key (`shopsense keys create`)")
_bearer = HTTPBearer(auto_error=False, description="the same API key as a bearer token")


async def _authenticate(
    request: Request,
    header_key: str | None = Security(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> ApiKey:
    state: AppState = request.app.state.shopsense
    key = header_key or (bearer.credentials if bearer else None)
    if not key:
        raise HTTPException(
            401,
            "missing API key: send it as `X-API-Key: <key>` or `Authorization: Bearer <key>`",
            headers={"WWW-Authenticate": "Bearer"},
        )
    found = state.keys.verify(key)
    if found is None:
        raise HTTPException(401, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"})
    return found


def require(scope: str) -> Any:
    """A dependency that lets the request through only with a key holding ``scope`` (admin holds all)."""

    async def check(key: ApiKey = Depends(_authenticate)) -> ApiKey:
        if not key.allows(scope):
            raise HTTPException(
                403, f"this API key lacks the {scope!r} scope (it has: {', '.join(sorted(key.scopes))})"
            )
        return key

    return Depends(check)


ReadKey = require(READ)
WriteKey = require(WRITE)
AdminKey = require(ADMIN)
