"""``GET /recommend`` and ``GET /similar/{item_id}`` (read scope, or the page key for its shopper)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from shopsense.data.ids import normalize_id
from shopsense.ranking.ranked import RankedItem
from shopsense.ranking.rules import Filters
from shopsense.recommend.request import RecommendRequest
from shopsense.recommend.surfaces import SURFACES, Surface
from shopsense.service.arms import Shown, routing
from shopsense.service.deps import AppState, Caller, ListKey, State, acting_user
from shopsense.service.lean import lean_get
from shopsense.service.routes.lists import call_engine, hits, in_engine_lane, log_shown
from shopsense.service.schemas import Hit, ListResponse

router = APIRouter(tags=["recommend"])

K = Query(10, ge=1, le=200, description="how many items")
DETAILS = Query(False, description="include each product's catalog record")


class RecommendQuery(BaseModel):
    """``GET /recommend``'s query string (validated in one pass: :mod:`shopsense.service.lean`)."""

    model_config = ConfigDict(extra="ignore")

    user_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="the user to recommend for (required; the page key: its shopper)",
    )
    k: int = Field(10, ge=1, le=200, description="how many items")
    category: str | None = Field(
        None,
        max_length=1000,
        description="only this category (any level of the path); a shopper without history gets what is popular in it",
    )
    exclude_category: str | None = Field(None, max_length=1000)
    min_price: float | None = Field(None, ge=0, le=1e12)
    max_price: float | None = Field(None, ge=0, le=1e12)
    query: str | None = Field(
        None, max_length=500, description="context query (a shopper without history: its matches)"
    )
    diversity: float | None = Field(None, ge=0, le=1, description="MMR weight (default: the settings')")
    surface: Surface = Field(
        "for_you", description=f"which page's list: {', '.join(SURFACES)} (see docs/recommendations.md)"
    )
    item_id: str | None = Field(
        None, min_length=1, max_length=1024, description="the product of a product page (similar, bought_together)"
    )
    details: bool = Field(False, description="include each product's catalog record")


@lean_get(router, "/recommend", response_model=ListResponse)
async def recommend(
    request: Request, params: Annotated[RecommendQuery, Query()], caller: Caller = ListKey
) -> ListResponse:
    """What this user should see now on a page of the shop (``surface``). Reads the user's latest
    events, so what they just did counts.

    The response's ``request_id`` and ``model_version`` identify what was shown: quote the
    request_id in the click/add-to-cart/purchase events that follow.
    """
    state: AppState = request.app.state.shopsense
    user_id = caller.acting_user(params.user_id)
    if user_id is None:
        raise HTTPException(422, "user_id is required: the user to answer for")
    k, surface, item_id, details = params.k, params.surface, params.item_id, params.details
    served = state.served()
    if item_id is not None:
        item_id = normalize_id(item_id, "item id")
    if surface == "similar":
        if not item_id:
            raise HTTPException(422, "surface 'similar' needs item_id (the product of the page)")
        return await similar(request, state, item_id, k, user_id, details)
    if surface == "bought_together" and not item_id:
        raise HTTPException(422, "surface 'bought_together' needs item_id (the product of the page)")
    ask = RecommendRequest(
        user_id=state.pseudonyms.user(user_id),
        k=k,
        filters=Filters(
            exclude_categories=(params.exclude_category,) if params.exclude_category else (),
            price_min=params.min_price,
            price_max=params.max_price,
        ),
        category=params.category,
        query=params.query,
        diversity=params.diversity,
        surface=surface,
        item_id=item_id,
    )

    # the default version, the arm's in an A/B experiment, both arms' when interleaving
    route = routing(state.models, served, surface, ask.user_id, state.settings.service.position_swap_share)

    def work() -> tuple[Shown, list[Hit]]:
        lists = [call_engine(s.recommend, ask) for s in route.served]
        out = route.merge(lists, k, request.state.request_id)
        return out, hits(state, out.items, details)

    out, shown = await in_engine_lane(state, work)
    # impressions name the surface ("recommend": the home page's for_you, as before surfaces existed)
    shown_on = "recommend" if surface == "for_you" else surface
    rid = log_shown(state, request, ask.user_id, out, shown_on)
    return ListResponse(
        request_id=rid, model_version=out.model_version, items=shown, experiment=out.experiment, arm=out.arm
    )


@router.get("/similar/{item_id:path}", response_model=ListResponse)
async def similar(
    request: Request,
    state: State,
    item_id: str = Path(..., min_length=1, max_length=1024, description="the product id, percent-encoded"),
    k: int = K,
    user_id: str | None = acting_user("who is looking (for logging; the page key: its shopper)"),
    details: bool = DETAILS,
) -> ListResponse:
    """Products like ``item_id`` (content and behaviour)."""
    served = state.served()
    item_id = normalize_id(item_id, "item id")
    uid = state.pseudonyms.user(user_id) if user_id else None

    def work() -> tuple[list[RankedItem], list[Hit]]:
        items = call_engine(served.similar, item_id, k)
        return items, hits(state, items, details)

    items, shown = await in_engine_lane(state, work)
    rid = log_shown(state, request, uid, Shown(items, served.version), "similar")
    return ListResponse(request_id=rid, model_version=served.version, items=shown)
