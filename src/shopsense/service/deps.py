"""What every route shares: settings, the store, the served model, pseudonyms, auth by scope, and
the user a request acts for (:class:`Caller`)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from shopsense.config import Settings
from shopsense.data.pseudonyms import Pseudonymizer
from shopsense.service.engines import Served
from shopsense.service.impressions import ImpressionLog
from shopsense.service.keys import ADMIN, INVALID_KEY, MISSING_KEY, READ, WRITE, ApiKey, KeyRing, presented_key
from shopsense.service.metrics import Metrics
from shopsense.service.models_state import ModelState
from shopsense.service.shoppers import ShopperCookies, new_secret
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
    shoppers: ShopperCookies = field(default_factory=lambda: ShopperCookies(new_secret()))
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
        for served in self.models.every_served():  # experiments' arms too: one catalog for all
            fn = getattr(served, "refresh_catalog", None)
            if callable(fn):
                fn()

    def served(self) -> Served:
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


async def authenticate(
    request: Request,
    header_key: str | None = Security(_api_key_header),
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
) -> ApiKey:
    """The caller's verified API key (401 without one or with an unknown one). A route needs a key
    exactly when its dependencies include this one (see :func:`shopsense.service.app.public_paths`)."""
    # the KeyGate middleware verified the key before the body was read; the parameters above only
    # describe the two ways to send it in the OpenAPI spec
    return verified_key(request, header_key or (bearer.credentials if bearer else None))


def verified_key(request: Request, presented: str | None = None) -> ApiKey:
    """The request's API key as the KeyGate middleware verified it, else ``presented`` (or the
    request's own key header) verified now; 401 without a key or with an unknown one."""
    found = request.scope.get("state", {}).get("api_key")
    if isinstance(found, ApiKey):
        return found
    state: AppState = request.app.state.shopsense
    key = presented or presented_key(request.scope.get("headers", []))
    if not key:
        raise HTTPException(401, MISSING_KEY, headers={"WWW-Authenticate": "Bearer"})
    found = state.keys.verify(key)
    if found is None:
        raise HTTPException(401, INVALID_KEY, headers={"WWW-Authenticate": "Bearer"})
    return found


@dataclass(frozen=True)
class Caller:
    """Who sent a request: the verified key and, for the storefront's page key, the shopper of the
    browser session (from its signed cookie)."""

    key: ApiKey
    shopper: str | None = None

    def acting_user(self, named: str | None) -> str | None:
        """The (raw) user id this request acts for. The page key acts for its cookie's shopper
        whatever user the request names (the server decides, so a browser cannot act for someone
        else); an operator key acts for the user it names."""
        return self.shopper if self.shopper is not None else named


def _caller(scope: str, *, shoppers: bool) -> Any:
    """A dependency that lets a request through with a key holding ``scope`` (admin holds all), or
    with the page key when ``shoppers`` (then the caller is the cookie's shopper, set if missing)."""

    async def check(request: Request, response: Response, key: ApiKey = Depends(authenticate)) -> Caller:
        if key.is_shopper:
            if not shoppers:
                raise HTTPException(
                    403,
                    "the storefront's page key only reads lists and posts its own shopper's events; "
                    f"this route needs an API key with the {scope!r} scope (shopsense keys create)",
                )
            state: AppState = request.app.state.shopsense
            return Caller(key, state.shoppers.shopper(request, response))
        if not key.allows(scope):
            raise HTTPException(
                403, f"this API key lacks the {scope!r} scope (it has: {', '.join(sorted(key.scopes))})"
            )
        return Caller(key)

    return check


# one function object per policy: FastAPI then resolves it once per request however often it is used
_read = _caller(READ, shoppers=False)
_lists = _caller(READ, shoppers=True)
_events = _caller(WRITE, shoppers=True)
_admin = _caller(ADMIN, shoppers=False)


def require(scope: str) -> Any:
    """A dependency that lets the request through only with a key holding ``scope`` (admin holds
    all); the page key is refused."""
    return Depends(_caller(scope, shoppers=False))


#: operator reads (model versions, the dashboard's data): the page key is refused
ReadKey = Depends(_read)
#: lists and catalog reads: a read key, or the page key for its shopper
ListKey = Depends(_lists)
#: ``POST /events``: a write key, or the page key (its events are its shopper's)
WriteKey = Depends(_events)
AdminKey = Depends(_admin)

EventCaller = Annotated[Caller, WriteKey]


def acting_user(description: str, *, required: bool = False) -> Any:
    """The ``user_id`` query parameter of a list route, resolved to the user the request acts for
    (:meth:`Caller.acting_user`): with the page key, always the cookie's shopper."""

    async def resolve(
        caller: Caller = ListKey,
        user_id: str | None = Query(None, min_length=1, max_length=256, description=description),
    ) -> str | None:
        uid = caller.acting_user(user_id)
        if uid is None and required:
            raise HTTPException(422, "user_id is required: the user to answer for")
        return uid

    return Depends(resolve)
