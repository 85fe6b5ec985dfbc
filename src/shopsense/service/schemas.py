"""Request and response bodies of the HTTP API (validated by pydantic: bad input is a clear 422)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shopsense import columns as C

Id = Field(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
#: timestamps are unix seconds between 1970 and 2200
MAX_TS = 7_258_118_400.0


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class EventIn(_In):
    """One behaviour event. ``item_id`` is required except for searches; ``query`` is required for them."""

    user_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        pattern=r"^[^\x00-\x1f]+$",
        description="required with an API key; with the storefront's page key the session's shopper is used",
    )
    item_id: str | None = Field(None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$")
    event_type: Literal["view", "click", "favorite", "add_to_cart", "remove_from_cart", "purchase", "rating", "search"]
    timestamp: float | None = Field(None, ge=0, le=MAX_TS, description="unix seconds; default: now")
    value: float | None = Field(
        None, ge=-1e9, le=1e9, description="rating value; for a purchase the amount paid (price x quantity, >= 0)"
    )
    session_id: str | None = Field(None, max_length=256)
    query: str | None = Field(None, max_length=1000)
    request_id: str | None = Field(None, max_length=64, description="the request_id of the response it follows")
    event_id: str | None = Field(None, max_length=256, description="idempotency key: a repeated id is stored once")
    order_id: str | None = Field(
        None, min_length=1, max_length=256, pattern=r"^[^\x00-\x1f]+$", description="the order a purchase belongs to"
    )

    @field_validator("timestamp", "value")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v

    @model_validator(mode="after")
    def _item_or_query(self) -> EventIn:
        if self.event_type == C.SEARCH:
            if not self.query:
                raise ValueError("a search event needs a non-empty query")
        elif self.item_id is None:
            raise ValueError(f"a {self.event_type} event needs an item_id")
        if self.event_type == C.PURCHASE and self.value is not None and self.value < 0:
            raise ValueError(f"a purchase's value is the amount paid and must be >= 0, got {self.value:g}")
        return self


class EventsAccepted(BaseModel):
    received: int
    stored: int = Field(description="new events (repeats of a stored event_id are skipped)")


AttrValue = str | int | float | bool | None


class ProductIn(_In):
    """One catalog product (upserted by ``item_id``)."""

    item_id: str = Id
    title: str = Field(min_length=1, max_length=2000)
    description: str | None = Field(None, max_length=100_000)
    category: str | None = Field(None, max_length=1000, description='a path like "Kitchen > Microwaves"')
    brand: str | None = Field(None, max_length=500)
    price: float | None = Field(None, ge=0, le=1e12)
    image_url: str | None = Field(None, max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=200)
    attributes: dict[str, AttrValue] = Field(default_factory=dict, max_length=200)
    available: bool = True

    @field_validator("price")
    @classmethod
    def _finite(cls, v: float | None) -> float | None:
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number")
        return v


class ProductsUpserted(BaseModel):
    received: int
    written: int = Field(description="rows whose content changed")


class Product(BaseModel):
    item_id: str
    title: str | None = None
    description: str | None = None
    category: str | None = None
    brand: str | None = None
    price: float | None = None
    image_url: str | None = None
    tags: list[Any] = []
    attributes: dict[str, Any] = {}
    available: bool = True


class Hit(BaseModel):
    """One recommended or found product, best first."""

    item_id: str
    score: float
    rank: int
    source: str | None = Field(None, description="the candidate source or retrieval that proposed it")
    explanation: str | None = None
    product: Product | None = None


class ListResponse(BaseModel):
    """A ranked list with what the feedback loop needs: quote ``request_id`` in later events."""

    request_id: str
    model_version: str | None
    items: list[Hit]
    experiment: str | None = Field(None, description="the running experiment this request was in (null: none)")
    arm: str | None = Field(
        None, description="its arm (null outside an experiment, and when interleaving: each item's team is logged)"
    )


class SearchResponse(ListResponse):
    query: str
    total: int | None = None
    facets: dict[str, dict[str, int]] = {}
    did_you_mean: str | None = None  # the spelling correction, or a better query when this one finds little
    showing_results_for: str | None = None  # the corrected query the results are for (None: ``query`` itself)
    relaxed: str | None = None  # how a query that found nothing was relaxed, e.g. "without 'xyzzy'"


class Suggestions(BaseModel):
    query: str
    suggestions: list[str]


class Deleted(BaseModel):
    deleted: dict[str, int]


class UserExport(BaseModel):
    """Everything the store holds about one shopper (``GET /users/{id}/export``)."""

    given_id: str = Field(description="the id asked for (after the id rule: surrounding whitespace removed)")
    user_id: str = Field(description="the id it is stored under (its pseudonym when pseudonymisation is on)")
    known: bool = Field(description="whether the store holds anything about the shopper")
    opted_out: bool = Field(description="whether the shopper opted out of personalisation")
    created_at: float | None = None
    attributes: dict[str, Any] | None = None
    linked_ids: dict[str, list[str]] = Field(
        description="session, request and event ids in the shopper's rows, and the anonymous ids merged into them"
    )
    events: list[dict[str, Any]]
    impressions: list[dict[str, Any]] = Field(description="what was shown to the shopper")


class LinkIn(_In):
    """The anonymous id to merge into the user (``POST /users/{id}/link``)."""

    anonymous_id: str = Field(
        min_length=1,
        max_length=1024,
        description="the id the shopper had before logging in (the storefront's shopper cookie id)",
    )


class Linked(BaseModel):
    user_id: str = Field(description="the user asked for (after the id rule)")
    anonymous_id: str = Field(description="the anonymous id merged into them (after the id rule)")
    events_moved: int = Field(description="events of the anonymous id that became the user's by this call")
    impressions_moved: int
    already_linked: bool = Field(description="the pair was linked before; only what came since was moved")
    opted_out: bool = Field(description="the user's opt-out after the link (an opt-out on either id holds)")


class OptOut(BaseModel):
    user_id: str = Field(description="the id asked for (after the id rule)")
    opted_out: bool


class VersionInfo(BaseModel):
    version: str
    status: str
    created_at: float
    active: bool
    served: bool
    metrics: dict[str, Any] = {}


class ModelsResponse(BaseModel):
    served_version: str | None
    versions: list[VersionInfo]
    failed_to_load: dict[str, str] = {}


class ExperimentIn(_In):
    """``POST /experiments``: what ``shopsense experiment start`` takes."""

    name: str = Field(min_length=1, max_length=64, description="a new name: letters, digits, '_', '.', '-'")
    arms: dict[str, str] = Field(
        min_length=2, max_length=10, description="arm name -> model version, the control first (JSON keeps the order)"
    )
    split: list[float] | None = Field(None, max_length=10, description="weights per arm in order (default: equal)")
    surface: str = Field("recommend", max_length=64, description="recommend, search, both, all, or one list's name")
    mode: Literal["ab", "interleave"] = "ab"


class ArmInfo(BaseModel):
    name: str
    version: str
    weight: float


class ExperimentInfo(BaseModel):
    name: str
    arms: list[ArmInfo]
    surface: str
    mode: str
    status: str
    started_at: float
    stopped_at: float | None = None


class TrainRequest(_In):
    incremental: bool = False


class JobInfo(BaseModel):
    job_id: str
    status: str
    incremental: bool
    started_at: float
    finished_at: float | None = None
    returncode: int | None = None
    pid: int | None = None


class KeyCreate(_In):
    scopes: list[Literal["read", "write", "admin"]] = Field(min_length=1, max_length=3)
    name: str | None = Field(None, max_length=200)


class KeyCreated(BaseModel):
    key_id: str
    key: str = Field(description="shown once; only its hash is stored")
    scopes: list[str]


class KeyInfo(BaseModel):
    key_id: str
    scopes: list[str]
    name: str | None = None
    created_at: float
    revoked: bool
